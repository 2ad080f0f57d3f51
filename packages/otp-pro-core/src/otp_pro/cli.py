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
from collections.abc import Callable
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

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

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


# ------------------------------------------------------------------ members


def _member_arg(otp: Any, member_id: str, strict: bool) -> tuple[Any, bool]:
    """The member from the ``member_lookup`` hook, else a bare ``Member(id)`` (with a warning) unless ``strict``.

    Returns ``(member, roles_known)``.
    """
    from .errors import UnknownMember
    from .member import InvalidMember, Member

    try:
        bare = Member(member_id)
    except InvalidMember as exc:
        raise CliError(f"bad member id {member_id[:40]!r}: {exc}") from None
    try:
        return otp.member(bare.id), True
    except UnknownMember:
        if strict:
            raise CliError(f"no member_lookup plugin knows member {bare.id!r} (--strict)") from None
    click.echo(f"warning: no member_lookup plugin knows {bare.id!r}; roles unknown, so the policy shown is "
               "the site default", err=True)
    return bare, False


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


_strict_option = click.option("--strict", is_flag=True,
                              help="fail when no member_lookup plugin knows the id (default: warn, assume no roles)")
_actor_option = click.option("--actor", default=None, help="operator named in the audit log (default: OS user)")


@cli.group()
def members() -> None:
    """Support actions on one member: show, disable, reset, unlock."""


