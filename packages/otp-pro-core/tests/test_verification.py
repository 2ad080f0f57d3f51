"""Codes, lockout, throttling, backup codes, trusted devices, disable and reset: every rule, on each database."""

from __future__ import annotations

from typing import Any, ClassVar

import pyotp
import pytest

from otp_pro import (
    HARD_LOCK,
    ChannelUnavailable,
    DeliveryError,
    InvalidCode,
    LockedOut,
    Member,
    NotEnrolled,
    NotFound,
    PolicyError,
    SetupBegunElsewhere,
    SetupError,
    ThrottledError,
    TransientDeliveryError,
    Transport,
    hookimpl,
)
from otp_pro import crypto as crypto_module
from otp_pro.storage.schema import challenges
from otp_pro.testing import enrol, mailed_code, outbox_code


def test_code_is_accepted_once(otp, member):
    enrol(otp, member)
    challenge = otp.send_challenge(member, ip="203.0.113.5", user_agent="pytest")
    code = outbox_code(otp)
    first = otp.verify(member, code, ip="203.0.113.5", user_agent="pytest")
    assert first.ok and first.method == "code" and first.channel == "outbox:code"
    second = otp.verify(member, code)
    assert not second.ok and second.reason == "invalid"
    assert challenge.purpose == "verify" and challenge.recipient_hint == "a***@example.com"


def test_code_length_setting_is_used(make_otp, member):
    otp = make_otp(code_length=8)
    enrol(otp, member)
    otp.send_challenge(member)
    code = outbox_code(otp)
    assert len(code) == 8
    assert otp.verify(member, code).ok


def test_code_expires(make_otp, member, clock):
    otp = make_otp(code_ttl_seconds=900)
    enrol(otp, member)
    clock.advance(60)
    otp.send_challenge(member)
    code = outbox_code(otp)
    clock.advance(899)
    clock.advance(1)
    result = otp.verify(member, code)
    assert not result.ok and result.reason == "expired"


def test_code_is_valid_until_just_before_expiry(make_otp, member, clock):
    otp = make_otp(code_ttl_seconds=900)
    enrol(otp, member)
    clock.advance(60)
    otp.send_challenge(member)
    code = outbox_code(otp)
    clock.advance(899)
    assert otp.verify(member, code).ok


def test_new_challenge_invalidates_earlier_ones(otp, member, clock):
    enrol(otp, member)
    clock.advance(31)
    otp.send_challenge(member)
    old = outbox_code(otp)
    clock.advance(31)
    otp.send_challenge(member)
    new = outbox_code(otp)
    if old != new:
        assert not otp.verify(member, old).ok
    assert otp.verify(member, new).ok


def test_setup_code_cannot_sign_in_and_sign_in_code_cannot_complete_setup(otp, member, clock):
    otp.begin_setup(member, "outbox:code")
    setup_code = outbox_code(otp)
    assert otp.verify(member, setup_code).reason == "not_enrolled"
    otp.complete_setup(member, setup_code)
    clock.advance(31)
    otp.begin_setup(member, "email:code")
    clock.advance(31)
    otp.send_challenge(member, channel="outbox:code")  # voids the setup code
    sign_in = outbox_code(otp)
    with pytest.raises(InvalidCode):
        otp.complete_setup(member, sign_in)


def test_wrong_codes_lock_the_member(make_otp, member, clock):
    otp = make_otp(max_attempts=3, lockout_seconds=600, code_ttl_seconds=1800)
    enrol(otp, member)
    clock.advance(31)
    otp.send_challenge(member)
    good = outbox_code(otp)
    wrong = "000000" if good != "000000" else "111111"
    assert otp.verify(member, wrong).attempts_remaining == 2
    assert otp.verify(member, wrong).attempts_remaining == 1
    locked = otp.verify(member, wrong)
    assert locked.reason == "locked" and locked.locked_until == clock() + __import__("datetime").timedelta(seconds=600)
    # Even the right code is refused during the lockout, and does not count.
    refused = otp.verify(member, good)
    assert not refused.ok and refused.reason == "locked"
    assert otp.status(member).locked_until == locked.locked_until
    with pytest.raises(LockedOut):
        otp.send_challenge(member)
    kinds = [e.kind for e in otp.events(member, limit=5)]
    assert "locked_out" in kinds
    clock.advance(601)
    assert otp.status(member).locked_until is None
    assert otp.verify(member, good).ok


