"""``otp-pro audit``: list, export and prune the audit log, with the filters the three share."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .common import CliError, actor_option, event_line, load_otp, os_user


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
        from ..auditlog import parse_when  # at use: auditlog needs SQLAlchemy, listing commands do not

        return parse_when(text, datetime.now(timezone.utc))

    return _Parsed("WHEN", parse, datetime)


def _age() -> _Parsed:
    """An age (``365d``, ``12h``)."""
    from datetime import timedelta

    def parse(text: str) -> timedelta:
        from ..auditlog import parse_age  # at use, as in _when

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
    from ..auditlog import AuditFilter

    return AuditFilter(member_id=member_id, kinds=kinds, channel=channel, outcome=outcome, since=since, until=until)


def _given(filters: dict[str, Any]) -> dict[str, Any]:
    """The filters given, as the ``audit_exported`` event records them (the console's names: ``member``,
    ``kind``, ...; times in ISO 8601)."""
    names = {"member_id": "member", "kinds": "kind"}
    given: dict[str, Any] = {}
    for name, value in filters.items():
        if value is None or value == ():
            continue
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        given[names.get(name, name)] = list(value) if isinstance(value, tuple) else value
    return given


def _refuse_unknown_kinds(ctx: click.Context, otp: Any, kinds: tuple[str, ...]) -> None:
    """A ``--kind`` nobody writes would match nothing, silently: refuse it as a usage error and list the kinds."""
    from .. import audit
    from ..auditlog import recorded_kinds, unknown_kinds

    unknown = unknown_kinds(otp.db, kinds)
    if unknown:
        known = ", ".join(sorted(audit.KINDS | recorded_kinds(otp.db)))
        shown = ", ".join(repr(k) for k in unknown)
        raise click.BadParameter(f"unknown event kind {shown} (known: {known})", ctx=ctx, param_hint="'--kind'")


@click.group("audit")
def audit_group() -> None:
    """The audit log: list, export, prune."""


@audit_group.command("list")
@_audit_filters
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.pass_context
def audit_list(ctx: click.Context, limit: int, as_json: bool, **filters: Any) -> None:
    """The newest matching events, newest first."""
    from ..auditlog import list_events
    from ..support import event_dict

    otp = load_otp(ctx)
    _refuse_unknown_kinds(ctx, otp, filters["kinds"])
    events = list_events(otp.db, _filter(**filters), limit=limit)
    if as_json:
        click.echo(json.dumps([event_dict(e) for e in events], indent=2))
        return
    for e in events:
        click.echo(event_line(e, colour=True))
    if not events:
        click.echo("no matching events", err=True)


@audit_group.command("export")
@_audit_filters
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "json"]), default="jsonl", show_default=True)
@click.option("--output", "-o", required=True, metavar="FILE", help="file to write ('-' for standard output)")
@actor_option
@click.pass_context
def audit_export(ctx: click.Context, fmt: str, output: str, actor: str | None, **filters: Any) -> None:
    """Stream matching events, oldest first, to FILE (constant memory; a progress bar on a terminal).

    The export is itself audited (``audit_exported``, with the operator, the format and the filters), as the
    operator console's is.
    """
    from .. import audit
    from ..auditlog import count_events, export

    otp = load_otp(ctx)
    _refuse_unknown_kinds(ctx, otp, filters["kinds"])
    where = _filter(**filters)

    def record() -> None:
        # Who took a copy of the log, and of what, is in the log before the first row is read (an export
        # that is interrupted was still asked for); an export refused before that records nothing.
        otp.record_event(audit.AUDIT_EXPORTED, actor=actor or os_user(), format=fmt, filters=_given(filters))

    if output == "-":
        record()
        count = export(otp.db, sys.stdout, fmt, where)
        click.echo(f"exported {count} events", err=True)
        return
    target = Path(output)
    if target.is_dir():  # refused before anything is read (the rename at the end would fail)
        raise CliError(f"cannot write {target}: it is a folder")
    partial = target.with_name(target.name + ".partial")
    try:
        handle = partial.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror}") from None
    try:
        with handle:
            record()
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
@actor_option
@click.pass_context
def audit_prune(ctx: click.Context, older_than: Any, yes: bool, actor: str | None) -> None:
    """Delete events older than AGE (retention). Asks first unless --yes."""
    from datetime import timedelta

    from ..auditlog import AuditFilter, count_events, prune

    if older_than < timedelta(days=1):
        raise CliError("--older-than must be at least 1d")
    otp = load_otp(ctx)
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
    deleted = prune(otp, older_than, actor=actor or os_user())
    click.echo(f"deleted {deleted} audit events older than {cutoff.isoformat()}")
