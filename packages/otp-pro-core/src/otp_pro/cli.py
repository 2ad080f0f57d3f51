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

from .cli_plugins import PluginCommandGroup
from .errors import ConfigurationError, OtpProError, StorageError
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
            vars(self)["exit_code"] = exit_code  # click types exit_code as a class variable

    def show(self, file: Any = None) -> None:
        _error(self.format_message())


def _error(text: str) -> None:
    """The one line of an error on standard error; the prefix is red on a terminal only (click strips styles)."""
    # Errors quote what the operator typed (a path, an argument): a newline there would break the one line,
    # an escape sequence would reach the terminal. Both are shown escaped, as repr() writes them.
    text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    click.echo(click.style("otp-pro:", fg="red", bold=True) + " " + text, err=True)


def _config_path(config: str | None) -> Path:
    return Path(config or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def _load_settings(ctx: click.Context) -> Settings:
    path = _config_path(ctx.obj.get("config"))
    try:
        found = path.exists()
    except OSError as exc:  # a name too long for the file system, for one
        raise CliError(f"cannot read the settings file {str(path)[:80]!r}: {exc.strerror}") from None
    if not found:
        raise CliError(f"no settings file at {path}: run `otp-pro init` or pass --config")
    return Settings.from_file(path)


def _load_otp(ctx: click.Context, **kwargs: Any) -> Any:
    from .core import OtpPro

    if "otp" not in ctx.obj:
        otp = ctx.obj["otp"] = OtpPro(_load_settings(ctx), plugins=ctx.obj.get("plugins", ()), **kwargs)
        # Made here, closed here: its pooled connections and transports go when the command ends
        # (an OtpPro passed in by the caller stays the caller's to close).
        ctx.find_root().call_on_close(otp.close)
    return ctx.obj["otp"]


@click.group(cls=PluginCommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "-c", metavar="FILE", help=f"settings file (default ${CONFIG_ENV} or ./{DEFAULT_CONFIG})")
@click.version_option(package_name="otp-pro-core", prog_name="otp-pro")
@click.pass_context
def cli(ctx: click.Context, config: str | None) -> None:
    """otp-pro: multi-factor authentication for Python web applications.

    Installed plugins may add commands of their own (the otp_pro_cli_commands hook).
    """
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
@click.option("--json", "as_json", is_flag=True, help="print JSON (same as --format json)")
@click.pass_context
def providers_list(ctx: click.Context, fmt: str, as_json: bool) -> None:
    """Every plugin, the transports and payloads it brings, where it came from.

    Only discovers the plugins and asks what they register: no database, no start-up
    checks, no provider settings validated (that is ``otp-pro config check``).
    """
    if "otp" in ctx.obj:
        infos = ctx.obj["otp"].plugins()
    else:
        from .plugins import PluginHost

        host = PluginHost(disabled=_load_settings(ctx).disable_plugins, extra=ctx.obj.get("plugins", ()))
        host.collect_providers()
        infos = host.infos()
    rows = [
        {
            "plugin": p.name, "distribution": p.distribution, "version": p.version, "builtin": p.builtin,
            "enabled": p.enabled, "transports": list(p.transports), "payloads": list(p.payloads), "error": p.error,
        }
        for p in infos
    ]
    if fmt == "json" or as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        state = "error: " + r["error"] if r["error"] else ("enabled" if r["enabled"] else "disabled")
        colour = "red" if r["error"] else ("green" if r["enabled"] else "yellow")
        provides = ", ".join([*r["transports"], *(f"payload {p}" for p in r["payloads"])]) or "-"
        click.echo(f"{r['plugin']:<24} {r['distribution'] or '-'} {r['version'] or ''}  "
                   f"[{click.style(state, fg=colour)}]  {provides}")


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


_OUTCOME_COLOURS = {"ok": "green", "failed": "red"}


def _event_line(e: Any, colour: bool = False) -> str:
    """One event on one line; with ``colour`` the outcome is green or red (shown on a terminal only)."""
    details = " ".join(f"{k}={v}" for k, v in sorted(e.details.items()))
    at = e.at.strftime("%Y-%m-%d %H:%M:%S")
    outcome = f"{e.outcome:<6}"
    if colour and e.outcome in _OUTCOME_COLOURS:
        outcome = click.style(outcome, fg=_OUTCOME_COLOURS[e.outcome])
    return (f"{at}  {e.kind:<22} {outcome} {e.member_id or '-':<16} {e.channel or '-':<14} "
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


# --------------------------------------------------------------------- keys


@cli.group()
def keys() -> None:
    """Secret keys: re-encrypt the stored TOTP seeds after a key rotation."""


@keys.command("rotate")
@_actor_option
@click.pass_context
def keys_rotate(ctx: click.Context, actor: str | None) -> None:
    """Re-encrypt every stored TOTP seed with the current secret_key.

    First set the new secret_key and move the old one to previous_secret_keys.
    Keep the old key listed until the trusted devices and backup codes made
    before the rotation have expired or been replaced: they are keyed hashes,
    which cannot be re-computed without the member's token or code.
    """
    from sqlalchemy import func, select

    from .storage.schema import members, trusted_devices

    settings = _load_settings(ctx)
    if not settings.previous_secret_keys:
        raise CliError("previous_secret_keys is empty: set the new secret_key and list the old key in "
                       "previous_secret_keys, then run this again")
    otp = _load_otp(ctx)
    count = otp.rotate_keys(actor=actor or _os_user())
    current = otp.keys.key_ids[0]
    with otp.db.read() as conn:
        old_backup = conn.execute(select(func.count()).select_from(members).where(
            members.c.backup_key_id.is_not(None), members.c.backup_key_id != current)).scalar_one()
        last_device = conn.execute(select(func.max(trusted_devices.c.expires_at)).where(
            trusted_devices.c.revoked_at.is_(None), trusted_devices.c.expires_at > otp.clock())).scalar_one()
    click.echo(f"re-encrypted {count} TOTP seed{'s' if count != 1 else ''} with the current secret_key")
    if old_backup or last_device is not None:
        until = f"; live trusted devices last until {last_device:%Y-%m-%d}" if last_device is not None else ""
        click.echo(f"keep the old key in previous_secret_keys: {old_backup} member(s) have backup codes made with "
                   f"it{until} (they stop working once it is removed)")
    else:
        click.echo("no trusted device or backup code needs the old key: it can be removed from previous_secret_keys")


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

    def parse(text: str) -> datetime:
        from .auditlog import parse_when  # at use: auditlog needs SQLAlchemy, listing commands do not

        return parse_when(text, datetime.now(timezone.utc))

    return _Parsed("WHEN", parse, datetime)


def _age() -> _Parsed:
    """An age (``365d``, ``12h``)."""
    from datetime import timedelta

    def parse(text: str) -> timedelta:
        from .auditlog import parse_age  # at use, as in _when

        return parse_age(text)

    return _Parsed("AGE", parse, timedelta)


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
        click.echo(_event_line(e, colour=True))
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
        try:
            partial.replace(target)
        except OSError as exc:  # the target is a folder, or cannot be replaced
            raise CliError(f"cannot write {target}: {exc.strerror}") from None
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
    try:
        cutoff = otp.clock() - older_than
    except OverflowError:  # 999999d: before the year 1, which datetime cannot hold
        raise CliError(f"--older-than {older_than.days}d reaches back before the year 1") from None
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


# -------------------------------------------------------------------- stats


class _SinceText(click.ParamType):
    """An ISO date or an age (``30d``), checked at once but resolved later against the instance's clock."""

    name = "WHEN"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from datetime import datetime, timezone

        from .auditlog import parse_when

        try:
            parse_when(str(value), datetime.now(timezone.utc))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return str(value)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _heading(text: str) -> None:
    click.echo("\n" + click.style(text, bold=True))


def _print_table(header: list[str], rows: list[list[Any]]) -> None:
    """Numbers right-aligned, text left-aligned; widths from the plain (unstyled) text."""
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(click.unstyle(row[i])) for row in cells) for i in range(len(header))]
    plain = [[click.unstyle(cell) for cell in row] for row in cells[1:]]
    numeric = [i > 0 and all(row[i] == "-" or row[i].rstrip("%").replace(".", "").isdigit() for row in plain)
               for i in range(len(header))]

    def line(row: list[str]) -> str:
        out = []
        for i, cell in enumerate(row):
            pad = " " * (widths[i] - len(click.unstyle(cell)))
            out.append(pad + cell if numeric[i] else cell + pad)
        return "  ".join(out).rstrip()

    click.echo(click.style(line(header), underline=True))
    for row in cells[1:]:
        click.echo(line(row))


