"""What a member reads of this companion, in the member's language: the factor's name and its hint.

The companion ships its own catalogs (domain ``otp_pro_webauthn``, in ``locale/``), loaded through the
core's :class:`otp_pro.i18n.Domain`: the core's :func:`otp_pro.i18n.label` finds the name there, and a
site's ``locale_dirs`` can add or correct a language as for the core's texts. Everything else a member
reads about passkeys (the buttons, the ceremony's messages, refusal reasons) is the flow layer's.
"""

from __future__ import annotations

from pathlib import Path

from otp_pro import i18n
from otp_pro.i18n import N_

DOMAIN = i18n.Domain("otp_pro_webauthn", Path(__file__).parent / "locale")

#: The factor type's name (translated where it is shown, by ``otp_pro.i18n.label``).
LABEL = N_("Passkey or security key")


def hint() -> str:
    """The verify page's line above the button, in the current language."""
    return DOMAIN.gettext("Use your passkey or security key when your browser asks.")
