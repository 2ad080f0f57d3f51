"""The ``otp-pro`` command line.

Reads settings from ``--config``, else ``$OTP_PRO_CONFIG``, else ``./otp-pro.toml``.
Every failure is a one-line message and a non-zero exit, never a traceback
(``OTP_PRO_DEBUG=1`` shows the traceback of an unexpected error).

The root group and :func:`main` are in ``app``, one module per command group beside
it (``db``, ``members``, ``audit``, ...), the helpers they share in ``common`` and the
commands that plugins add in ``plugin_commands``.
"""

from __future__ import annotations

from .app import cli, main
from .common import CliError
from .plugin_commands import PluginCommandGroup, PluginCommands, discover
from .templates import sample_templates

__all__ = ["CliError", "PluginCommandGroup", "PluginCommands", "cli", "discover", "main", "sample_templates"]