@cli.command("stats")
@click.option("--since", default="30d", show_default=True, type=_SinceText(),
              help="start of the period: an age (30d, 12h) or an ISO date (2026-01-01)")
@click.option("--until", default=None, type=_SinceText(),
              help="end of the period: an age (7d) or an ISO date (2026-02-01); default now")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print JSON (same as --format json)")
@click.option("--roles/--no-roles", default=True, show_default=True,
              help="split adoption by role through the member_lookup plugin, when one is installed")
@click.pass_context
def stats_command(ctx: click.Context, since: str, until: str | None, fmt: str, as_json: bool, roles: bool) -> None:
    """Adoption by role and channel; challenges, verification rates, lockouts, backup codes, delivery failures."""
    from .auditlog import parse_when
    from .stats import collect

    otp = _load_otp(ctx)
    now = otp.clock()
    start = parse_when(since, now)
    end = parse_when(until, now) if until is not None else now
    if end > now:
        raise CliError(f"--until {until} is in the future: statistics end now at the latest")
    if start > end:  # collect() refuses a period that ends before it starts
        raise CliError(f"--since {since} is after the end of the period ({'--until ' + until if until else 'now'})")
    result = collect(otp, start, until=end, roles=roles)
    if fmt == "json" or as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
        return
    click.echo(click.style("otp-pro statistics", bold=True) +
               f"  {result.since:%Y-%m-%d %H:%M} to {result.until:%Y-%m-%d %H:%M} UTC")
    _heading("Adoption " + ("by role (roles from member_lookup)" if result.roles_known else
                            "(roles unknown: every member otp-pro recorded; see docs/cli.md)"))
    _print_table(
        ["role", "subjects", "enrolled", "required, not enrolled", "in grace", "disabled", "enrolled by channel"],
        [[a.role, a.subjects, a.enrolled, a.required_not_enrolled, a.in_grace, a.disabled,
          " ".join(f"{k}={v}" for k, v in sorted(a.channels.items())) or "-"] for a in result.adoption],
    )
    _heading("Channels")
    if result.channels:
        _print_table(
            ["channel", "challenges sent", "verified", "failed", "success", "failure"],
            [[c.channel, c.challenges_sent, c.verify_ok, c.verify_failed,
              click.style(_rate(c.success_rate), fg="green"),
              click.style(_rate(c.failure_rate), fg="red" if c.verify_failed else None)] for c in result.channels],
        )
    else:
        click.echo("no challenges or verifications in the period")
    t = result.totals
    click.echo(f"\nlockouts {t['lockouts']}   backup codes used {t['backup_codes_used']}   "
               f"delivery failures {t['delivery_failures']}")
    if result.delivery_failures:
        _heading("Delivery failures")
        _print_table(["provider", "error", "provider code", "count"],
                     [[f.provider, f.error, f.provider_code or "-", click.style(str(f.count), fg="red")]
                      for f in result.delivery_failures])
    active = [d for d in result.daily if any(v for k, v in d.items() if k != "day")]
    _heading(f"Per day ({len(active)} of {len(result.daily)} days had activity; the others are left out)")
    if active:
        _print_table(
            ["day", "sent", "verified", "failed", "lockouts", "backup codes", "delivery failures"],
            [[d["day"], d["challenges_sent"], d["verify_ok"], d["verify_failed"], d["lockouts"],
              d["backup_codes_used"], d["delivery_failures"]] for d in active],
        )


