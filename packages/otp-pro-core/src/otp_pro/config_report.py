"""What ``otp-pro config check`` finds, and the provider test's default, for the CLI and the operator console.

The settings themselves are validated when :class:`~otp_pro.OtpPro` is made (an invalid file never gets
this far); what is left to report is a plugin that failed to load and a policy that offers a channel no
plugin provides (:func:`otp_pro.policy.conflicts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import policy

if TYPE_CHECKING:
    from .core import OtpPro


@dataclass(frozen=True)
class ConfigReport:
    """``broken``: ``(plugin, error)`` of each plugin that failed to load; ``warnings``: policy conflicts;
    ``transports`` and ``channels``: what is installed and registered."""

    broken: tuple[tuple[str, str], ...]
    warnings: tuple[str, ...]
    transports: tuple[str, ...]
    channels: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """No plugin failed to load (warnings do not fail the check)."""
        return not self.broken

    def summary(self) -> str:
        """The one line ``config check`` ends with."""
        if self.broken:
            return f"{len(self.broken)} plugin(s) failed to load"
        return f"settings OK: {len(self.transports)} transports, channels {', '.join(self.channels)}"


def config_report(otp: OtpPro) -> ConfigReport:
    """Check ``otp``'s plugins and policy (``otp-pro config check``)."""
    return ConfigReport(
        broken=tuple((p.name, str(p.error)) for p in otp.plugins() if p.error),
        warnings=tuple(policy.conflicts(otp.settings, otp.registered_channels)),
        transports=tuple(otp.transports),
        channels=tuple(otp.registered_channels),
    )


def default_dry_run(otp: OtpPro, transport: str) -> bool:
    """Whether a provider test of ``transport`` only renders unless told otherwise: the transport's
    ``dry_run_in_provider_test`` setting, true when it has none (a test sends nothing by surprise)."""
    chosen = otp.transports.get(transport)
    return bool(chosen.config.get("dry_run_in_provider_test", True)) if chosen is not None else True


__all__ = ["ConfigReport", "config_report", "default_dry_run"]
