"""``python -m otp_pro_html_email preview KIND``: render a template with sample data, send nothing."""

from __future__ import annotations

import dataclasses
import os
import secrets
import sys
from pathlib import Path

import click

from otp_pro import ConfigurationError, Settings

from .preview import FORMATS, preview
from .settings import KINDS

CONFIG_ENV = "OTP_PRO_CONFIG"  # the same variable and default file as the otp-pro command
DEFAULT_CONFIG = "otp-pro.toml"


@click.group(name="html-email")
def main() -> None:
    """otp-pro-html-email tools (also available as: otp-pro html-email ...)."""


@main.command("preview")
@click.argument("kind", type=click.Choice(KINDS))
@click.option("--config", "-c", metavar="FILE", help=f"settings file (default ${CONFIG_ENV} or ./{DEFAULT_CONFIG})")
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS), default="html", show_default=True)
@click.option("--out", "-o", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path),
              help="write to FILE instead of standard output")
@click.option("--template-dir", "-t", metavar="DIR",
              help="template override folder (instead of providers.html_email.template_dir)")
@click.option("--var", "-v", "overrides", metavar="NAME=VALUE", multiple=True, help="replace a sample variable")
def preview_command(
    kind: str, config: str | None, fmt: str, out: Path | None, template_dir: str | None, overrides: tuple[str, ...]
) -> None:
    """Render the KIND message (code, magic_link, notification, test) with sample data.

    Without a settings file the defaults are used (site name "otp-pro"), so a
    designer can preview a template folder with --template-dir alone.
    """
    variables = {}
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--var")
        variables[name] = value
    try:
        settings = _settings(config or _core_config(), template_dir)
        text = preview(settings, kind, variables=variables, format=fmt)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None
    if out is None:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {kind} {fmt} preview to {out}", err=True)


def _core_config() -> str | None:
    """The ``--config`` given to ``otp-pro`` when this runs as ``otp-pro --config FILE html-email preview``."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    value = obj.get("config") if isinstance(obj, dict) else None
    return str(value) if value else None


def _settings(config: str | None, template_dir: str | None) -> Settings:
    path = config or os.environ.get(CONFIG_ENV)
    if path is None and Path(DEFAULT_CONFIG).is_file():
        path = DEFAULT_CONFIG
    if path is not None:
        settings = Settings.from_file(path)
    else:  # nothing is stored or sent: a throwaway key and an in-memory database
        settings = Settings.from_mapping({"secret_key": secrets.token_urlsafe(48), "database_url": "sqlite://"})
    if template_dir:
        providers = dict(settings.providers)
        providers["html_email"] = {**providers.get("html_email", {}), "template_dir": str(Path(template_dir).resolve())}
        settings = dataclasses.replace(settings, providers=providers)
    return settings


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