@members.command("show")
@click.argument("member_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@_strict_option
@click.pass_context
def members_show(ctx: click.Context, member_id: str, as_json: bool, strict: bool) -> None:
    """Requirement, enrolled channel, backup codes left, trusted devices, lockout and the last 20 events."""
    otp = _load_otp(ctx)
    member, roles_known = _member_arg(otp, member_id, strict)
    status = otp.status(member, start_grace=False)  # looking must not start a grace period
    devices = otp.trusted_devices(member)
    events = otp.events(member, limit=20)
    data = {
        "member": {"id": member.id, "roles": list(member.roles), "roles_known": roles_known, "email": member.email,
                   "name": member.name},
        "requirement": status.requirement,
        "enrolled": status.enrolled,
        "channel": status.channel,
        "disabled": status.disabled,
        "channels": list(status.channels),
        "unavailable": dict(status.unavailable),
        "in_grace": status.in_grace,
        "grace_ends_at": _iso(status.grace_ends_at),
        "must_setup": status.must_setup,
        "locked_until": _iso(status.locked_until),
        "backup_codes_remaining": status.backup_codes_remaining,
        "trusted_devices": [
            {"id": d.id, "label": d.label, "created_at": _iso(d.created_at), "expires_at": _iso(d.expires_at),
             "last_used_at": _iso(d.last_used_at)} for d in devices
        ],
        "events": [_event_dict(e) for e in events],
    }
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    roles = ", ".join(member.roles) if roles_known else "unknown"
    click.echo(f"member        {member.id}  ({member.display_name}; roles: {roles or '-'})")
    grace = f", grace until {data['grace_ends_at']}" if status.in_grace else ""
    click.echo(f"requirement   {status.requirement}{grace}{'  MUST SET UP' if status.must_setup else ''}")
    enrolled = status.channel if status.enrolled else ("disabled" if status.disabled else "not enrolled")
    click.echo(f"enrolled      {enrolled}")
    click.echo(f"backup codes  {status.backup_codes_remaining} left")
    click.echo(f"lockout       {'locked until ' + str(data['locked_until']) if status.locked_until else 'none'}")
    click.echo(f"devices       {len(devices)} trusted")
    for d in data["trusted_devices"]:
        click.echo(f"  #{d['id']} {d['label']}  until {d['expires_at']}  last used {d['last_used_at'] or 'never'}")
    click.echo(f"events        last {len(events)}")
    for e in events:
        click.echo("  " + _event_line(e))


def _event_dict(e: Any) -> dict[str, Any]:
    return {"id": e.id, "at": _iso(e.at), "kind": e.kind, "outcome": e.outcome, "member_id": e.member_id,
            "channel": e.channel, "ip": e.ip, "user_agent": e.user_agent, "actor": e.actor, "details": dict(e.details)}


def _event_line(e: Any) -> str:
    details = " ".join(f"{k}={v}" for k, v in sorted(e.details.items()))
    at = e.at.strftime("%Y-%m-%d %H:%M:%S")
    return (f"{at}  {e.kind:<22} {e.outcome:<6} {e.member_id or '-':<16} {e.channel or '-':<14} "
            f"{('by ' + e.actor) if e.actor else ''} {details}").rstrip()


@members.command("disable")
@click.argument("member_id", metavar="ID")
@click.option("--force", is_flag=True, help="disable even when the policy requires a second factor")
@_actor_option
@_strict_option
@click.pass_context
def members_disable(ctx: click.Context, member_id: str, force: bool, actor: str | None, strict: bool) -> None:
    """Switch the member's second factor off (factor, backup codes and trusted devices removed)."""
    from .errors import PolicyError

    otp = _load_otp(ctx)
    member, roles_known = _member_arg(otp, member_id, strict)
    if not roles_known and not force:
        raise CliError("cannot check the member's policy without their roles; pass --force to disable anyway")
    try:
        otp.disable(member, actor=actor or _os_user(), force=force)
    except PolicyError as exc:
        raise CliError(f"{exc}; pass --force to disable it anyway") from None
    click.echo(f"disabled two-factor authentication for {member.id}")


@members.command("reset")
@click.argument("member_id", metavar="ID")
@_actor_option
@_strict_option
@click.pass_context
def members_reset(ctx: click.Context, member_id: str, actor: str | None, strict: bool) -> None:
    """Force the member to set up again: factor, backup codes, trusted devices and lockout cleared."""
    otp = _load_otp(ctx)
    member, _ = _member_arg(otp, member_id, strict)
    otp.reset(member, actor=actor or _os_user())
    click.echo(f"reset {member.id}: factor, backup codes and trusted devices removed; they will set up again")


@members.command("unlock")
@click.argument("member_id", metavar="ID")
@_actor_option
@_strict_option
@click.pass_context
def members_unlock(ctx: click.Context, member_id: str, actor: str | None, strict: bool) -> None:
    """Lift a lockout (including the hard lock after 100 consecutive failures)."""
    otp = _load_otp(ctx)
    member, _ = _member_arg(otp, member_id, strict)
    otp.unlock(member, actor=actor or _os_user())
    click.echo(f"unlocked {member.id}")


# -------------------------------------------------------------------- audit


class _Parsed(click.ParamType):
    """A value read by one of ``auditlog``'s parsers; its ``ValueError`` becomes click's usage error."""

    def __init__(self, name: str, parse: Callable[[str], Any], kind: type) -> None:
        self.name = name
        self._parse = parse
        self._kind = kind

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, self._kind):
            return value
        try:
            return self._parse(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _when() -> _Parsed:
    """An ISO date / date-time or an age before now (``30d``, ``12h``)."""
    from datetime import datetime, timezone

    from .auditlog import parse_when

    return _Parsed("WHEN", lambda text: parse_when(text, datetime.now(timezone.utc)), datetime)


def _age() -> _Parsed:
    """An age (``365d``, ``12h``)."""
    from datetime import timedelta

    from .auditlog import parse_age

    return _Parsed("AGE", parse_age, timedelta)


def _audit_filters(func: Any) -> Any:
    for option in reversed([
        click.option("--member", "member_id", default=None, metavar="ID", help="only this member"),
        click.option("--kind", "kinds", multiple=True, metavar="KIND", help="only this event kind (repeatable)"),
        click.option("--channel", default=None, help="only this channel (email:code, totp, ...)"),
        click.option("--outcome", type=click.Choice(["ok", "failed", "info"]), default=None),
        click.option("--since", type=_when(), default=None, help="from (ISO date or age: 2026-01-01, 30d, 12h)"),
        click.option("--until", type=_when(), default=None, help="before (ISO date or age)"),
    ]):
        func = option(func)
    return func


def _filter(member_id: str | None, kinds: tuple[str, ...], channel: str | None, outcome: str | None,
            since: Any, until: Any) -> Any:
    from .auditlog import AuditFilter

    return AuditFilter(member_id=member_id, kinds=kinds, channel=channel, outcome=outcome, since=since, until=until)


@cli.group("audit")
def audit_group() -> None:
    """The audit log: list, export, prune."""


@audit_group.command("list")
@_audit_filters
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.pass_context
def audit_list(ctx: click.Context, limit: int, as_json: bool, **filters: Any) -> None:
    """The newest matching events, newest first."""
    from .auditlog import list_events

    otp = _load_otp(ctx)
    events = list_events(otp.db, _filter(**filters), limit=limit)
    if as_json:
        click.echo(json.dumps([_event_dict(e) for e in events], indent=2))
        return
    for e in events:
        click.echo(_event_line(e))
    if not events:
        click.echo("no matching events", err=True)


@audit_group.command("export")
@_audit_filters
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "json"]), default="jsonl", show_default=True)
@click.option("--output", "-o", required=True, metavar="FILE", help="file to write ('-' for standard output)")
@click.pass_context
def audit_export(ctx: click.Context, fmt: str, output: str, **filters: Any) -> None:
    """Stream matching events, oldest first, to FILE (constant memory; a progress bar on a terminal)."""
    from .auditlog import count_events, export

    otp = _load_otp(ctx)
    where = _filter(**filters)
    if output == "-":
        count = export(otp.db, sys.stdout, fmt, where)
        click.echo(f"exported {count} events", err=True)
        return
    target = Path(output)
    partial = target.with_name(target.name + ".partial")
    try:
        handle = partial.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror}") from None
    try:
        with handle:
            if sys.stderr.isatty():
                total = count_events(otp.db, where)
                with click.progressbar(length=total, label="exporting", file=sys.stderr) as bar:
                    count = export(otp.db, handle, fmt, where, progress=bar.update)
            else:
                count = export(otp.db, handle, fmt, where)
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    click.echo(f"exported {count} events to {target}", err=True)


