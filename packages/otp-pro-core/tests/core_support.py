"""Settings, a bare Flask app and a third party's factor type (HOTP) that the core's tests share; the fixtures
built on them are in conftest.py.

Generic helpers (reading the outbox or the loopback mailbox, enrolling a member,
a page's CSRF token) are in the public kit, ``otp_pro.testing``.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pyotp

from otp_pro import Member, OtpPro, SetupError, hookimpl
from otp_pro.factor_types import Description, Enrolment, FactorType

SECRET_KEY = "test-secret-key-" + "x" * 32


def base_settings(database_url: str, **overrides: Any) -> dict[str, Any]:
    """Site settings on ``database_url``: the outbox, TOTP and email channels, no resend cooldown."""
    settings: dict[str, Any] = {
        "secret_key": SECRET_KEY,
        "database_url": database_url,
        "site_name": "Example",
        "support_email": "help@example.com",
        "channels": ["outbox:code", "totp", "email:code"],
        "default_channel": "outbox:code",
        # Tests that are not about throttling should not trip over it; those that are set it.
        "resend_cooldown_seconds": 0,
    }
    settings.update(overrides)
    return settings


def give_delivered_factor(otp: OtpPro, member: Member, channel: str) -> None:
    """Add a factor on ``channel`` (at the member record's address) to an enrolled ``member`` as a completed
    setup records it, without sending its confirmation: for tests whose provider is scripted to fail."""
    from otp_pro.storage.schema import factors
    from otp_pro.transports import mask_recipient

    transport = otp.channels[channel].transport
    assert transport is not None, f"{channel} is not a delivered channel"
    recipient = transport.recipient(member)
    with otp.db.write() as conn:
        conn.execute(factors.insert().values(
            member_id=member.id, kind=channel, is_default=False, created_at=otp.clock(),
            recipient=otp.keys.encrypt(recipient), recipient_hint=mask_recipient(recipient),
            recipient_hash=otp.keys.hash("recipient", recipient.strip().lower())))


def burst(fleet: list[OtpPro], attempt: Callable[[OtpPro, int], Any], threads: int = 32) -> list[Any]:
    """Run ``attempt(instance, i)`` on ``threads`` threads released together, thread ``i`` on instance
    ``i % len(fleet)``; each one's answer or exception (the concurrency tests sort them)."""
    barrier = threading.Barrier(threads)
    results: list[Any] = [None] * threads

    def work(i: int) -> None:
        barrier.wait()
        try:
            results[i] = attempt(fleet[i % len(fleet)], i)
        except Exception as exc:  # noqa: BLE001 - the test sorts answers from exceptions
            results[i] = exc

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=120)
    return results


class HotpFactor(FactorType):
    """A counter token (RFC 4226): each press shows the next code; a code ahead of the counter by up to
    ``LOOK_AHEAD`` presses is accepted and moves the counter past it."""

    name = "hotp"
    label = "Key-ring token"
    LOOK_AHEAD = 5

    def begin(self, member: Member, *, imported: str | None = None) -> Enrolment:
        if imported is not None and len(imported) < 26:
            raise SetupError("an imported token secret is at least 128 bits of base32")
        secret = imported or pyotp.random_base32(32)
        return Enrolment(secret, {"secret": secret})

    def confirm(self, member: Member, secret: str, answer: Any, now: datetime) -> int | None:
        counter = self.check(member, secret, None, answer, now)
        return counter

    def check(self, member: Member, secret: str, counter: int | None, answer: Any, now: datetime) -> int | None:
        hotp = pyotp.HOTP(secret)
        start = 0 if counter is None else counter + 1
        for presses in range(start, start + self.LOOK_AHEAD):
            if hotp.verify(answer, presses):
                return presses
        return None

    def describe(self) -> Description:
        return Description("code", "Press the button on your key-ring token and enter its 6 digits.", digits=6)


hotp_plugin = types.SimpleNamespace(
    __name__="otp_pro_hotp_example",
    otp_pro_register_factor_types=hookimpl(lambda register: register(HotpFactor)),
)