def test_failures_count_across_methods(make_otp, member):
    otp = make_otp(max_attempts=3)
    enrol(otp, member, "totp")
    otp.verify(member, "000000")  # a TOTP-shaped or code-shaped guess
    otp.verify(member, "aaaaa-bbbbb")  # a backup-code-shaped guess
    result = otp.verify(member, "99999999")  # wrong length for both
    assert result.reason == "locked"


def test_success_resets_the_failure_count(make_otp, member, clock):
    otp = make_otp(max_attempts=3)
    enrol(otp, member)
    clock.advance(31)
    otp.send_challenge(member)
    good = outbox_code(otp)
    wrong = "000000" if good != "000000" else "111111"
    otp.verify(member, wrong)
    otp.verify(member, wrong)
    assert otp.verify(member, good).ok
    assert otp.verify(member, wrong).attempts_remaining == 2


def test_nist_ceiling_hard_locks_after_100_consecutive_failures(make_otp, member, clock):
    otp = make_otp(max_attempts=10, lockout_seconds=60)
    enrol(otp, member)
    for i in range(100):
        result = otp.verify(member, "000000" if i % 2 else "111111")
        if result.reason == "locked" and i < 99:
            clock.advance(61)  # sit out each temporary lockout
    assert result.reason == "locked" and result.locked_until == HARD_LOCK
    clock.advance(days=365)
    assert otp.status(member).locked_until == HARD_LOCK
    assert otp.verify(member, "000000").reason == "locked"
    otp.unlock(member, actor="support", ip="192.0.2.7", user_agent="Support Browser/2")
    assert otp.status(member).locked_until is None
    [event] = otp.events(member, kinds=["unlocked"])
    assert (event.actor, event.ip, event.user_agent) == ("support", "192.0.2.7", "Support Browser/2")


@pytest.mark.parametrize(
    "code", [None, "", "   ", "12 34", "١٢٣٤٥٦", "12345678901234567890" * 5, b"\xff\xfe", "abc$%", 3.5, []]
)
def test_malformed_input_is_refused_without_state_change(otp, member, code):
    enrol(otp, member)
    before = len(otp.events(member, limit=1000))
    result = otp.verify(member, code)
    assert not result.ok
    if result.reason == "malformed":
        assert len(otp.events(member, limit=1000)) == before


def test_full_width_digits_spaces_and_dashes_are_accepted(otp, member, clock):
    enrol(otp, member)
    clock.advance(31)
    otp.send_challenge(member)
    code = outbox_code(otp)
    typed = " " + "".join(chr(0xFF10 + int(d)) for d in code[:3]) + "-" + code[3:] + " "
    assert otp.verify(member, typed).ok


def test_cooldown_between_sends(make_otp, member, clock):
    otp = make_otp(resend_cooldown_seconds=30)
    enrol(otp, member)
    clock.advance(30)
    otp.send_challenge(member)
    clock.advance(10)
    with pytest.raises(ThrottledError) as info:
        otp.send_challenge(member)
    assert info.value.limit == "cooldown" and 1 <= info.value.retry_after <= 21
    clock.advance(20)
    otp.send_challenge(member)
    assert otp.events(member, kinds=["send_throttled"])[0].details["limit"] == "cooldown"


def test_a_consumed_code_does_not_hold_back_the_next_send(make_otp, member, mailbox):
    # The setup code was used a moment ago: the first sign-in's code goes out at once.
    otp = make_otp(resend_cooldown_seconds=30, max_sends_per_hour=4)
    otp.begin_setup(member, "email:code")
    otp.complete_setup(member, mailed_code(mailbox, member.email))
    mailbox.clear()
    assert otp.send_challenge(member).status == "sent"
    # An unused code still holds the cooldown: asking again at once is refused.
    with pytest.raises(ThrottledError) as info:
        otp.send_challenge(member)
    assert info.value.limit == "cooldown"
    assert otp.verify(member, mailed_code(mailbox, member.email)).ok
    for _ in range(2):  # each code used: the next sign-in is not held back
        mailbox.clear()
        assert otp.send_challenge(member).status == "sent"
        assert otp.verify(member, mailed_code(mailbox, member.email)).ok
    # The hourly cap still counts every message sent, used or not: setup + three sends = 4.
    with pytest.raises(ThrottledError) as info:
        otp.send_challenge(member)
    assert info.value.limit == "member_hourly"


