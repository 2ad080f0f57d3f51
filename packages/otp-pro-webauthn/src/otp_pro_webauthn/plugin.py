"""The plugin the ``otp_pro`` entry point loads: the ``webauthn`` factor type and its settings section."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from otp_pro import hookimpl
from otp_pro.factor_types import FactorType
from otp_pro.settings import Setting

from .factor import WebAuthnFactor
from .options import SECTION, SETTINGS, problems


@hookimpl
def otp_pro_register_factor_types(register: Callable[[type[FactorType]], None]) -> None:
    register(WebAuthnFactor)


@hookimpl
def otp_pro_register_settings(register: Callable[[str, Sequence[Setting]], None]) -> None:
    register(SECTION, SETTINGS)


@hookimpl
def otp_pro_startup(otp: Any) -> list[str] | None:
    """Refuse an origin outside the relying-party id, and the channel without a relying-party id."""
    offered = SECTION in (otp.settings.channels or ()) or otp.settings.default_channel == SECTION
    return problems(otp.plugin_settings.get(SECTION), otp.settings.site_name, offered) or None
