"""What a member reads of this companion, in the member's language: the payload's name, the reason the channel
is not offered, and the pages of :mod:`otp_pro_magic_links.web`.

The companion ships its own catalogs (domain ``otp_pro_magic_links``, in ``locale/``), loaded through the core's
:class:`otp_pro.i18n.Domain`: the core's :func:`otp_pro.i18n.label` and :func:`otp_pro.i18n.translate` find the
name and the reason there, and a site's ``locale_dirs`` can add or correct a language as for the core's texts.
The mail that carries the link is the core's message (or otp-pro-html-email's), translated there.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from otp_pro import i18n
from otp_pro.i18n import N_

if TYPE_CHECKING:  # annotations only: plugin discovery imports this module and needs no storage
    from otp_pro import Member, OtpPro

DOMAIN = i18n.Domain("otp_pro_magic_links", Path(__file__).parent / "locale")

#: The payload's name; the channel ``email:magic_link`` reads "Email (sign-in link)" (``otp_pro.i18n.label``).
LABEL = N_("sign-in link")
#: Why the channel is not offered (``payload.available``): shown to a member after the core's sentence.
NO_BASE_URL = N_("no base URL configured for sign-in links (providers.magic_links.base_url)")


def page_language(otp: OtpPro, accept_language: str | None = None, member: Member | None = None) -> i18n.Language:
    """The language of a link page, chosen the way the core's flow chooses one (``Flow.language``).

    The member's ``locale``, else the best of the request's ``Accept-Language``, else the site's
    ``default_locale``; only a language this domain has a catalog for is chosen (the page's ``<html lang>``
    must be the language its text is in), English when none fits.
    """
    settings = otp.settings
    offered = DOMAIN.offered(settings.locale_dirs)
    locale = i18n.for_request(member.locale if member is not None else None, accept_language, offered,
                              i18n.choose(settings.default_locale, offered) or "en")
    return i18n.Language(locale, settings.locale_dirs)
