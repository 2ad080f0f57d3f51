"""The SMS wording in the member's language: the default ``message_template`` is a gettext message.

The companion ships its own catalogs (domain ``otp_pro_sms_twilio``, in ``locale/``), loaded
through the core's :class:`otp_pro.i18n.Domain`, so a site's ``locale_dirs`` can add or correct
a language the same way as for the core's texts. A template the site wrote itself is its own
wording and is sent as it is, in every language.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from otp_pro import i18n
from otp_pro.i18n import N_

DOMAIN = i18n.Domain("otp_pro_sms_twilio", Path(__file__).parent / "locale")

#: The default ``message_template`` (English; translated per member when the site keeps it).
__all__ = ["DEFAULT_TEMPLATE", "DOMAIN", "N_", "languages", "template"]

DEFAULT_TEMPLATE = N_("{payload} is your {site_name} verification code. It expires in {expiry_minutes} min.")


def template(config: Mapping[str, Any]) -> str:
    """The template to fill for the current language: the translated default, or the site's own."""
    configured = str(config["message_template"])
    return DOMAIN.gettext(configured) if configured == DEFAULT_TEMPLATE else configured


def languages(config: Mapping[str, Any], default_locale: str, site_dirs: tuple[str, ...]) -> list[str]:
    """The languages the length check renders the template in: the site's default first, then every other
    one the default template is translated into (a site's own template is checked once)."""
    if config.get("message_template") != DEFAULT_TEMPLATE:
        return [default_locale]
    others = sorted(DOMAIN.available(site_dirs) - {default_locale})
    return [default_locale, *others]
