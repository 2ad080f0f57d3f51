"""Sample message variables: for the start-up check of every template and for previews."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from otp_pro import Member

if TYPE_CHECKING:  # annotations only: OtpPro needs SQLAlchemy, plugin discovery does not
    from otp_pro import OtpPro

SAMPLE_MEMBER = Member(id="preview", email="ann@example.com", name="Ann Example")
SAMPLE_CODE = "492817"
SAMPLE_LINK = "https://example.com/otp/link?token=SAMPLE-TOKEN&next=%2Faccount"
SAMPLE_NOTICE = "Two-step verification was set up on your account."


def core_kind(kind: str) -> str:
    """The core's message ``kind`` for a template kind."""
    return kind if kind in ("notification", "test") else "challenge"


def sample_channel(otp: OtpPro, kind: str) -> str:
    """An email channel of ``otp`` for ``kind`` (the templates are for email transports only)."""
    wanted = "magic_link" if kind == "magic_link" else "code"
    for name, definition in otp.channels.items():
        transport = getattr(definition, "transport", None)
        if transport is not None and transport.message_format == "email" and name.endswith(f":{wanted}"):
            return name
    return f"email:{wanted}"


def sample_extra(otp: OtpPro, kind: str) -> dict[str, Any]:
    """What the core passes for ``kind`` as the message's own variables, with sample values."""
    now = otp.clock()
    expires = now + timedelta(seconds=otp.settings.code_ttl_seconds)
    extra: dict[str, Any] = {
        "recipient": SAMPLE_MEMBER.email, "issued_at": now, "expires_at": expires,
        "payload": SAMPLE_CODE, "payload_kind": "code", "payload_is_link": False, "purpose": "verify",
    }
    if kind == "magic_link":
        extra.update(payload=SAMPLE_LINK, payload_kind="magic_link", payload_is_link=True)
    elif kind == "notification":
        from otp_pro.builtins.notify import preview_variables  # what the core's notifications pass

        extra.update(payload=None, payload_kind=None, purpose=None, expires_at=None, **preview_variables(otp))
        extra["notice"] = SAMPLE_NOTICE
    return extra


def sample_variables(otp: OtpPro, kind: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The full variables of a sample ``kind`` message: the core's and every plugin's, then ``overrides``."""
    extra = {**sample_extra(otp, kind), **(overrides or {})}
    variables = otp.message_variables(SAMPLE_MEMBER, sample_channel(otp, kind), core_kind(kind), extra)
    variables.update(overrides or {})
    return variables
