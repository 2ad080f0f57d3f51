"""The ``otp_pro`` plugin of otp-pro-sms-twilio: the ``sms_twilio`` transport and its message wording.

Loaded through the entry point ``otp_pro_sms_twilio``; installing the
distribution is enough. The transport stays idle (no channel offered) until
``providers.sms_twilio`` has credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from otp_pro import Message, Transport, format_template, hookimpl

from . import wording
from .transport import TwilioSmsTransport


@hookimpl
def otp_pro_register_transports(register: Callable[[type[Transport]], None]) -> None:
    """Register :class:`~otp_pro_sms_twilio.transport.TwilioSmsTransport` (``sms_twilio``)."""
    register(TwilioSmsTransport)


@hookimpl
def otp_pro_render_message(
    transport: Transport, channel: str, kind: str, variables: Mapping[str, Any]
) -> Message | None:
    """Render codes (and provider tests) for ``sms_twilio`` with ``message_template``.

    Provider tests use the same template so that the administrator sees (and
    receives) what members will. Other transports, notifications and payloads
    other than codes are left to the next renderer (the core's plain text). A
    plugin registered later (``OtpPro(plugins=[...])``) is asked first and can
    word SMS differently.
    """
    if not isinstance(transport, TwilioSmsTransport) or kind not in ("challenge", "test"):
        return None
    if variables.get("payload_kind") not in (None, "code"):
        return None
    # The core renders in the member's language; the default template is translated into it (wording.py).
    text = format_template(wording.template(transport.config), variables)
    return Message(recipient=str(variables.get("recipient", "")), subject="", text=text, channel=channel, kind=kind)