# ---------------------------------------------------------------- templates

#: Message kinds ``templates preview`` renders: (core message kind, payload, purpose).
TEMPLATE_KINDS: dict[str, tuple[str, str | None, str | None]] = {
    "code": ("challenge", "code", "verify"),
    "setup": ("challenge", "code", "setup"),
    "magic_link": ("challenge", "magic_link", "verify"),
    "notification": ("notification", None, None),
    "test": ("test", "code", None),
}
SAMPLE_CODE = "492817"
SAMPLE_LINK = "https://example.com/otp/link?token=SAMPLE-TOKEN"
SAMPLE_NOTICE = "Two-step verification was set up on your account."


def _preview_channel(otp: Any, payload: str | None, wanted: str | None) -> tuple[str, Any]:
    """The channel and transport to render with: ``wanted``, else the first email channel for the payload."""
    if wanted is not None:
        transport = otp.transports.get(wanted.partition(":")[0])
        if transport is None:
            raise CliError(f"no transport for channel {wanted!r} (transports: {', '.join(otp.transports) or 'none'})")
        return wanted, transport
    suffix = f":{payload or 'code'}"
    candidates = [(name, c.transport) for name, c in otp.channels.items()
                  if c.transport is not None and name.endswith(suffix)]
    candidates += [(f"{t.name}{suffix}", t) for t in otp.transports.values()]
    for name, transport in candidates:
        if transport.message_format == "email":
            return name, transport
    if candidates:
        return candidates[0]
    raise CliError("no transport is installed to render a message with")


