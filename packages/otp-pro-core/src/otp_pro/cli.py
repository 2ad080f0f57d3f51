"""The ``otp-pro`` command line.

Reads settings from ``--config``, else ``$OTP_PRO_CONFIG``, else ``./otp-pro.toml``.
Every failure is a one-line message and a non-zero exit, never a traceback
(``OTP_PRO_DEBUG=1`` shows the traceback of an unexpected error).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import click

from .errors import ConfigurationError, OtpProError
from .settings import Settings

CONFIG_ENV = "OTP_PRO_CONFIG"
DEFAULT_CONFIG = "otp-pro.toml"

SETTINGS_TEMPLATE = """\
# otp-pro settings. Every key is optional except secret_key.
# A secret may be read from the environment: smtp_password = {{ env = "SMTP_PASSWORD" }}

secret_key = "{secret_key}"    # keep it secret; rotate with previous_secret_keys
database_url = "{database_url}"
site_name = "{site_name}"
# support_email = "help@example.com"

mode = "visible"                 # hidden | visible | required
default_channel = "email:code"
# channels = ["email:code", "totp"]   # default: every installed channel
# grace_days = 7                 # days before a newly required member must set up

code_length = 6                  # 6 to 10 digits
code_ttl_seconds = 600
max_attempts = 5                 # at most 100 (NIST SP 800-63B)
lockout_seconds = 900
resend_cooldown_seconds = 30     # 0 switches the cooldown off
max_sends_per_hour = 10
backup_code_count = 10
trusted_device_days = 30

[totp]
digits = 6
period = 30
algorithm = "SHA1"               # SHA1 | SHA256 | SHA512 (most apps only do SHA1)

# [roles.admin]
# requirement = "required"       # not_required | optional | required
# grace_days = 0
# channels = ["totp"]

[providers.email]
smtp_host = "localhost"
# smtp_port = 587
# smtp_starttls = true
# smtp_username = "otp"
# smtp_password = {{ env = "SMTP_PASSWORD" }}
from_address = "no-reply@example.com"
"""


class CliError(click.ClickException):
    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"otp-pro: {self.format_message()}", err=True)


def _config_path(config: str | None) -> Path:
    return Path(config or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def _load_settings(ctx: click.Context) -> Settings:
    path = _config_path(ctx.obj.get("config"))
    if not path.exists():
        raise CliError(f"no settings file at {path}: run `otp-pro init` or pass --config")
    return Settings.from_file(path)


def _load_otp(ctx: click.Context, **kwargs: Any) -> Any:
    from .core import OtpPro

    if "otp" not in ctx.obj:
        ctx.obj["otp"] = OtpPro(_load_settings(ctx), **kwargs)
    return ctx.obj["otp"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "-c", metavar="FILE", help=f"settings file (default ${CONFIG_ENV} or ./{DEFAULT_CONFIG})")
@click.version_option(package_name="otp-pro-core", prog_name="otp-pro")
@click.pass_context
def cli(ctx: click.Context, config: str | None) -> None:
    """otp-pro: multi-factor authentication for Python web applications."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config


@cli.command()
@click.option("--path", "path", default=None, metavar="FILE", help="where to write the settings file")
@click.option("--database-url", default="sqlite:///otp-pro.sqlite3", show_default=True)
@click.option("--site-name", default="My site", show_default=True)
@click.option("--force", is_flag=True, help="overwrite an existing file")
@click.pass_context
def init(ctx: click.Context, path: str | None, database_url: str, site_name: str, force: bool) -> None:
    """Write a commented settings file with a fresh secret key and create the database."""
    target = Path(path) if path else _config_path(ctx.obj.get("config"))
    if target.exists() and not force:
        raise CliError(f"{target} exists; pass --force to overwrite it")
    text = SETTINGS_TEMPLATE.format(
        secret_key=secrets.token_urlsafe(48), database_url=database_url.replace('"', '\\"'),
        site_name=site_name.replace('"', '\\"'),
    )
    settings = Settings.from_mapping(_toml_loads(text), base_dir=target.resolve().parent)
    try:
        target.write_text(text, encoding="utf-8")
        os.chmod(target, 0o600)
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror}") from None
    from .storage import migrate
    from .storage.db import Database

    db = Database(settings.database_url)
    migrate.upgrade(db.engine)
    db.dispose()
    click.echo(f"wrote {target} (mode 600) and created the database at revision {migrate.head_revision()}")


def _toml_loads(text: str) -> dict[str, Any]:
    from .settings import tomllib

    return tomllib.loads(text)


