"""The ``otp_pro`` plugin of otp-pro-webhook: the ``webhook`` transport and the message it posts.

Loaded through the entry point ``otp_pro_webhook``: installing the distribution
is enough. The transport stays idle (no channel offered) until
``providers.webhook`` has a ``url`` and a ``signing_secret``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from otp_pro import Message, Transport, format_template, hookimpl

from .transport import WebhookMessage, WebhookTransport

TEXTS = {
    "code": "{payload} is your {site_name} verification code. It expires in {expiry_minutes} min.",
    "magic_link": "Sign in to {site_name}: {payload} (expires in {expiry_minutes} min)",
    "test": "{site_name} provider test: {payload}",
}


@hookimpl
def otp_pro_register_transports(register: Callable[[type[Transport]], None]) -> None:
    """Register :class:`~otp_pro_webhook.transport.WebhookTransport` (``webhook``)."""
    register(WebhookTransport)


@hookimpl
def otp_pro_render_message(
    transport: Transport, channel: str, kind: str, variables: Mapping[str, Any]
) -> Message | None:
    """Render codes, links and provider tests for ``webhook``: a short text plus the fields the JSON carries."""
    if not isinstance(transport, WebhookTransport) or kind not in ("challenge", "test"):
        return None  # notifications and other transports: the next renderer
    payload_kind = str(variables.get("payload_kind") or "code")
    is_link = bool(variables.get("payload_is_link")) or payload_kind == "magic_link"
    text = format_template(TEXTS["test" if kind == "test" else ("magic_link" if is_link else "code")], variables)
    expires = variables.get("expires_at")
    data = {
        "payload_kind": payload_kind,
        "link" if is_link else "code": variables.get("payload"),
        "expires_at": expires.isoformat() if isinstance(expires, datetime) else None,
        "expiry_minutes": variables.get("expiry_minutes"),
    }
    return WebhookMessage(recipient=str(variables.get("recipient", "")), subject="", text=text, channel=channel,
                          kind=kind, data=data)
