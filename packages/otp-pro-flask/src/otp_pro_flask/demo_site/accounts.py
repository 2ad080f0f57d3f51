"""The demo logins: members in different roles, each meeting a different policy, some already set up."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from otp_pro.core import OtpPro
from otp_pro.member import Member

from .otp import DemoClock


@dataclass(frozen=True)
class DemoAccount:
    """A demo login: who it is, its password, and the channel it is enrolled on at start (if any)."""

    email: str
    password: str
    name: str
    roles: tuple[str, ...]
    about: str
    phone: str | None = None
    enroll: str | None = None
    #: A channel the account is about, which must be installed for it to be listed (``webauthn``).
    requires: str | None = None


ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount("admin@demo.test", "admin-demo", "Ada Admin", ("admin",),
                "required, authenticator app only: forced setup at first sign-in"),
    DemoAccount("editor@demo.test", "editor-demo", "Eddie Editor", ("editor",),
                "optional, codes by email (already set up)", enroll="email:code"),
    DemoAccount("member@demo.test", "member-demo", "Mia Member", ("member",),
                "required with a 14-day grace period: a 'set up soon' notice"),
    DemoAccount("sms@demo.test", "sms-demo", "Sam Sms", ("editor",),
                "optional, codes by SMS through Twilio (routed to the outbox)", phone="+447400123456",
                enroll="sms_twilio:code"),
    DemoAccount("link@demo.test", "link-demo", "Lin Link", ("editor",),
                "optional, sign-in links by email", enroll="email:magic_link"),
    DemoAccount("viewer@demo.test", "viewer-demo", "Vic Viewer", ("viewer",),
                "not required: no second step"),
    DemoAccount("passkey@demo.test", "passkey-demo", "Pat Passkey", ("passkey",),
                "required, passkeys only: registers one at first sign-in, then 'Sign in with a passkey' "
                "(open the demo at http://localhost)", requires="webauthn"),
)


def enroll(otp: OtpPro, clock: DemoClock, member: Member, channel: str) -> None:
    """Set ``member`` up on a delivered ``channel`` by reading the confirmation from the outbox.

    ``clock`` (``otp``'s clock) is set back meanwhile, so the setup code starts no resend cooldown now.
    """
    clock.offset = timedelta(minutes=10)
    try:
        otp.begin_setup(member, channel)
        message = otp.transports["outbox"].last()  # type: ignore[attr-defined]
        if channel.endswith(":magic_link"):
            token = re.search(r"token=([A-Za-z0-9_-]+)", message.text)
            assert token is not None
            otp.verify_token("magic_link", token.group(1))
        else:
            code = re.search(r"\b(\d{6,10})\b", message.text)
            assert code is not None
            otp.complete_setup(member, code.group(1))
    finally:
        clock.offset = timedelta(0)
        otp.transports["outbox"].clear()  # type: ignore[attr-defined]