@cli.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Apply the shipped migrations."""
    from .storage import migrate
    from .storage.db import Database

    database = Database(_load_settings(ctx).database_url)
    before = migrate.current_revision(database.engine)
    try:
        migrate.upgrade(database.engine, revision)
    except Exception as exc:  # noqa: BLE001 - alembic raises many kinds
        raise CliError(f"migration failed: {type(exc).__name__}: {exc}") from None
    after = migrate.current_revision(database.engine)
    database.dispose()
    click.echo(f"database at {after} (was {before or 'empty'})")


@db.command("current")
@click.pass_context
def db_current(ctx: click.Context) -> None:
    """Show the database's migration and the newest one shipped."""
    from .storage import migrate
    from .storage.db import Database

    database = Database(_load_settings(ctx).database_url)
    current = migrate.current_revision(database.engine)
    head = migrate.head_revision()
    database.dispose()
    state = "up to date" if current == head else "run `otp-pro db upgrade`"
    click.echo(f"current: {current or 'empty'}  head: {head}  ({state})")


@cli.group()
def config() -> None:
    """Check or show the settings."""


@config.command("check")
@click.pass_context
def config_check(ctx: click.Context) -> None:
    """Validate the settings and every provider's settings; list every problem."""
    from . import policy

    otp = _load_otp(ctx, migrate_database=False)
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
    otp = _load_otp(ctx, migrate_database=False)
    click.echo(json.dumps(otp.redacted_settings(), indent=2, default=str))


@cli.group()
def providers() -> None:
    """Transports and payloads."""


@providers.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def providers_list(ctx: click.Context, fmt: str) -> None:
    """Every plugin, the transports and payloads it brings, where it came from."""
    otp = _load_otp(ctx, migrate_database=False)
    rows = [
        {
            "plugin": p.name, "distribution": p.distribution, "version": p.version, "builtin": p.builtin,
            "enabled": p.enabled, "transports": list(p.transports), "payloads": list(p.payloads), "error": p.error,
        }
        for p in otp.plugins()
    ]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        state = "error: " + r["error"] if r["error"] else ("enabled" if r["enabled"] else "disabled")
        provides = ", ".join([*r["transports"], *(f"payload {p}" for p in r["payloads"])]) or "-"
        click.echo(f"{r['plugin']:<24} {r['distribution'] or '-'} {r['version'] or ''}  [{state}]  {provides}")


@providers.command("test")
@click.argument("transport")
@click.option("--to", "to", required=True, help="recipient (address or number)")
@click.option("--dry-run/--send", default=None,
              help="only render, or really send (default: the transport's dry_run_in_provider_test, else dry run)")
@click.option("--actor", default=None, help="operator named in the audit log (default: OS user)")
@click.pass_context
def providers_test(ctx: click.Context, transport: str, to: str, dry_run: bool | None, actor: str | None) -> None:
    """Provider test: send (or render) a test message through TRANSPORT."""
    otp = _load_otp(ctx)
    if dry_run is None:
        chosen = otp.transports.get(transport)
        dry_run = bool(chosen.config.get("dry_run_in_provider_test", True)) if chosen is not None else True
    result = otp.provider_test(transport, to, dry_run=dry_run, actor=actor or _os_user())
    click.echo(f"{'dry run' if result.dry_run else 'sent'} via {result.transport} to {result.recipient}")
    click.echo(json.dumps(dict(result.parameters), indent=2, default=str))
    click.echo("---\n" + (result.subject + "\n\n" if result.subject else "") + result.text)
    if result.error:
        raise CliError(result.error)


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "unknown"


@cli.command()
@click.option("--database", metavar="FILE", default=None, help="SQLite file to use (default: a temporary one)")
def demo(database: str | None) -> None:
    """Walk through otp-pro on an embedded SQLite database: setup, codes, TOTP, backup codes, devices, audit."""
    from .demo import run_demo

    folder = None
    if database is None:
        folder = tempfile.TemporaryDirectory(prefix="otp-pro-demo-")
        database = str(Path(folder.name) / "demo.sqlite3")
    try:
        run_demo(database, echo=click.echo)
    finally:
        if folder is not None:
            folder.cleanup()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``otp-pro`` script: typed errors become one-line messages."""
    try:
        cli.main(args=argv, prog_name="otp-pro", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ConfigurationError as exc:
        click.echo(f"otp-pro: configuration error: {exc}", err=True)
        sys.exit(2)
    except OtpProError as exc:
        click.echo(f"otp-pro: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - never a bare traceback
        if os.environ.get("OTP_PRO_DEBUG"):
            traceback.print_exc()
        click.echo(f"otp-pro: unexpected {type(exc).__name__}; set OTP_PRO_DEBUG=1 for details", err=True)
        sys.exit(70)


if __name__ == "__main__":  # pragma: no cover
    main()
