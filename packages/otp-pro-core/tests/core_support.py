"""Settings, a bare Flask app and a third party's factor type (HOTP) that the core's tests share; the fixtures
built on them are in conftest.py.

Generic helpers (reading the outbox or the loopback mailbox, enrolling a member,
a page's CSRF token) are in the public kit, ``otp_pro.testing``.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import types
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pyotp
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from otp_pro import Member, OtpPro, SetupError, hookimpl
from otp_pro.factor_types import AnswerRefused, Confirmed, Description, Enrolment, FactorType, Issued, StoredFactor

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


class SoftKeyFactor(FactorType):
    """A software security key (Ed25519): the server issues a random challenge, the key signs it with a sign
    count, and the answer is JSON, not digits. The shape of a passkey, without WebAuthn's encodings, to prove
    the core's rules for a type that issues its own challenges (see :class:`SoftKey` for the device side)."""

    name = "softkey"
    label = "Security key"
    answer_is_code = False
    issues_challenge = True
    counter_must_grow = False
    challenge_seconds = 120

    def begin(self, member: Member, *, imported: str | None = None) -> Enrolment:
        challenge = secrets.token_urlsafe(32)
        return Enrolment(json.dumps({"challenge": challenge}), {"challenge": challenge})

    def confirm(self, member: Member, secret: str, answer: Any, now: datetime) -> Confirmed | None:
        sent = json.loads(answer)
        if sent.get("challenge") != json.loads(secret)["challenge"]:
            raise AnswerRefused("wrong_challenge")
        public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(sent["public_key"]))
        if not _signed(public, sent):
            return None
        kept = json.dumps({"key_id": sent["key_id"], "public_key": sent["public_key"]})
        return Confirmed(counter=int(sent["counter"]), secret=kept, handle=sent["key_id"])

    def issue(self, member: Member, factors: Sequence[StoredFactor], now: datetime) -> Issued:
        value = secrets.token_urlsafe(32)
        return Issued(value, {"challenge": value, "keys": [json.loads(f.secret)["key_id"] for f in factors]})

    def challenge_of(self, answer: Any) -> str | None:
        value = json.loads(answer).get("challenge")
        return value if isinstance(value, str) else None

    def check(self, member: Member, secret: str, counter: int | None, answer: Any, now: datetime) -> int | None:
        sent, kept = json.loads(answer), json.loads(secret)
        if sent.get("key_id") != kept["key_id"]:
            return None
        public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(kept["public_key"]))
        if not _signed(public, sent):
            raise AnswerRefused("bad_signature")
        new = int(sent["counter"])
        # As WebAuthn says of a sign count: one that does not grow, when either is not 0, may be a clone.
        if counter is not None and new <= counter and (new or counter):
            raise AnswerRefused("counter_regressed")
        return new

    def accepts(self, answer: Any) -> bool:
        if not isinstance(answer, str) or not answer.startswith("{") or len(answer) > 4096:
            return False
        try:
            sent = json.loads(answer)
        except ValueError:
            return False
        return isinstance(sent, dict) and {"key_id", "challenge", "counter", "signature"} <= sent.keys()

    def describe(self) -> Description:
        return Description("softkey", "Touch your security key.")


def _signed(public: Ed25519PublicKey, sent: dict[str, Any]) -> bool:
    try:
        public.verify(base64.urlsafe_b64decode(sent["signature"]), f"{sent['challenge']}|{sent['counter']}".encode())
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


class SoftKey:
    """The device side of :class:`SoftKeyFactor`: a key pair, an id and a sign count."""

    def __init__(self, *, counting: bool = True) -> None:
        self.private = Ed25519PrivateKey.generate()
        self.key_id = secrets.token_urlsafe(16)
        self.counter = 0
        self.counting = counting

    def _answer(self, challenge: str, **extra: Any) -> str:
        signature = self.private.sign(f"{challenge}|{self.counter}".encode())
        return json.dumps({"key_id": self.key_id, "challenge": challenge, "counter": self.counter,
                           "signature": base64.urlsafe_b64encode(signature).decode(), **extra})

    def register(self, show: Any) -> str:
        public = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return self._answer(show["challenge"], public_key=base64.urlsafe_b64encode(public).decode())

    def sign(self, show: Any) -> str:
        if self.counting:
            self.counter += 1
        return self._answer(show["challenge"])


softkey_plugin = types.SimpleNamespace(
    __name__="otp_pro_softkey_example",
    otp_pro_register_factor_types=hookimpl(lambda register: register(SoftKeyFactor)),
)
