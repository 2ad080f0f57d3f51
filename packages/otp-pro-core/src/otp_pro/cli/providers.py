"""``otp-pro providers``: list the plugins and what they bring; send or render a provider test message."""

from __future__ import annotations

import json
import os
from typing import Any

import click

from .common import CONFIG_ENV, DEFAULT_CONFIG, CliError, config_path, load_otp, load_settings, os_user


@click.group()
def providers() -> None:
    """Transports, payloads and factor types."""


@providers.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print JSON (same as --format json)")
@click.pass_context
def providers_list(ctx: click.Context, fmt: str, as_json: bool) -> None:
    """Every plugin, the transports, payloads and factor types it brings, where it came from.

    Only discovers the plugins and asks what they register: no database, no start-up
    checks, no provider settings validated (that is ``otp-pro config check``). Without a
    settings file (and no --config or $OTP_PRO_CONFIG naming one) it lists every installed
    plugin: the settings' ``disable_plugins`` is all it would take from them.
    """
    if "otp" in ctx.obj:
        infos = ctx.obj["otp"].plugins()
    else:
        from ..plugins import PluginHost

        disabled: tuple[str, ...] = ()
        named = ctx.obj.get("config") or os.environ.get(CONFIG_ENV)
        if named or config_path(None).exists():
            disabled = tuple(load_settings(ctx).disable_plugins)
        else:
            click.echo(f"no settings file ({DEFAULT_CONFIG}): listing every installed plugin", err=True)
        host = PluginHost(disabled=disabled, extra=ctx.obj.get("plugins", ()))
        host.collect_providers()
        host.collect_factor_types()
        infos = host.infos()
    rows = [
        {
            "plugin": p.name, "distribution": p.distribution, "version": p.version, "builtin": p.builtin,
            "enabled": p.enabled, "transports": list(p.transports), "payloads": list(p.payloads),
            "factor_types": list(p.factor_types), "error": p.error,
        }
        for p in infos
    ]
    if fmt == "json" or as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = []
    for r in rows:
        state = "error: " + r["error"] if r["error"] else ("enabled" if r["enabled"] else "disabled")
        colour = "red" if r["error"] else ("green" if r["enabled"] else "yellow")
        provides = ", ".join([*r["transports"], *(f"payload {p}" for p in r["payloads"]),
                              *(f"factor {f}" for f in r["factor_types"])]) or "-"
        table.append((r["plugin"], r["distribution"] or "-", r["version"] or "", state, colour, provides))
    # Widths from the content: third-party plugin and distribution names can be of any length. A load
    # error's message does not widen the state column of every other row; its row alone runs longer.
    widths = [max((len(row[i]) for row in table), default=0) for i in range(3)]
    widths.append(max((len(row[3]) for row in table if not row[3].startswith("error")), default=0))
    for plugin, distribution, version, state, colour, provides in table:
        pad = " " * max(0, widths[3] - len(state))  # outside the style, which adds escape codes on a terminal
        click.echo(f"{plugin:<{widths[0]}} {distribution:<{widths[1]}} {version:<{widths[2]}}  "
                   f"[{click.style(state, fg=colour)}]{pad}  {provides}".rstrip())


#: Transport names an operator may well type, with the companion distribution bringing such a transport
#: and that transport's own name.
KNOWN_COMPANIONS: dict[str, tuple[str, str]] = {
    "sms": ("otp-pro-sms-twilio", "sms_twilio"),
    "sms_twilio": ("otp-pro-sms-twilio", "sms_twilio"),
    "twilio": ("otp-pro-sms-twilio", "sms_twilio"),
}


def _no_such_transport(ctx: click.Context, otp: Any, name: str) -> click.BadParameter:
    """Why ``name`` cannot be tested, as a usage error: nothing to send, or no such transport (and what to install)."""
    from ..transports import TOTP

    if name == TOTP:
        return click.BadParameter(
            "totp has nothing to send: authenticator apps compute the codes themselves, so there is no provider "
            "to test", ctx=ctx, param_hint="'TRANSPORT'")
    message = f"no transport called {name!r} (installed: {', '.join(otp.transports) or 'none'})"
    known = KNOWN_COMPANIONS.get(name.strip().lower())
    if known is not None:
        distribution, transport = known
        if transport in otp.transports:
            message += f"; did you mean {transport}?"
        else:
            message += f"; {transport} comes with the companion {distribution}: pip install {distribution}"
    return click.BadParameter(message, ctx=ctx, param_hint="'TRANSPORT'")


@providers.command("test")
@click.argument("transport")
@click.option("--to", "to", required=True, help="recipient (address or number)")
@click.option("--dry-run/--send", default=None,
              help="only render, or really send (default: the transport's dry_run_in_provider_test, else dry run)")
@click.option("--actor", default=None, help="operator named in the audit log (default: OS user)")
@click.pass_context
def providers_test(ctx: click.Context, transport: str, to: str, dry_run: bool | None, actor: str | None) -> None:
    """Provider test: send (or render) a test message through TRANSPORT."""
    from ..config_report import default_dry_run

    otp = load_otp(ctx)
    if transport not in otp.transports:
        raise _no_such_transport(ctx, otp, transport)
    if dry_run is None:
        dry_run = default_dry_run(otp, transport)
    result = otp.provider_test(transport, to, dry_run=dry_run, actor=actor or os_user())
    done = "dry run" if result.dry_run else "send failed" if result.error else "sent"
    click.echo(f"{done} via {result.transport} to {result.recipient}")
    if result.dry_run:
        for warning in otp.transports[transport].recipient_warnings(result.recipient):
            click.echo(click.style("warning: ", fg="yellow") + warning, err=True)
    click.echo(json.dumps(dict(result.parameters), indent=2, default=str))
    click.echo("---\n" + (result.subject + "\n\n" if result.subject else "") + result.text)
    if result.error:
        raise CliError(result.error)
