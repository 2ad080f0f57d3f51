"""Render a template with sample data, without sending anything (``otp-pro`` CLI and designers)."""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from otp_pro import ConfigurationError, Message, Settings

from .plugin import templates_for
from .samples import SAMPLE_MEMBER, core_kind, sample_channel, sample_variables
from .settings import SECTION

if TYPE_CHECKING:
    from otp_pro import OtpPro

FORMATS = ("html", "text", "subject", "eml")


def preview(
    otp_or_settings: OtpPro | Settings | Mapping[str, Any],
    kind: str,
    *,
    variables: Mapping[str, Any] | None = None,
    format: str = "html",
) -> str:
    """Render the ``kind`` message (``code``, ``magic_link``, ``notification``, ``test``) with sample data.

    ``otp_or_settings`` is a running :class:`~otp_pro.OtpPro` or the settings to
    start one from (its database is not touched). ``variables`` replace sample
    values (``{"member_name": "Bob"}``). ``format`` is ``html``, ``text``,
    ``subject`` or ``eml`` (the whole MIME message as the ``email`` transport
    would send it). Template problems raise :class:`~otp_pro.ConfigurationError`.
    """
    from .renderer import KINDS  # Jinja: imported when a preview is made, not by plugin discovery

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    from otp_pro import OtpPro  # at use: importing the package must not load SQLAlchemy

    if isinstance(otp_or_settings, OtpPro):
        return _preview(otp_or_settings, kind, variables, format)
    with OtpPro(otp_or_settings, migrate_database=False) as otp:
        return _preview(otp, kind, variables, format)


def _preview(otp: OtpPro, kind: str, variables: Mapping[str, Any] | None, format: str) -> str:
    if SECTION not in otp.plugin_settings:
        raise ConfigurationError("the otp_pro_html_email plugin is not active in these settings (disable_plugins?)",
                                 key="disable_plugins")
    values = sample_variables(otp, kind, variables)
    rendered = templates_for(otp).render(kind, values)
    if format == "html":
        return rendered.html
    if format == "text":
        return rendered.text
    if format == "subject":
        return rendered.subject
    message = Message(recipient=str(values.get("recipient") or SAMPLE_MEMBER.email), subject=rendered.subject,
                      text=rendered.text, html=rendered.html, channel=sample_channel(otp, kind), kind=core_kind(kind))
    transport = otp.transports.get("email")
    build = getattr(transport, "build", None)
    mail: EmailMessage = build(message) if callable(build) else _mime(otp, message)
    return mail.as_string()


def _mime(otp: OtpPro, message: Message) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = email.utils.formataddr((otp.settings.site_name, "otp-pro@localhost"))
    mail["To"] = message.recipient
    mail["Subject"] = message.subject
    mail["Date"] = email.utils.formatdate()
    mail["Message-ID"] = email.utils.make_msgid(domain="localhost")
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(message.text)
    if message.html:
        mail.add_alternative(message.html, subtype="html")
    return mail