def test_cooldown_zero_switches_it_off(make_otp, member):
    otp = make_otp(resend_cooldown_seconds=0, max_sends_per_hour=50)
    enrol(otp, member)
    for _ in range(3):
        otp.send_challenge(member)


def test_hourly_cap_per_member(make_otp, member, clock):
    otp = make_otp(resend_cooldown_seconds=0, max_sends_per_hour=3)
    enrol(otp, member)  # the setup code is the first send
    otp.send_challenge(member)
    otp.send_challenge(member)
    with pytest.raises(ThrottledError) as info:
        otp.send_challenge(member)
    assert info.value.limit == "member_hourly"
    clock.advance(3601)
    otp.send_challenge(member)


@pytest.mark.parametrize(("gap", "refused"), [(29.999999, True), (30, False), (30.000001, False)])
def test_the_cooldown_ends_to_the_microsecond(make_otp, member, clock, gap, refused):
    # On PostgreSQL the throttle is decided in SQL (the insert's condition) and explained in
    # Python: both must draw the line at the same instant.
    otp = make_otp(resend_cooldown_seconds=30)
    enrol(otp, member)
    clock.advance(30)
    otp.send_challenge(member)
    clock.advance(gap)
    if refused:
        with pytest.raises(ThrottledError) as info:
            otp.send_challenge(member)
        assert info.value.limit == "cooldown" and info.value.retry_after == 1
    else:
        assert otp.send_challenge(member).status == "sent"


def test_the_hourly_cap_frees_a_send_when_the_oldest_turns_an_hour_old(make_otp, member, clock):
    otp = make_otp(resend_cooldown_seconds=0, max_sends_per_hour=2)
    enrol(otp, member)  # the setup code is the first send
    clock.advance(1)
    otp.send_challenge(member)
    clock.advance(3598.999999)  # the setup code is a microsecond short of an hour old: it still counts
    with pytest.raises(ThrottledError) as info:
        otp.send_challenge(member)
    assert info.value.limit == "member_hourly" and info.value.retry_after == 1
    clock.advance(0.000001)  # an hour old: it no longer counts
    assert otp.send_challenge(member).status == "sent"


def test_hourly_cap_per_recipient_across_members(make_otp, clock):
    otp = make_otp(resend_cooldown_seconds=0, max_sends_per_hour=10, max_sends_per_hour_per_recipient=2)
    shared = "Shared@Example.com"
    a = Member(id="a", email=shared)
    b = Member(id="b", email=shared.lower())
    otp.begin_setup(a, "outbox:code")
    otp.begin_setup(b, "outbox:code")
    with pytest.raises(ThrottledError) as info:
        otp.begin_setup(Member(id="c", email=shared), "outbox:code")
    assert info.value.limit == "recipient_hourly"


class FailingTransport(Transport):
    """A transport whose provider is down: the fault a real provider cannot be made to show on demand."""

    name = "flaky"
    label = "Flaky"
    message_format = "text"
    fail = True
    sent: ClassVar[list[Any]] = []

    def recipient(self, member):
        return member.fields.get("phone") or "+15550000000"

    def send(self, message):
        if FailingTransport.fail:
            raise TransientDeliveryError("provider timed out", transport=self.name, provider_code="timeout")
        FailingTransport.sent.append(message)
        from otp_pro import Receipt

        return Receipt(provider_message_id="SM123")


class FlakyPlugin:
    @hookimpl
    def otp_pro_register_transports(self, register):
        register(FailingTransport)


def add_flaky_factor(otp, member):
    """Give ``member`` a factor on ``flaky:code`` (its provider up for the setup's code): only a member's own
    factors are sent to."""
    FailingTransport.fail = False
    try:
        otp.begin_setup(member, "flaky:code")
        assert otp.complete_setup(member, FailingTransport.sent[-1].text.split()[0]) == []
    finally:
        FailingTransport.fail = True


