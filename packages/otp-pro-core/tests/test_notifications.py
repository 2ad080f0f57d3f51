"""Security notifications (built-in ``otp_pro_notify``): every factor change tells the member out of band.

Notices travel through a real SMTP server on loopback (``smtp_server`` / ``mailbox``);
each test runs on SQLite and, with ``OTP_PRO_TEST_POSTGRES_URL``, on PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pyotp
import pytest
from click.testing import CliRunner
from core_support import base_settings

from otp_pro import Member, Message, OtpPro, Receipt, Setting, Transport, audit, hookimpl
from otp_pro.builtins import notify
from otp_pro.cli import cli
from otp_pro.errors import ConfigurationError, RecipientUnavailable
from otp_pro.testing import Clock, Mailbox, enrol, free_port, outbox_code, settings_toml

SUBJECT = "Example: security change on your account"
IP, UA = "203.0.113.9", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def email_provider(smtp_server: tuple[str, int, Mailbox], **notifications: Any) -> dict[str, Any]:
    host, port, _ = smtp_server
    providers: dict[str, Any] = {"email": {"smtp_host": host, "smtp_port": port, "from_address": "otp@example.com"}}
    if notifications:
        providers["notifications"] = notifications
    return providers


def notices(mailbox: Mailbox, address: str = "ann@example.com") -> list[Any]:
    return [m for m in mailbox.to(address) if m["Subject"] == SUBJECT]


def body(message: Any) -> str:
    """The plain-text part as the member reads it (the same wording with or without otp-pro-html-email)."""
    return message.get_body(("plain",)).get_content().replace("\r\n", "\n")


def events_of(otp: OtpPro, *kinds: str) -> list[audit.AuditEvent]:
    return list(reversed(otp.events(kinds=kinds, limit=500)))


def test_each_factor_change_sends_exactly_one_notice(make_otp: Callable[..., OtpPro], member: Member,
                                                    mailbox: Mailbox, clock: Clock) -> None:
    otp = make_otp()
    secrets_seen: list[str] = []

    # 1. Setup (authenticator app): one notice, although setup also made backup codes.
    info = otp.begin_setup(member, "totp", ip=IP, user_agent=UA)
    assert info.secret is not None
    secrets_seen += [info.secret, pyotp.TOTP(info.secret).at(clock())]
    secrets_seen += otp.complete_setup(member, pyotp.TOTP(info.secret).at(clock()), ip=IP, user_agent=UA)
    [setup] = notices(mailbox)
    assert setup["To"] == "ann@example.com" and setup["From"] == "Example <otp@example.com>"
    text = body(setup)
    assert text.startswith("Hello Ann,\n\nTwo-step verification was set up on your account. "
                           "Your second step is now: Authenticator app.\n\n")
    assert "When: 23 Nov 2026, 12:00 UTC\nFrom: 203.0.113.9 (Firefox on Linux)\n" in text
    assert "If you did not make this change" in text and "write to help@example.com at once" in text
    assert "site administrator" not in text

    # 2. New backup codes.
    clock.advance(60)
    secrets_seen += otp.regenerate_backup_codes(member, ip=IP, user_agent=UA)
    assert len(notices(mailbox)) == 2
    assert "New backup codes were made for your account; the previous ones no longer work." in body(
        notices(mailbox)[-1])
    assert "When: 23 Nov 2026, 12:01 UTC" in body(notices(mailbox)[-1])

    # 3. A new trusted device.
    secrets_seen.append(otp.trust_device(member, label="Work laptop", ip=IP, user_agent=UA))
    assert len(notices(mailbox)) == 3
    assert ("A device was added to your trusted devices (Work laptop): it can sign in without the second step "
            "for 30 days.") in body(notices(mailbox)[-1])

    # 4. Reset by an administrator (no IP or browser: nothing to show but the time).
    otp.reset(member, actor="support:bob")
    assert len(notices(mailbox)) == 4
    text = body(notices(mailbox)[-1])
    assert "Two-step verification on your account was reset" in text
    assert "This was done by a site administrator." in text and "From:" not in text
    assert "support:bob" not in text  # who at the site did it is for the audit log, not the member

    # 5. Disable, by the member (Flask passes actor=member.id): set up again first, which notifies too.
    secrets_seen += enrol(otp, member)
    assert len(notices(mailbox)) == 5
    assert "Your second step is now: Development outbox." in body(notices(mailbox)[-1])
    otp.disable(member, actor=member.id, ip=IP, user_agent=UA)
    assert len(notices(mailbox)) == 6
    text = body(notices(mailbox)[-1])
    assert "Two-step verification was switched off on your account" in text
    assert "site administrator" not in text

    # Each change has one notification_sent pointing at it, with what support needs.
    changes = {e.id: e for e in events_of(otp, *audit.FACTOR_CHANGES)}
    sent = events_of(otp, notify.NOTIFICATION_SENT)
    assert [e.details["change"] for e in sent] == ["setup_completed", "backup_codes_generated", "device_trusted",
                                                   "reset", "setup_completed", "disabled"]
    for event in sent:
        assert event.outcome == "ok" and event.member_id == "42" and event.channel == "email:code"
        assert changes[event.details["event_id"]].kind == event.details["change"]
        assert event.details["transport"] == "email" and event.details["recipient"] == "a***@example.com"
        assert event.details["provider_message_id"].startswith("<")
    assert events_of(otp, notify.NOTIFICATION_FAILED) == []
    # A notice never carries a code, a backup code, a device token or the seed; nor does its audit record.
    secrets_seen.append(outbox_code(otp))
    for message in notices(mailbox):
        whole = message.as_string()
        assert not [s for s in secrets_seen if s in whole]
    assert not [s for s in secrets_seen for e in sent if s in str(e.details)]


def test_adding_and_removing_a_factor_each_send_one_notice(make_otp: Callable[..., OtpPro], member: Member,
                                                           mailbox: Mailbox, clock: Clock) -> None:
    otp = make_otp()
    enrol(otp, member, "totp")
    assert "Your second step is now: Authenticator app." in body(notices(mailbox)[-1])
    enrol(otp, member, "outbox:code")  # a second factor: the member hears it was added, not replaced
    assert len(notices(mailbox)) == 2
    assert "Another second step was added to your account: Development outbox." in body(notices(mailbox)[-1])
    outbox = next(f for f in otp.factors(member) if f.kind == "outbox:code")
    otp.remove_factor(member, outbox.id, ip=IP, user_agent=UA)
    assert len(notices(mailbox)) == 3
    text = body(notices(mailbox)[-1])
    assert "A second step was removed from your account: Development outbox." in text
    assert "From: 203.0.113.9 (Firefox on Linux)" in text and "site administrator" not in text
    otp.rename_factor(member, otp.factors(member)[0].id, "Phone")  # a label is not a security change
    assert len(notices(mailbox)) == 3
    assert [e.details["change"] for e in events_of(otp, notify.NOTIFICATION_SENT)] == [
        "setup_completed", "setup_completed", "factor_removed"]


def test_switched_off_sends_none(make_otp: Callable[..., OtpPro], member: Member, mailbox: Mailbox,
                                 smtp_server: tuple[str, int, Mailbox]) -> None:
    def all_five(otp: OtpPro) -> None:
        enrol(otp, member)
        otp.regenerate_backup_codes(member)
        otp.trust_device(member, label="Phone")
        otp.reset(member, actor="support")
        enrol(otp, member)
        otp.disable(member)

    otp = make_otp(providers=email_provider(smtp_server, enabled=False))
    all_five(otp)
    assert notices(mailbox) == [] and mailbox.messages == []
    assert events_of(otp, notify.NOTIFICATION_SENT, notify.NOTIFICATION_FAILED) == []

    # Per kind: only the listed changes send one.
    otp = make_otp(providers=email_provider(smtp_server, notify_on=["reset", "disabled"]))
    all_five(otp)
    assert [e.details["change"] for e in events_of(otp, notify.NOTIFICATION_SENT)] == ["reset", "disabled"]
    assert len(notices(mailbox)) == 2

    # The whole plugin switched off: no settings section, no notices.
    mailbox.clear()
    otp = make_otp(disable_plugins=["otp_pro_notify"])
    all_five(otp)
    assert notices(mailbox) == []
    assert "notifications" not in otp.plugin_settings


def test_revoking_a_device_notifies_only_when_asked(make_otp: Callable[..., OtpPro], member: Member,
                                                    mailbox: Mailbox, smtp_server: tuple[str, int, Mailbox]) -> None:
    otp = make_otp()
    otp.trust_device(member, label="Phone")
    otp.revoke_device(member, otp.trusted_devices(member)[0].id)
    assert [body(m).splitlines()[2] for m in notices(mailbox)] == [
        "A device was added to your trusted devices (Phone): it can sign in without the second step for 30 days."]

    mailbox.clear()
    otp = make_otp(providers=email_provider(smtp_server, notify_on=["device_revoked"]))
    otp.trust_device(member, label="Phone")
    otp.revoke_device(member, otp.trusted_devices(member)[0].id)
    [notice] = notices(mailbox)
    assert "A device was removed from your trusted devices." in body(notice)


@pytest.mark.parametrize("fault", ["refused_data", "closed_port", "broken_renderer"])
def test_a_failing_notice_leaves_the_change_done_and_is_audited(
    fault: str, make_otp: Callable[..., OtpPro], member: Member, mailbox: Mailbox,
    smtp_server: tuple[str, int, Mailbox], caplog: pytest.LogCaptureFixture,
) -> None:
    plugins: list[object] = []
    providers = email_provider(smtp_server)
    if fault == "closed_port":
        providers["email"]["smtp_port"] = free_port()
    if fault == "broken_renderer":
        class BrokenNotices:
            __name__ = "acme_broken_notices"

            @hookimpl(tryfirst=True)
            def otp_pro_render_message(self, kind: str) -> Message | None:
                if kind == "notification":
                    raise RuntimeError("template exploded")
                return None

        plugins.append(BrokenNotices())
    otp = make_otp(providers=providers, plugins=plugins, channels=["outbox:code", "totp", "email:code"])
    codes = enrol(otp, member)
    mailbox.clear()
    if fault == "refused_data":
        mailbox.reply = "554 5.7.1 Message refused"  # the server refuses the next message's DATA
    caplog.set_level(logging.DEBUG)

    otp.reset(member, actor="support")  # does not raise

    status = otp.status(member)
    assert not status.enrolled and status.backup_codes_remaining == 0  # the change stands
    assert notices(mailbox) == []
    failed = [e for e in events_of(otp, notify.NOTIFICATION_FAILED) if e.details["change"] == "reset"]
    assert len(failed) == 1
    event = failed[0]
    assert event.outcome == "failed" and event.member_id == "42" and event.details["transport"] == "email"
    expected = {"refused_data": ("PermanentDeliveryError", "554"), "closed_port": ("TransientDeliveryError",
                "connection_refused"), "broken_renderer": ("PluginError", None)}[fault]
    assert (event.details["error"], event.details["provider_code"]) == expected
    assert [e for e in events_of(otp, notify.NOTIFICATION_SENT) if e.details["change"] == "reset"] == []
    reset_event = events_of(otp, "reset")[-1]
    assert event.details["event_id"] == reset_event.id
    warnings = [r.getMessage() for r in caplog.records if r.name == "otp_pro.notify"]
    assert any("the reset notice to member 42 through email failed" in w for w in warnings)
    # Everything but the loopback SMTP server's own log (aiosmtpd's "mail.log" prints the DATA it refused).
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail"))
    assert not [c for c in codes if c in logged] and "template exploded" not in logged
    assert "Two-step verification" not in logged  # the notice text is never logged


class Phones:
    """A short-text transport reaching members through ``fields["phone"]`` (as SMS would)."""

    __name__ = "acme_phones"

    class PhoneTransport(Transport):
        name = "phone"
        label = "Text message"
        message_format = "text"
        settings = (Setting("sender", str, "Example", "sender id"),)
        sent: ClassVar[list[Message]] = []

        def recipient(self, member: Member) -> str:
            if not member.fields.get("phone"):
                raise RecipientUnavailable("no mobile number on file")
            return str(member.fields["phone"])

        def send(self, message: Message) -> Receipt:
            type(self).sent.append(message)
            return Receipt(provider_message_id=f"sms-{len(self.sent)}")

    @hookimpl
    def otp_pro_register_transports(self, register: Callable[[type[Transport]], None]) -> None:
        register(self.PhoneTransport)


def test_member_without_email_hears_on_their_own_channel(make_otp: Callable[..., OtpPro], mailbox: Mailbox,
                                                         clock: Clock) -> None:
    Phones.PhoneTransport.sent = []
    otp = make_otp(plugins=[Phones()], channels=["phone:code", "totp", "email:code"], default_channel="phone:code")
    bob = Member("7", name="Bob", fields={"phone": "+447911123456"})
    otp.begin_setup(bob, "phone:code")
    otp.complete_setup(bob, notify_code(Phones.PhoneTransport.sent[-1].text))
    notice = Phones.PhoneTransport.sent[-1]
    assert notice.kind == "notification" and notice.recipient == "+447911123456"
    assert notice.text == ("Example: Two-step verification was set up on your account. Your second step is now: "
                           "Text message. Not you? Write to help@example.com.")
    [sent] = events_of(otp, notify.NOTIFICATION_SENT)
    assert (sent.channel, sent.details["transport"], sent.details["recipient"]) == (
        "phone:code", "phone", "+44*******456")
    # The channel that carried the notice is the member's own, even for changes whose event names no channel.
    otp.trust_device(bob, label="Tablet")
    assert Phones.PhoneTransport.sent[-1].text.startswith(
        "Example: A device was added to your trusted devices (Tablet)")
    assert mailbox.messages == []


def notify_code(text: str) -> str:
    import re

    match = re.search(r"\b(\d{6})\b", text)
    assert match
    return match.group(1)


def test_totp_member_without_email_gets_no_notice(make_otp: Callable[..., OtpPro], mailbox: Mailbox,
                                                  clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    otp = make_otp()
    carol = Member("8", name="Carol")
    caplog.set_level(logging.INFO, logger="otp_pro.notify")
    enrol(otp, carol, "totp")
    otp.reset(carol)
    assert mailbox.messages == [] and otp.transports["outbox"].messages == []  # type: ignore[attr-defined]
    assert events_of(otp, notify.NOTIFICATION_SENT, notify.NOTIFICATION_FAILED) == []
    assert any("no transport can reach them" in r.getMessage() for r in caplog.records)
    # Not sent, and the audit log says so: support can tell "not told" from "told".
    unsent = events_of(otp, notify.NOTIFICATION_UNSENT)
    assert [e.details["change"] for e in unsent] == ["setup_completed", "reset"]
    assert unsent[1].details == {"change": "reset", "event_id": unsent[1].details["event_id"],
                                 "reason": "no_transport", "member_lookup": False}


def test_member_is_looked_up_when_the_event_came_without_one(make_otp: Callable[..., OtpPro], mailbox: Mailbox,
                                                             member: Member) -> None:
    class Directory:
        __name__ = "acme_directory"

        @hookimpl
        def otp_pro_member_lookup(self, member_id: str) -> Member | None:
            return member if member_id == member.id else None

    otp = make_otp(plugins=[Directory()])
    # An event recorded with no Member (as a clicked setup link, which names no member, records it).
    otp.record_event("device_trusted", "42", label="Laptop")
    [notice] = notices(mailbox)
    assert "Hello Ann," in body(notice) and "trusted devices (Laptop)" in body(notice)
    # Nobody knows member 99: the notice fails, audited, nothing raised.
    otp.record_event("reset", "99")
    [failed] = events_of(otp, notify.NOTIFICATION_FAILED)
    assert (failed.member_id, failed.details["error"], failed.details["change"]) == ("99", "UnknownMember", "reset")


def test_settings_are_validated(make_otp: Callable[..., OtpPro], smtp_server: tuple[str, int, Mailbox]) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_otp(providers=email_provider(smtp_server, notify_on=["reset", "verify_ok"], colour="red"))
    problems = "\n".join(info.value.problems)
    assert "providers.notifications.notify_on: unknown factor change 'verify_ok'" in problems
    assert "providers.notifications.colour: unknown setting" in problems


def test_the_plugin_knows_every_factor_change() -> None:
    # notify.py names the kinds itself (importing otp_pro.audit would load SQLAlchemy at discovery).
    assert set(notify.NOTIFIABLE) == set(audit.FACTOR_CHANGES)
    assert set(notify.DEFAULT_NOTIFY_ON) == set(audit.FACTOR_CHANGES) - {audit.DEVICE_REVOKED}
    assert notify.describe_browser(UA) == "Firefox on Linux"
    assert notify.describe_browser("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
                                   "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1") == "Safari on iOS"
    assert notify.describe_browser("SomeBot\x00/1") == "SomeBot/1" and notify.describe_browser(None) == ""


def test_admin_reset_from_the_cli_notifies_the_member(backend: str, tmp_path: Path, mailbox: Mailbox,
                                                      smtp_server: tuple[str, int, Mailbox], member: Member) -> None:
    class Directory:
        __name__ = "acme_directory"

        @hookimpl
        def otp_pro_member_lookup(self, member_id: str) -> Member | None:
            return member if member_id == member.id else None

    settings = base_settings(backend, providers=email_provider(smtp_server))
    config = tmp_path / "otp-pro.toml"
    config.write_text(settings_toml(settings))
    otp = OtpPro(settings, plugins=[Directory()])
    try:
        enrol(otp, member)
    finally:
        otp.close()
    mailbox.clear()

    result = CliRunner().invoke(cli, ["--config", str(config), "members", "reset", "42", "--actor", "ops-alice"],
                                obj={"plugins": [Directory()]})
    assert result.exit_code == 0, result.output
    [notice] = notices(mailbox)
    text = body(notice)
    assert "Two-step verification on your account was reset" in text
    assert "This was done by a site administrator." in text and "ops-alice" not in text
    otp = OtpPro(settings)
    try:
        sent = events_of(otp, notify.NOTIFICATION_SENT)
        assert [e.details["change"] for e in sent] == ["setup_completed", "reset"]
        assert otp.events(kinds=["reset"])[0].actor == "ops-alice"
    finally:
        otp.close()


def test_request_facts_cannot_add_lines_to_a_notice(make_otp: Callable[..., OtpPro], member: Member,
                                                    mailbox: Mailbox) -> None:
    otp = make_otp()
    otp.trust_device(member, label="Phone\n\nCall +1 555 0100 to keep your account",
                     ip="198.51.100.1\r\n\r\nCall +1 555 0100 now", user_agent="Evil\nBot/1.0\r\nX: y")
    [notice] = notices(mailbox)
    lines = body(notice).splitlines()
    assert "From: 198.51.100.1Call+15550100now (EvilBot/1.0X: y)" in lines
    assert not [line for line in lines if line.startswith("Call")]
    assert "(PhoneCall +1 555 0100 to keep your account)" in lines[2]
