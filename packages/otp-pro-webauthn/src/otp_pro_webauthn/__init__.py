"""otp-pro-webauthn: passkeys and security keys for otp-pro (the ``webauthn`` factor type).

Installed, it registers the factor type ``webauthn`` and the settings section
``providers.webauthn`` through the ``otp_pro`` entry point; list ``webauthn`` in
a role's (or the site's) ``channels`` to offer it. See README.md.
"""

from __future__ import annotations

from .ceremony import COUNTER_REGRESSED, USER_NOT_VERIFIED, WRONG_ORIGIN, WRONG_RP_ID
from .factor import WebAuthnFactor
from .options import SECTION, RelyingParty, relying_party

__version__ = "0.1.0"

__all__ = [
    "COUNTER_REGRESSED", "SECTION", "USER_NOT_VERIFIED", "WRONG_ORIGIN", "WRONG_RP_ID", "RelyingParty",
    "WebAuthnFactor", "__version__", "relying_party",
]