def test_failed_delivery_is_void_and_does_not_count_against_cooldown(make_otp, member, clock):
    otp = make_otp(plugins=[FlakyPlugin()], channels=["outbox:code", "flaky:code"], resend_cooldown_seconds=30)
    enrol(otp, member)
    add_flaky_factor(otp, member)
    clock.advance(31)
    FailingTransport.fail = True
    with pytest.raises(DeliveryError) as info:
        otp.send_challenge(member, channel="flaky:code")
    assert not info.value.permanent and info.value.provider_code == "timeout"
    event = otp.events(member, kinds=["delivery_failed"])[0]
    assert event.details["provider_code"] == "timeout" and event.outcome == "failed"
    with otp.db.read() as conn:
        statuses = [r.status for r in conn.execute(challenges.select().where(
            challenges.c.channel == "flaky:code", challenges.c.purpose == "verify"))]
    assert statuses == ["failed"]
    # The failed send neither starts the cooldown nor voids earlier codes.
    FailingTransport.fail = False
    FailingTransport.sent.clear()
    try:
        otp.send_challenge(member, channel="flaky:code")
    finally:
        FailingTransport.fail = True
    code = FailingTransport.sent[-1].text.split()[0]
    assert otp.verify(member, code).ok


def test_plain_exception_from_a_transport_becomes_a_delivery_error(make_otp, member):
    class Broken(FailingTransport):
        name = "broken"

        def send(self, message):
            raise RuntimeError(f"boom with {message.text}")

    class Plugin:
        @hookimpl
        def otp_pro_register_transports(self, register):
            register(Broken)

    otp = make_otp(plugins=[Plugin()], channels=["outbox:code", "broken:code"])
    enrol(otp, member)
    # The setup's confirmation is the send (a member has no factor on the channel before it).
    with pytest.raises(TransientDeliveryError) as info:
        otp.begin_setup(member, "broken:code")
    assert "boom" not in str(info.value) and info.value.provider_code == "RuntimeError"


def test_send_challenge_refuses_unenrolled_totp_and_unknown_channels(otp, member):
    with pytest.raises(NotEnrolled):
        otp.send_challenge(member)
    enrol(otp, member, "totp")
    with pytest.raises(ChannelUnavailable):
        otp.send_challenge(member)
    with pytest.raises(ChannelUnavailable):
        otp.send_challenge(member, channel="carrier-pigeon:code")