@cli.group("templates")
def templates_group() -> None:
    """Preview messages; copy the sample web templates."""


@templates_group.command("preview")
@click.argument("kind", metavar="KIND", type=click.Choice(list(TEMPLATE_KINDS)))
@click.option("--format", "fmt", type=click.Choice(["text", "html", "subject"]), default="text", show_default=True)
@click.option("--output", "-o", metavar="FILE", default=None, help="write to FILE instead of standard output")
@click.option("--channel", default=None, help="render for this channel's transport (default: an email channel)")
@click.option("--var", "-v", "overrides", metavar="NAME=VALUE", multiple=True, help="replace a sample variable")
@click.pass_context
def templates_preview(ctx: click.Context, kind: str, fmt: str, output: str | None, channel: str | None,
                      overrides: tuple[str, ...]) -> None:
    """Render the KIND message with sample values through the installed templating plugins; nothing is sent."""
    from datetime import timedelta

    from .member import Member

    extra_vars: dict[str, str] = {}
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--var")
        extra_vars[name] = value
    otp = _load_otp(ctx, migrate_database=False)
    core_kind, payload, purpose = TEMPLATE_KINDS[kind]
    channel, transport = _preview_channel(otp, payload, channel)
    member = Member("preview", email="ann@example.com", name="Ann Example", fields={"phone": "+14155550123"})
    now = otp.clock()
    try:
        recipient = transport.recipient(member)
    except Exception:  # noqa: BLE001 - a transport that cannot address the sample member still renders
        recipient = member.email or ""
    extra: dict[str, Any] = {
        "recipient": recipient, "issued_at": now, "purpose": purpose, "payload_kind": payload,
        "payload": SAMPLE_LINK if payload == "magic_link" else (SAMPLE_CODE if payload else None),
        "payload_is_link": payload == "magic_link",
        "expires_at": now + timedelta(seconds=otp.settings.code_ttl_seconds) if payload else None,
    }
    if core_kind == "notification":
        from .builtins.notify import preview_variables  # the variables the built-in notifications pass

        extra.update(preview_variables(otp))
        extra["notice"] = SAMPLE_NOTICE
    extra.update(extra_vars)
    message = otp.render_message(transport, member, channel, core_kind, extra)
    if fmt == "html" and not message.html:
        raise CliError(f"the {kind} message for {channel} has no HTML version (plain text only; "
                       "otp-pro-html-email renders HTML email)", exit_code=1)
    if fmt == "subject" and not message.subject:
        raise CliError(f"the {kind} message for {channel} has no subject", exit_code=1)
    text = {"text": message.text, "html": message.html or "", "subject": message.subject}[fmt]
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    try:
        Path(output).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror}") from None
    click.echo(f"wrote the {kind} {fmt} preview ({channel}) to {output}", err=True)


def sample_templates() -> Any:
    """The folder of sample web templates shipped in the package (``otp_pro/web/templates``)."""
    from importlib.resources import files

    return files("otp_pro").joinpath("web").joinpath("templates")


