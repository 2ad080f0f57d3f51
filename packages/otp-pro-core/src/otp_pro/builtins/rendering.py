"""The core's plain-text message renderer. It runs last: a templating plugin (HTML email) wins.

Its wordings are gettext messages (``otp_pro`` domain) with ``{name}`` placeholders, translated into the
language :func:`~otp_pro._engine.messages.render` chose for the member and then filled by
:func:`format_template`.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from ..hookspecs import hookimpl
from ..i18n import N_
from ..i18n import gettext as _
from ..transports import Message, Transport

EMAIL_TEMPLATES: dict[str, tuple[str, str]] = {
    "code": (
        N_("{site_name}: your verification code"),
        N_("Hello {member_name},\n\n"
           "Your {site_name} verification code is:\n\n    {payload}\n\n"
           "It expires in {expiry_minutes} minutes. If you did not try to sign in, "
           "someone may know your password: change it and write to {support_email}.\n"),
    ),
    "magic_link": (
        N_("{site_name}: your sign-in link"),
        N_("Hello {member_name},\n\n"
           "Open this link to finish signing in to {site_name}:\n\n    {payload}\n\n"
           "It works once and expires in {expiry_minutes} minutes. If you did not try to sign in, "
           "ignore this message and write to {support_email}.\n"),
    ),
    "notification": (
        N_("{site_name}: security change on your account"),
        # notice_details ("When: ...\nFrom: ...\n\n") is empty for a notice sent with only {notice}.
        N_("Hello {member_name},\n\n{notice}\n\n{notice_details}"
           "If you did not make this change, someone may have access to your account: change your password "
           "and write to {support_email} at once.\n"),
    ),
    "test": (
        N_("{site_name}: provider test"),
        N_("This is a test message from {site_name} through {channel}. Test code: {payload}\n"),
    ),
}

TEXT_TEMPLATES: dict[str, str] = {
    "code": N_("{payload} is your {site_name} verification code. It expires in {expiry_minutes} min."),
    "magic_link": N_("Sign in to {site_name}: {payload} (expires in {expiry_minutes} min)"),
    "notification": N_("{site_name}: {notice} Not you? Write to {support_email}."),
    "test": N_("{site_name} provider test: {payload}"),
}


class _Vars(dict[str, Any]):
    """Unknown placeholders render as empty text instead of failing at send time."""

    def __missing__(self, key: str) -> str:
        return ""


def format_template(template: str, variables: Mapping[str, Any]) -> str:
    """Fill ``{name}`` placeholders; unknown names give empty text, ``{{`` gives ``{``."""
    return string.Formatter().vformat(template, (), _Vars({k: ("" if v is None else v) for k, v in variables.items()}))


def template_key(kind: str, variables: Mapping[str, Any]) -> str:
    if kind in ("notification", "test"):
        return kind
    # Any payload the member clicks rather than types gets the link wording.
    is_link = variables.get("payload_kind") == "magic_link" or variables.get("payload_is_link")
    return "magic_link" if is_link else "code"


@hookimpl(trylast=True)
def otp_pro_render_message(transport: Transport, channel: str, kind: str, variables: Mapping[str, Any]) -> Message:
    key = template_key(kind, variables)
    if transport.message_format == "email":
        subject, text = EMAIL_TEMPLATES[key]
        return Message(
            recipient=str(variables.get("recipient", "")),
            subject=format_template(_(subject), variables),
            text=format_template(_(text), variables),
            channel=channel,
            kind=kind,
        )
    text = format_template(_(TEXT_TEMPLATES[key]), variables)
    return Message(recipient=str(variables.get("recipient", "")), subject="", text=text, channel=channel, kind=kind)
