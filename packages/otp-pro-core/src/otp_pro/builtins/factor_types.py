"""The core's factor types: authenticator apps (TOTP), delivered codes and delivered links.

Registered through ``otp_pro_register_factor_types`` like a third party's, so
``otp-pro providers list`` names them and their plugin. TOTP goes through the
generic contract (:class:`~otp_pro.factor_types.FactorType`): it judges a code
against a seed and returns the time step, and the core accepts the step once.
The delivered types name the channels whose payload is typed back as a code
(``email:code``) or clicked (``email:magic_link``); the core's challenges send
and consume them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ..factor_types import Description, Enrolment, FactorType
from ..hookspecs import hookimpl
from ..i18n import N_
from ..i18n import gettext as _
from ..member import Member


class TotpFactor(FactorType):
    """An authenticator app: a seed shared once through a QR code, a code per time step (RFC 6238)."""

    name = "totp"
    label = N_("Authenticator app")

    def __init__(self, otp: Any) -> None:
        super().__init__(otp)
        # pyotp loads when an OtpPro starts, not when plugins are only discovered (`providers list`).
        from .. import totp

        self._totp = totp

    def begin(self, member: Member, *, imported: str | None = None) -> Enrolment:
        totp = self._totp
        seed = totp.new_seed() if imported is None else totp.check_seed(imported)
        settings = self.otp.settings
        issuer = settings.totp.issuer or settings.site_name
        uri = totp.provisioning_uri(seed, member.email or member.display_name, issuer, settings.totp)
        return Enrolment(seed, {"provisioning_uri": uri, "qr_svg": totp.qr_svg(uri), "secret": seed})

    def confirm(self, member: Member, secret: str, answer: Any, now: datetime) -> int | None:
        return self.check(member, secret, None, answer, now)

    def check(self, member: Member, secret: str, counter: int | None, answer: Any, now: datetime) -> int | None:
        return self._totp.match(secret, answer, now, self.otp.settings.totp, after_step=counter)

    def used_at(self, counter: int) -> datetime | None:
        # A step is a period of time: its start is when the code was good (no write of the time per use).
        return datetime.fromtimestamp(counter * self.otp.settings.totp.period, timezone.utc)

    def accepts(self, answer: Any) -> bool:
        return isinstance(answer, str) and len(answer) == self.otp.settings.totp.digits and answer.isdigit()

    def describe(self) -> Description:
        digits = self.otp.settings.totp.digits
        hint = _("Enter the %(digits)s-digit code from your authenticator app.", digits=digits)
        return Description("code", hint, digits=digits)


class DeliveredCodeFactor(FactorType):
    """A code sent through a transport (email, SMS) to the address confirmed at setup, typed back once."""

    name = "code"
    label = N_("One-time code")
    delivers = True

    def describe(self) -> Description:
        digits = self.otp.settings.code_length
        return Description("code", _("Enter the %(digits)s-digit code we sent you.", digits=digits),
                           digits=digits)


class DeliveredLinkFactor(FactorType):
    """A sign-in link sent through a transport to the address confirmed at setup, clicked once."""

    name = "link"
    label = N_("Sign-in link")
    delivers = True

    def describe(self) -> Description:
        return Description("link", _("Open the link we sent you, in this browser."))


@hookimpl
def otp_pro_register_factor_types(register):  # type: ignore[no-untyped-def]
    register(TotpFactor)
    register(DeliveredCodeFactor)
    register(DeliveredLinkFactor)
