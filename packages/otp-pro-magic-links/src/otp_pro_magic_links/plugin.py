"""Magic links for otp-pro (payload ``magic_link``, channel ``email:magic_link``).

Registers the payload and its settings section ``providers.magic_links``. The
page that receives the click lives in :mod:`otp_pro_magic_links.web`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from otp_pro import Payload, hookimpl
from otp_pro.settings import Setting

from .payload import PAYLOAD, SECTION, SETTINGS, MagicLinkPayload

log = logging.getLogger("otp_pro_magic_links")


@hookimpl
def otp_pro_register_payloads(register: Callable[[type[Payload]], None]) -> None:
    register(MagicLinkPayload)


@hookimpl
def otp_pro_register_settings(register: Callable[[str, Sequence[Setting]], None]) -> None:
    register(SECTION, SETTINGS)


@hookimpl
def otp_pro_startup(otp: Any) -> list[str] | None:
    """Warn (without failing) when a magic-link channel is listed but cannot be offered."""
    payload = otp.payloads.get(PAYLOAD)
    offered = any(name.endswith(f":{PAYLOAD}") for name in (otp.settings.channels or ()))
    if isinstance(payload, MagicLinkPayload) and offered and not payload.base_url:
        # Not fatal: the channel is hidden with a reason; but say it once, loudly, in the log.
        log.warning(
            "email:magic_link is listed in channels but providers.magic_links.base_url is not set: "
            "the channel is not offered"
        )
    return None
