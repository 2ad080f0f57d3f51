"""``otp-pro config``: check the settings (and every plugin and provider's) or show them, secrets redacted."""

from __future__ import annotations

import json

import click

from .common import CliError, load_otp


@click.group()
def config() -> None:
    """Check or show the settings."""


@config.command("check")
@click.pass_context
def config_check(ctx: click.Context) -> None:
    """Validate the settings and every provider's settings; list every problem."""
    from .. import policy

    otp = load_otp(ctx, migrate_database=False)
    broken = [p for p in otp.plugins() if p.error]
    for plugin in broken:
        click.echo(f"plugin {plugin.name}: {plugin.error}", err=True)
    warnings = policy.conflicts(otp.settings, otp.registered_channels)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    if broken:
        raise CliError(f"{len(broken)} plugin(s) failed to load")
    click.echo(f"settings OK: {len(otp.transports)} transports, channels {', '.join(otp.registered_channels)}")


@config.command("show")
@click.pass_context
def config_show(ctx: click.Context) -> None:
    """Print the effective settings as JSON, secrets redacted."""
    otp = load_otp(ctx, migrate_database=False)
    click.echo(json.dumps(otp.redacted_settings(), indent=2, default=str))
