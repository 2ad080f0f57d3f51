"""otp-pro-webauthn: passkeys and security keys for otp-pro (the ``webauthn`` factor type).

Installed, it registers the factor type ``webauthn`` and the settings section
``providers.webauthn`` through the ``otp_pro`` entry point; list ``webauthn`` in
a role's (or the site's) ``channels`` to offer it. See README.md.
"""

from __future__ import annotations

from typing import Any

from .factor import WebAuthnFactor
from .options import SECTION, RelyingParty, relying_party

__version__ = "0.1.0"

# The refusal reasons live beside py_webauthn in .ceremony, imported on first use (PEP 562):
# plugin discovery imports this package and does not need the library.
_FROM_CEREMONY = ("COUNTER_REGRESSED", "USER_NOT_VERIFIED", "WRONG_ORIGIN", "WRONG_RP_ID")


def __getattr__(name: str) -> Any:
    if name in _FROM_CEREMONY:
        from . import ceremony

        return getattr(ceremony, name)
    raise AttributeError(f"module 'otp_pro_webauthn' has no attribute {name!r}")


__all__ = [
    "COUNTER_REGRESSED", "SECTION", "USER_NOT_VERIFIED", "WRONG_ORIGIN", "WRONG_RP_ID", "RelyingParty",
    "WebAuthnFactor", "__version__", "relying_party",
]
