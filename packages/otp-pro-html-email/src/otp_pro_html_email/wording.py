"""The HTML email's wording in the member's language: the shipped templates call ``_()`` and ``ngettext()``.

The companion ships its own catalogs (domain ``otp_pro_html_email``, in ``locale/``), loaded through the
core's :class:`otp_pro.i18n.Domain`, so a site's ``locale_dirs`` adds or corrects a language the same way
as for the core's texts. A site's own templates (``template_dir``) may call them too, or be written in
one language.
"""

from __future__ import annotations

from pathlib import Path

from otp_pro import i18n

DOMAIN = i18n.Domain("otp_pro_html_email", Path(__file__).parent / "locale")