@audit_group.command("prune")
@click.option("--older-than", "older_than", type=_age(), required=True, metavar="AGE",
              help="delete events older than this (365d, 12w, ...)")
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
@_actor_option
@click.pass_context
def audit_prune(ctx: click.Context, older_than: Any, yes: bool, actor: str | None) -> None:
    """Delete events older than AGE (retention). Asks first unless --yes."""
    from datetime import timedelta

    from .auditlog import AuditFilter, count_events, prune

    if older_than < timedelta(days=1):
        raise CliError("--older-than must be at least 1d")
    otp = _load_otp(ctx)
    cutoff = otp.clock() - older_than
    pending = count_events(otp.db, AuditFilter(until=cutoff))
    if pending == 0:
        click.echo(f"no events older than {cutoff.isoformat()}")
        return
    if not yes:
        try:
            confirmed = click.confirm(f"delete {pending} audit events older than {cutoff.isoformat()}?")
        except click.exceptions.Abort:
            confirmed = False
        if not confirmed:
            raise CliError("not confirmed, nothing deleted (pass --yes to prune without asking)", exit_code=1)
    deleted = prune(otp, older_than, actor=actor or _os_user())
    click.echo(f"deleted {deleted} audit events older than {cutoff.isoformat()}")


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
    except click.UsageError as exc:
        # One line: the problem and where to look, not click's usage block.
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        click.echo(f"otp-pro: {exc.format_message()}{where}", err=True)
        sys.exit(exc.exit_code)
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
