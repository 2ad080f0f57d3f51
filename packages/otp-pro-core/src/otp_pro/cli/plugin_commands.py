"""Subcommands that plugins add to ``otp-pro`` through the ``otp_pro_cli_commands`` hook.

Discovery is lazy: a core command (``otp-pro members show``) never looks for
plugin commands. Only ``otp-pro --help`` and a name that is not a core command
(``otp-pro html-email ...``) load the plugins, through the same
:class:`~otp_pro.plugins.PluginHost` as :class:`~otp_pro.OtpPro` (built-ins,
the ``otp_pro`` entry points, ``OTP_PRO_DISABLE_PLUGINS`` and the settings
file's ``disable_plugins``), without building an ``OtpPro`` or touching the
database. A broken plugin, a command that is not a click command and a name
clash are each reported as one warning line on standard error; the other
commands keep working.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import click

from .common import config_path

_META_KEY = "otp_pro.plugin_commands"


@dataclass
class PluginCommands:
    """What discovery found: commands by name with the plugin that added each, and warnings."""

    commands: dict[str, click.Command] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _disabled_in(path: Path) -> tuple[str, ...]:
    """``disable_plugins`` of the settings file, read without validating the rest (help must work on a bad file)."""
    from ..settings import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return ()
    value = data.get("disable_plugins")
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def discover(core: Iterable[str], *, config: str | None = None, extra: Iterable[object] = ()) -> PluginCommands:
    """Ask every enabled plugin for its commands; refuse names of ``core`` commands and repeats."""
    from ..hookcall import describe_error
    from ..plugins import PluginHost, Registry

    path = config_path(config)
    found = PluginCommands()
    # PluginHost logs load failures; here they become this command's own warning lines instead.
    logger = logging.getLogger("otp_pro.plugins")
    previous = logger.disabled
    logger.disabled = True
    try:
        host = PluginHost(disabled=_disabled_in(path), extra=extra)
    finally:
        logger.disabled = previous
    found.warnings += [f"plugin {r.name} could not be loaded: {r.error}" for r in host.records if r.error]
    reserved = set(core)
    registry = Registry(reserved=lambda name: "it is a core otp-pro command" if name in reserved else None)

    def register(command: click.Command) -> None:
        if not isinstance(command, click.Command) or not command.name:
            raise TypeError(f"register() takes a named click.Command or click.Group, not {command!r}")
        registry.claim("command", command.name, command)

    _answers, failures = host.call_collecting("otp_pro_cli_commands", register=register)
    # Warnings plugin by plugin, in registration order: its refused names, then its failure (which ended its call).
    by_plugin: dict[str, list[str]] = {}
    for plugin, message in registry.settle(host.rank):
        by_plugin.setdefault(plugin, []).append(message)
    for failure in failures:
        by_plugin.setdefault(failure.plugin, []).append(
            f"plugin {failure.plugin} failed to add commands: {describe_error(failure.error)}")
    for plugin in sorted(by_plugin, key=host.rank):
        found.warnings += by_plugin[plugin]
    for name, (owner, command) in registry.of_kind("command").items():
        found.commands[name] = command
        found.owners[name] = owner
    return found


class PluginCommandGroup(click.Group):
    """The ``otp-pro`` group: core commands, then the commands plugins add (looked for only when needed)."""

    def _plugin_commands(self, ctx: click.Context) -> PluginCommands:
        root = ctx.find_root()
        found = root.meta.get(_META_KEY)
        if found is None:
            obj = root.obj if isinstance(root.obj, dict) else {}
            found = discover(self.commands, config=root.params.get("config") or obj.get("config"),
                             extra=obj.get("plugins", ()))
            for warning in found.warnings:
                click.echo(click.style("otp-pro: warning: ", fg="yellow") + warning, err=True)
            root.meta[_META_KEY] = found
        return found

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        return self._plugin_commands(ctx).commands.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugin_commands(ctx).commands})


__all__ = ["PluginCommandGroup", "PluginCommands", "discover"]
