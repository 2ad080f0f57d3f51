"""Channel fallback: when delivery on the member's channel fails, the member is offered
their other available channels in policy order; the failure and the fallback are audit events.

Faults come from real parts: the loopback SMTP server answering 550 or 451, an SMTP port
nobody listens on, and a transport whose provider raises. Through the API and through the
Flask extension's test client, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flow_client import flow_client

from otp_pro import (
    DeliveryError,
    Member,
    Message,
    OtpPro,
    PermanentDeliveryError,
    Receipt,
    RecipientUnavailable,
    TransientDeliveryError,
    Transport,
    hookimpl,
)
from otp_pro.testing import Mailbox, free_port, mailed_code, outbox_code


class PigeonTransport(Transport):
    """A second delivery channel; ``fields["loft"]`` reaches the member. Its provider can be set on fire."""

    name = "pigeon"
    label = "Carrier pigeon"
    on_fire = False

    def __init__(self, config: Any, otp: OtpPro) -> None:
        super().__init__(config, otp)
        self.sent: list[Message] = []

    def recipient(self, member: Member) -> str:
        loft = member.fields.get("loft")
        if not loft:
            raise RecipientUnavailable("no loft on file")
        return str(loft)

    def send(self, message: Message) -> Receipt:
        if self.on_fire:
            raise RuntimeError("the loft is on fire")  # not a DeliveryError: the core must wrap it
        self.sent.append(message)
        return Receipt(provider_message_id=f"bird-{len(self.sent)}")


class Pigeons:
    __name__ = "acme_pigeons"

    @hookimpl
    def otp_pro_register_transports(self, register: Callable[[type[Transport]], None]) -> None:
        register(PigeonTransport)


class HidePigeonsFrom:
    """An availability plugin: hides the pigeon channel from one member."""

    __name__ = "acme_hide_pigeons"

    def __init__(self, member_id: str) -> None:
        self.member_id = member_id

    @hookimpl
    def otp_pro_channel_available(self, member: Member, channel: str) -> bool | None:
        return False if channel == "pigeon:code" and member.id == self.member_id else None


CHANNELS = ["email:code", "pigeon:code", "outbox:code", "totp"]


@pytest.fixture
def ann() -> Member:
    return Member(id="42", roles=["editor"], email="ann@example.com", name="Ann", fields={"loft": "north tower"})


@pytest.fixture
def build(make_otp: Callable[..., OtpPro]) -> Callable[..., OtpPro]:
    def factory(*plugins: object, **overrides: Any) -> OtpPro:
        overrides.setdefault("channels", CHANNELS)
        overrides.setdefault("default_channel", "email:code")
        overrides.setdefault("resend_cooldown_seconds", 60)  # a failed send must not count against it
        return make_otp(plugins=[Pigeons(), *plugins], **overrides)

    return factory


def enroll_by_email(otp: OtpPro, member: Member, mailbox: Mailbox, clock: Any) -> None:
    otp.begin_setup(member, "email:code")
    otp.complete_setup(member, mailed_code(mailbox, "ann@example.com"))
    clock.advance(61)  # past the cooldown of the setup code


def pigeon_code(otp: OtpPro) -> str:
    """The code in the newest message the pigeon carried."""
    pigeon = otp.transports["pigeon"]
    return re.search(r"\b(\d{6})\b", pigeon.sent[-1].text).group(1)  # type: ignore[attr-defined,union-attr]


def add_factors(otp: OtpPro, member: Member, *channels: str, mailbox: Mailbox | None = None) -> None:
    """Give ``member`` (enrolled already) a factor on each of ``channels``, by a real setup: only a member's own
    factors are sent to and offered as a fallback."""
    for channel in channels:
        otp.begin_setup(member, channel)
        if channel == "pigeon:code":
            code = pigeon_code(otp)
        elif channel == "email:code":
            assert mailbox is not None and member.email
            code = mailed_code(mailbox, member.email)
        else:
            code = outbox_code(otp)
        assert otp.complete_setup(member, code) == []  # not the first factor: no new backup codes


def test_smtp_550_fails_and_offers_the_other_channels_in_policy_order(
        build: Callable[..., OtpPro], ann: Member, mailbox: Mailbox, clock: Any) -> None:
    otp = build()
    enroll_by_email(otp, ann, mailbox, clock)
    add_factors(otp, ann, "outbox:code", "pigeon:code")
    mailbox.reply = "550 5.1.1 mailbox unavailable"
    with pytest.raises(PermanentDeliveryError) as caught:
        otp.send_challenge(ann)
    failed_id = caught.value.challenge_id
    assert failed_id is not None and caught.value.provider_code == "550"
    status = otp.delivery_status(ann)
    assert status is not None and status.challenge_id == failed_id
    assert (status.status, status.error_code, status.channel) == ("failed", "550", "email:code")
    assert status.fallback_channels == ("pigeon:code", "outbox:code")  # policy order; not totp, not email
    failed = otp.events(ann, kinds=["delivery_failed"])[0]
    assert failed.details["challenge_id"] == failed_id and failed.details["permanent"] is True
    # The fallback goes out at once: the failed send does not count against the 60 s cooldown.
    challenge = otp.send_challenge(ann, channel="pigeon:code")
    assert challenge.status == "sent"
    fallback = otp.events(ann, kinds=["delivery_fallback"])
    assert len(fallback) == 1
    assert fallback[0].details == {"from_channel": "email:code", "to_channel": "pigeon:code",
                                   "failed_challenge_id": failed_id, "error_code": "550"}
    assert fallback[0].channel == "pigeon:code"
    pigeon = otp.transports["pigeon"]
    code = re.search(r"\b(\d{6})\b", pigeon.sent[-1].text).group(1)  # type: ignore[attr-defined,union-attr]
    assert otp.verify(ann, code).ok
    # The failed challenge can never be verified (its code was never delivered, but make sure).
    assert otp.delivery_status(ann, failed_id).status == "failed"  # type: ignore[union-attr]
    # A later send on another channel, with nothing failed before it, is not a fallback.
    clock.advance(61)
    otp.send_challenge(ann, channel="outbox:code")
    assert len(otp.events(ann, kinds=["delivery_fallback"])) == 1


def test_refused_connection_and_a_crashing_provider_are_failures_with_fallback(
        build: Callable[..., OtpPro], ann: Member, mailbox: Mailbox, clock: Any) -> None:
    # The member's channel (their first, default factor) is the pigeon this time; then email's server is
    # unreachable too.
    otp = build(providers={"email": {"smtp_host": "127.0.0.1", "smtp_port": free_port(),
                                     "from_address": "otp@example.com"}})
    otp.begin_setup(ann, "pigeon:code")
    pigeon = otp.transports["pigeon"]
    assert len(otp.complete_setup(ann, pigeon_code(otp))) == 10
    # Ann's email factor is confirmed while her mail server still answers (an instance on the same database).
    add_factors(build(), ann, "email:code", mailbox=mailbox)
    add_factors(otp, ann, "outbox:code")
    assert otp.status(ann).channel == "pigeon:code"
    clock.advance(61)
    pigeon.on_fire = True  # type: ignore[attr-defined]
    with pytest.raises(TransientDeliveryError) as caught:
        otp.send_challenge(ann)
    assert caught.value.provider_code == "RuntimeError" and "on fire" not in str(caught.value)
    status = otp.delivery_status(ann)
    assert status is not None and status.status == "failed"
    assert status.fallback_channels == ("email:code", "outbox:code")
    with pytest.raises(TransientDeliveryError):  # nobody listens on email's port
        otp.send_challenge(ann, channel="email:code")
    status = otp.delivery_status(ann)
    assert status is not None and status.channel == "email:code" and status.status == "failed"
    assert status.fallback_channels == ("pigeon:code", "outbox:code")
    challenge = otp.send_challenge(ann, channel="outbox:code")
    assert otp.verify(ann, outbox_code(otp)).ok and challenge.channel == "outbox:code"
    moves = [(e.details["from_channel"], e.details["to_channel"])
             for e in reversed(otp.events(ann, kinds=["delivery_fallback"]))]
    assert moves == [("pigeon:code", "email:code"), ("email:code", "outbox:code")]
    assert len(otp.events(ann, kinds=["delivery_failed"])) == 2


def test_channels_hidden_by_policy_or_availability_are_not_offered(
        build: Callable[..., OtpPro], ann: Member, mailbox: Mailbox, clock: Any) -> None:
    hide = HidePigeonsFrom("nobody yet")
    otp = build(hide)
    enroll_by_email(otp, ann, mailbox, clock)
    add_factors(otp, ann, "pigeon:code", "outbox:code")
    hide.member_id = "42"  # Ann's pigeon factor is hidden from now on
    mailbox.reply = "451 4.3.0 try later"
    with pytest.raises(TransientDeliveryError):
        otp.send_challenge(ann)
    assert otp.delivery_status(ann).fallback_channels == ("outbox:code",)  # type: ignore[union-attr]
    # A role whose policy allows email and outbox only.
    strict = build(roles={"editor": {"requirement": "required", "channels": ["email:code", "totp", "outbox:code"]}})
    assert strict.fallback_channels(ann, "email:code") == ("outbox:code",)
    assert otp.fallback_channels(ann, "outbox:code") == ("email:code",)
    # A member whose loft is no longer known cannot fall back to pigeons, though he has a pigeon factor.
    with_loft = Member(id="43", roles=["editor"], email="bob@example.com", name="Bob", fields={"loft": "barn"})
    otp.begin_setup(with_loft, "email:code")
    otp.complete_setup(with_loft, mailed_code(mailbox, "bob@example.com"))
    add_factors(otp, with_loft, "pigeon:code", "outbox:code")
    bob = Member(id="43", roles=["editor"], email="bob@example.com", name="Bob")
    assert otp.fallback_channels(with_loft, "email:code") == ("pigeon:code", "outbox:code")
    assert otp.fallback_channels(bob, "email:code") == ("outbox:code",)


def test_delivery_status_is_only_the_members_own(build: Callable[..., OtpPro], ann: Member, mailbox: Mailbox,
                                                  clock: Any) -> None:
    otp = build()
    enroll_by_email(otp, ann, mailbox, clock)
    challenge = otp.send_challenge(ann)
    bob = Member(id="43", email="bob@example.com", name="Bob")
    assert otp.delivery_status(bob, challenge.id) is None
    assert otp.delivery_status(bob) is None
    assert otp.delivery_status(ann, "not a number") is None  # type: ignore[arg-type]
    status = otp.delivery_status(ann, challenge.id)
    assert status is not None and status.status == "sent" and status.done and status.fallback_channels == ()


# ------------------------------------------------------------------ the verify page (flow layer)


@pytest.fixture
def web(build: Callable[..., OtpPro], ann: Member, mailbox: Mailbox, clock: Any) -> Iterator[tuple[Any, OtpPro]]:
    otp = build()
    enroll_by_email(otp, ann, mailbox, clock)
    add_factors(otp, ann, "pigeon:code", "outbox:code")  # the fallbacks are Ann's own factors
    yield flow_client(otp, ann), otp


def csrf(client: Any) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/otp/verify").text)
    assert found
    return found.group(1)


def test_the_verify_page_offers_fallback_after_a_failed_send(web: tuple[Any, OtpPro], mailbox: Mailbox) -> None:
    client, otp = web
    assert client.get("/otp/api/delivery").status_code == 401  # signed out: a refusal, not a 500
    mailbox.reply = "550 5.1.1 mailbox unavailable"
    assert client.get("/login").headers["Location"] == "/otp/verify"  # the first code is sent at login, and fails
    page = client.get("/otp/verify")
    assert page.status_code == 200
    assert 'id="delivery-status"' in page.text and "could not be sent by Email" in page.text
    assert 'data-status="failed"' in page.text and "Try another method" in page.text
    offered = page.text[page.text.index('id="fallback"'):]
    offered = offered[:offered.index("</details>")]
    assert offered.index('value="pigeon:code"') < offered.index('value="outbox:code"')  # policy order
    # The failed channel is not offered as another method (the page's "send a new code" form may name it).
    assert 'value="email:code"' not in offered and "otp_pro_delivery.js" not in page.text  # done: no polling
    status = client.get("/otp/api/delivery")
    assert status.status_code == 200
    assert status.json["status"] == "failed" and status.json["done"] is True
    assert status.json["fallback"] == [{"channel": "pigeon:code", "label": "Carrier pigeon"},
                                       {"channel": "outbox:code", "label": "Development outbox"}]
    # Choosing one sends there.
    sent = client.post("/otp/send", data={"channel": "outbox:code", "csrf_token": csrf(client)})
    assert sent.status_code == 303
    page = client.get("/otp/verify")
    assert "We sent a 6-digit code by Development outbox" in page.text and "could not be sent" not in page.text
    assert client.get("/otp/api/delivery").json["status"] == "sent"
    event = otp.events("42", kinds=["delivery_fallback"])[0]
    assert (event.details["from_channel"], event.details["to_channel"]) == ("email:code", "outbox:code")
    done = client.post("/otp/verify", data={"code": outbox_code(otp), "csrf_token": csrf(client)})
    assert done.status_code == 303 and done.headers["Location"] == "/home"


def test_the_json_send_failure_lists_the_fallback(web: tuple[Any, OtpPro], mailbox: Mailbox, clock: Any) -> None:
    client, otp = web
    client.get("/login")  # the login's code goes out by email
    assert client.get("/otp/api/delivery").json["status"] == "sent"
    clock.advance(61)
    mailbox.reply = "451 4.3.0 try later"
    token = csrf(client)
    failed = client.post("/otp/api/send", json={}, headers={"X-CSRF-Token": token})
    assert failed.status_code == 502
    assert failed.json["error"] == "delivery" and "Carrier pigeon" in failed.json["message"]
    assert [item["channel"] for item in failed.json["fallback"]] == ["pigeon:code", "outbox:code"]
    again = client.post("/otp/api/send", json={"channel": "pigeon:code"}, headers={"X-CSRF-Token": token})
    assert again.status_code == 200 and again.json["delivery"] == "sent"
    assert isinstance(otp.events("42", kinds=["delivery_failed"])[0].details["challenge_id"], int)


def test_the_delivery_endpoint_before_any_send(web: tuple[Any, OtpPro], ann: Member) -> None:
    client, _otp = web
    with client.session_transaction() as session:
        session["otp_pro_member"] = ann.id
        session["otp_pro_login"] = "l" * 24
    nothing = client.get("/otp/api/delivery")
    assert nothing.status_code == 404 and nothing.json["error"] == "nothing_sent"
    with client.session_transaction() as session:
        session["otp_pro_sent"] = {"at": 0, "hint": "x", "channel": "email:code", "label": "Email",
                                   "challenge": "garbage"}
    assert client.get("/otp/api/delivery").status_code == 404  # a tampered session is not an error


def test_delivery_error_is_still_a_delivery_error(build: Callable[..., OtpPro], ann: Member, mailbox: Mailbox,
                                                  clock: Any) -> None:
    """The typed error the integrator catches is unchanged; it now names the failed challenge."""
    otp = build()
    enroll_by_email(otp, ann, mailbox, clock)
    mailbox.reply = "554 5.7.1 rejected"
    with pytest.raises(DeliveryError) as caught:
        otp.send_challenge(ann)
    assert isinstance(caught.value.challenge_id, int)
    assert "rejected" not in repr(caught.value.challenge_id)