def _template_files(folder: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every file under ``folder`` (a resources Traversable) as (relative parts, file), sorted; caches left out."""
    out: list[tuple[tuple[str, ...], Any]] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name == "__pycache__" or entry.name.endswith(".pyc"):
            continue
        if entry.is_dir():
            out += _template_files(entry, (*prefix, entry.name))
        elif entry.is_file():
            out.append(((*prefix, entry.name), entry))
    return out


@templates_group.command("install")
@click.argument("directory", metavar="DIR")
@click.option("--force", is_flag=True, help="overwrite files that already exist")
def templates_install(directory: str, force: bool) -> None:
    """Copy the sample web templates (login, verify, settings pages, ...) into DIR for editing."""
    source = sample_templates()
    files = _template_files(source) if source.is_dir() else []
    if not files:
        raise CliError("this installation ships no sample web templates (otp_pro/web/templates is missing or empty)")
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise CliError(f"{target} exists and is not a folder")
    existing = [Path(*parts) for parts, _ in files if (target / Path(*parts)).exists()]
    if existing and not force:
        shown = ", ".join(str(p) for p in existing[:3]) + (", ..." if len(existing) > 3 else "")
        raise CliError(f"{len(existing)} of the {len(files)} files already exist in {target} ({shown}); "
                       "nothing was written; pass --force to overwrite them")
    for parts, entry in files:
        path = target / Path(*parts)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(entry.read_bytes())
        except OSError as exc:
            raise CliError(f"cannot write {path}: {exc.strerror}") from None
        click.echo(f"wrote {path}")
    click.echo(f"{len(files)} files in {target}" + (f" ({len(existing)} overwritten)" if existing else ""), err=True)


@cli.command()
@click.option("--database", metavar="FILE", default=None, help="SQLite file to use (default: a temporary one)")
@click.option("--host", default="127.0.0.1", show_default=True, help="address the demo site listens on")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535), help="port (0: a free one)")
@click.option("--script", is_flag=True, help="run the scripted walk-through in the terminal instead of the site")
def demo(database: str | None, host: str, port: int, script: bool) -> None:
    """Start the demo site (Flask, embedded SQLite, dev mailbox); --script runs the terminal walk-through."""
    if not script:
        try:
            from .web.demo_site import serve
        except ImportError as exc:
            raise CliError(f"the demo site needs Flask ({exc}): pip install 'otp-pro-core[flask]', "
                           "or run `otp-pro demo --script`", exit_code=2) from None
        try:
            serve(host=host, port=port, database=database, echo=click.echo)
        except OSError as exc:
            raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (try --port 0)",
                           exit_code=1) from None
        return
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


@cli.command("new-transport")
@click.argument("name")
@click.option("--directory", "-d", metavar="DIR", default=None, help="where to write it (default ./otp-pro-NAME)")
def new_transport(name: str, directory: str | None) -> None:
    """Write the skeleton of a transport distribution NAME whose contract tests pass as generated."""
    from .scaffold import ScaffoldError
    from .scaffold import new_transport as write_skeleton

    try:
        names, target, files = write_skeleton(name, directory)
    except (ScaffoldError, OSError) as exc:
        raise CliError(str(exc)) from None
    click.echo(f"wrote {names.distribution} (transport {names.name!r}, module {names.module}) to {target}:")
    for path in files:
        click.echo(f"  {path.relative_to(target)}")
    click.echo(f"next: cd {target} && pip install -e '.[test]' && pytest")


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
        _error(f"{exc.format_message()}{where}")
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ConfigurationError as exc:
        _error(f"configuration error: {exc}")
        sys.exit(2)
    except StorageError as exc:  # the database went away or refuses us: as an OperationalError below
        _error(f"cannot use the database: {exc}")
        sys.exit(2)
    except OtpProError as exc:
        _error(f"{type(exc).__name__}: {exc}")
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - never a bare traceback
        if os.environ.get("OTP_PRO_DEBUG"):
            traceback.print_exc()
        from sqlalchemy.exc import OperationalError

        if isinstance(exc, OperationalError):  # the database went away or refuses us: say so, on one line
            _error("cannot use the database: " + " ".join(str(exc.orig).split()))
            sys.exit(2)
        _error(f"unexpected {type(exc).__name__}; set OTP_PRO_DEBUG=1 for details")
        sys.exit(70)


if __name__ == "__main__":  # pragma: no cover
    main()
