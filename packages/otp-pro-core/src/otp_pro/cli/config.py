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
    from ..config_report import config_report

    otp = load_otp(ctx, migrate_database=False)
    report = config_report(otp)
    for name, error in report.broken:
        click.echo(f"plugin {name}: {error}", err=True)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    if not report.ok:
        raise CliError(report.summary())
    click.echo(report.summary())


@config.command("show")
@click.pass_context
def config_show(ctx: click.Context) -> None:
    """Print the effective settings as JSON, secrets redacted."""
    otp = load_otp(ctx, migrate_database=False)
    click.echo(json.dumps(otp.redacted_settings(), indent=2, default=str))