def test_backup_codes_single_use_and_one_kdf_per_check(otp, member, monkeypatch):
    codes = enrol(otp, member)
    assert len(codes) == 10 and len(set(codes)) == 10
    calls = []
    real = crypto_module.backup_kdf

    def counting(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(crypto_module, "backup_kdf", counting)
    result = otp.verify(member, codes[7].upper().replace("-", " "))
    assert result.ok and result.method == "backup_code" and result.backup_codes_remaining == 9
    assert len(calls) == 1
    calls.clear()
    assert not otp.verify(member, codes[7]).ok
    assert len(calls) == 1
    assert otp.status(member).backup_codes_remaining == 9
    assert otp.events(member, kinds=["backup_code_used"])[0].details == {"remaining": 9}


def test_regenerated_backup_codes_replace_the_old_ones(make_otp, member):
    otp = make_otp(backup_code_count=12)
    old = enrol(otp, member)
    new = otp.regenerate_backup_codes(member, actor="ann")
    assert len(new) == 12 and not set(old) & set(new)
    assert not otp.verify(member, old[0]).ok
    assert otp.verify(member, new[0]).ok
    with pytest.raises(NotEnrolled):
        otp.regenerate_backup_codes(Member(id="nobody", email="n@example.com"))


def test_trusted_devices(make_otp, member, clock):
    otp = make_otp(trusted_device_days=30)
    enrol(otp, member)
    token = otp.trust_device(member, label="Firefox on Linux\x00")
    assert otp.is_trusted(member, token)
    assert not otp.is_trusted(member, token + "x")
    assert not otp.is_trusted(Member(id="someone-else"), token)
    assert not otp.is_trusted(member, None)
    devices = otp.trusted_devices(member)
    assert [d.label for d in devices] == ["Firefox on Linux"]
    clock.advance(days=30, seconds=1)
    assert not otp.is_trusted(member, token)
    clock.advance(days=-30, seconds=-1)
    otp.revoke_device(member, devices[0].id, actor="ann")
    assert not otp.is_trusted(member, token)
    with pytest.raises(NotFound):
        otp.revoke_device(member, devices[0].id)
    with pytest.raises(NotFound):
        otp.revoke_device(member, "not-a-number")


def test_a_new_factor_revokes_the_trusted_devices(make_otp, member, clock):
    """After a new authenticator seed (or any new factor) an old device cookie no longer skips the step."""
    import pyotp

    otp = make_otp(trusted_device_days=30)
    enrol(otp, member)
    token = otp.trust_device(member, label="laptop")
    info = otp.begin_setup(member, "totp")
    assert otp.is_trusted(member, token)  # a setup only begun changes nothing yet
    otp.complete_setup(member, pyotp.TOTP(info.secret).at(clock()))
    assert not otp.is_trusted(member, token)
    assert otp.trusted_devices(member) == []
    completed = otp.events(member, kinds=["setup_completed"])[0]
    assert completed.details["devices_revoked"] == 1


def test_the_hard_lock_refuses_trusted_devices_and_a_temporary_lock_does_not(make_otp, member):
    otp = make_otp(trusted_device_days=30, max_attempts=5, lockout_seconds=60)
    enrol(otp, member)
    token = otp.trust_device(member, label="laptop")
    for _ in range(5):
        otp.verify(member, "00000000")
    assert otp.status(member).locked_until is not None
    assert otp.is_trusted(member, token)  # a temporary lock: the member's own device still passes
    from sqlalchemy import update

    from otp_pro.storage.schema import members

    with otp.db.write() as conn:  # 100 consecutive failures, as a long attack across lockouts leaves them
        conn.execute(update(members).where(members.c.member_id == member.id).values(consecutive_failures=100))
    assert not otp.is_trusted(member, token)
    otp.unlock(member, actor="support")
    assert otp.is_trusted(member, token)


def test_trusted_devices_switched_off(make_otp, member):
    otp = make_otp(trusted_device_days=0)
    with pytest.raises(PolicyError):
        otp.trust_device(member)


def test_reset_forces_setup_and_revokes_everything(make_otp, clock):
    otp = make_otp(mode="required")
    member = Member(id="7", email="r@example.com")
    codes = enrol(otp, member)
    token = otp.trust_device(member, label="phone")
    otp.reset(member, actor="support")
    status = otp.status(member)
    assert not status.enrolled and status.must_setup and status.backup_codes_remaining == 0
    assert not otp.is_trusted(member, token)
    assert otp.verify(member, codes[0]).reason == "not_enrolled"
    event = otp.events(member, kinds=["reset"])[0]
    assert event.actor == "support" and event.details["devices_revoked"] == 1


def test_disable_optional_member(otp, member):
    enrol(otp, member)
    assert otp.status(member).can_disable
    otp.disable(member, actor="ann")
    status = otp.status(member)
    assert not status.enrolled and status.disabled and not status.verification_needed


def test_complete_setup_errors(otp, member, clock):
    with pytest.raises(SetupError):
        otp.complete_setup(member, "123456")
    otp.begin_setup(member, "outbox:code")
    with pytest.raises(InvalidCode) as info:
        otp.complete_setup(member, "000000" if outbox_code(otp) != "000000" else "111111")
    assert info.value.result.attempts_remaining == 4
    clock.advance(seconds=otp.settings.setup_ttl_seconds + 1)
    with pytest.raises(SetupError):
        otp.complete_setup(member, outbox_code(otp))


def test_a_setup_begun_with_a_binding_is_completed_only_with_it(make_otp, member, clock):
    otp = make_otp(max_attempts=3)
    otp.begin_setup(member, "outbox:code", binding="browser-a")
    code = outbox_code(otp)
    for other in (None, "", "browser-b"):
        with pytest.raises(SetupBegunElsewhere):
            otp.complete_setup(member, code, binding=other)
    assert not otp.status(member).enrolled
    refused = otp.events(member, kinds=["verify_failed"])
    assert len(refused) == 3 and all(e.details["counted"] is False and e.details["setup"] for e in refused)
    # Refused before the code was looked at: no attempt counted, and the code still works for its caller.
    with pytest.raises(InvalidCode) as wrong:
        otp.complete_setup(member, "000000" if code != "000000" else "111111", binding="browser-a")
    assert wrong.value.result.attempts_remaining == 2
    assert len(otp.complete_setup(member, code, binding="browser-a")) == 10
    # A setup begun later by another caller replaces this one: its code is not ours to finish.
    otp.begin_setup(member, "totp", binding="browser-a")
    info = otp.begin_setup(member, "totp", binding="browser-b")
    with pytest.raises(SetupBegunElsewhere):
        otp.complete_setup(member, pyotp.TOTP(info.secret).at(otp.clock()), binding="browser-a")
    assert otp.complete_setup(member, pyotp.TOTP(info.secret).at(otp.clock()), binding="browser-b") == []
    assert [f.kind for f in otp.status(member).factors] == ["outbox:code", "totp"]


def test_every_step_is_audited_with_ip_and_user_agent(otp, member, clock):
    otp.begin_setup(member, "outbox:code", ip="198.51.100.7", user_agent="UA/1")
    code = outbox_code(otp)
    otp.complete_setup(member, code, ip="198.51.100.7", user_agent="UA/1")
    clock.advance(31)
    otp.send_challenge(member, ip="198.51.100.7", user_agent="UA/1")
    otp.verify(member, outbox_code(otp), ip="198.51.100.7", user_agent="UA/1")
    events = otp.events(member)
    kinds = [e.kind for e in reversed(events)]
    assert kinds == ["setup_started", "challenge_sent", "setup_completed", "backup_codes_generated",
                     "notification_sent", "challenge_sent", "verify_ok"]
    for event in events:
        if event.kind == "notification_sent":  # written by the notification plugin, not by the request
            assert event.details["change"] == "setup_completed" and code not in str(event.details)
            continue
        assert event.ip == "198.51.100.7" and event.user_agent == "UA/1" and event.member_id == "42"
        assert code not in str(event.details)


def test_event_listeners_get_committed_events_and_cannot_undo_them(make_otp, member):
    seen = []

    class Listener:
        @hookimpl
        def otp_pro_event(self, otp, event):
            with otp.db.read() as conn:  # the event is already committed
                from otp_pro.storage.schema import audit_events

                count = conn.execute(audit_events.select().where(audit_events.c.id == event.id)).all()
            seen.append((event.kind, event.factor_change, len(count)))
            raise RuntimeError("listener bug")

    otp = make_otp(plugins=[Listener()])
    enrol(otp, member)
    assert ("setup_completed", True, 1) in seen and ("challenge_sent", False, 1) in seen
    assert otp.status(member).enrolled


def test_unconfigured_transport_is_left_out_and_close_reaches_transports(sqlite_url):
    closed: list[str] = []

    class Idle(FailingTransport):
        name = "idle"

        @property
        def configured(self) -> bool:
            return False

        def close(self) -> None:
            closed.append(self.name)

    class Plugin:
        @hookimpl
        def otp_pro_register_transports(self, register):
            register(Idle)

    from core_support import base_settings

    from otp_pro import OtpPro

    otp = OtpPro({**base_settings(sqlite_url), "channels": None}, plugins=[Plugin()])
    assert "idle:code" in otp.channels and "idle:code" not in otp.registered_channels
    assert "email:code" in otp.registered_channels and "outbox:code" not in otp.registered_channels
    otp.close()
    assert closed == ["idle"]


def test_a_failure_of_the_sites_own_check_counts_toward_the_lockout(make_otp, member):
    otp = make_otp(max_attempts=3)
    enrol(otp, member)
    first = otp.record_failure(member, reason="password", ip="203.0.113.5")
    assert not first.ok and first.reason == "password" and first.attempts_remaining == 2
    assert otp.verify(member, "00000000").attempts_remaining == 1  # the same counter as codes
    locked = otp.record_failure(member, reason="password")
    assert locked.reason == "locked" and locked.locked_until is not None
    again = otp.record_failure(member, reason="password")  # locked: refused, not counted again
    assert again.reason == "locked"
    failed = otp.events(member, kinds=["verify_failed"])
    assert [e.details["reason"] for e in failed] == ["password", "invalid", "password"]
    assert failed[0].ip is None and failed[2].ip == "203.0.113.5"
    with pytest.raises(ValueError, match="snake_case"):
        otp.record_failure(member, reason="wrong password!")
