"""``otp-pro members``: support actions on one member (show, disable, reset, unlock) and on their factors."""

from __future__ import annotations

import json
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import click

from .common import CliError, actor_option, event_line, load_otp, os_user

#: ``--strict``: refuse an id that no member lookup knows instead of going on without roles and addresses.
_strict_option = click.option("--strict", is_flag=True,
                              help="fail when no member lookup knows the id (default: warn; roles and "
                                   "addresses unknown)")


def _member_arg(otp: Any, member_id: str, strict: bool, *, warn: bool = True) -> tuple[Any, bool]:
    """:func:`otp_pro.support.find_member` for a command: ``(member, known)``, or a usage error.

    Without ``known`` the member's roles and addresses are unknown, so the policy cannot be judged and
    nothing can be sent to them; callers say so instead of guessing. ``strict`` refuses such an id;
    ``warn=False`` leaves the warning (:func:`_unknown_warning`) to the caller.
    """
    from ..errors import PluginError
    from ..member import InvalidMember
    from ..support import find_member, unknown_reason

    try:
        member, known = find_member(otp, member_id)
    except InvalidMember as exc:
        raise CliError(f"bad member id {member_id[:40]!r}: {exc}") from None
    except PluginError as exc:
        raise CliError(str(exc)) from None
    if not known:
        if strict:
            if not otp.has_member_lookup:
                raise CliError(f"{unknown_reason(otp)} (--strict)")
            raise CliError(f"the member lookup does not know member {member.id!r} (--strict)")
        if warn:
            _unknown_warning(otp, member.id)
    return member, known


def _unknown_warning(otp: Any, member_id: str) -> None:
    from ..support import unknown_reason

    click.echo(f"warning: {unknown_reason(otp)}: roles and addresses of {member_id!r} unknown", err=True)


@click.group()
def members() -> None:
    """Support actions on one member: show, disable, reset, unlock, and remove, rename or make default a factor."""


@members.command("show")
@click.argument("member_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@_strict_option
@click.pass_context
def members_show(ctx: click.Context, member_id: str, as_json: bool, strict: bool) -> None:
    """Requirement, factors, backup codes left, trusted devices, lockout and the last 20 events."""
    from ..support import member_report

    otp = load_otp(ctx)
    member, known = _member_arg(otp, member_id, strict, warn=False)
    data = member_report(otp, member, known)
    if not known:
        if not data["seen"]:
            # Nobody knows the id and otp-pro holds nothing for it: a typo, not a member who is "not enrolled".
            raise CliError(f"no such member {member.id!r}: no member lookup knows the id and otp-pro holds no "
                           "state for it", exit_code=1)
        _unknown_warning(otp, member.id)
    del data["seen"]  # the JSON printed stays as it was
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    roles = (", ".join(member.roles) or "-") if known else "unknown"
    click.echo(f"member        {member.id}  ({member.display_name}; roles: {roles})")
    if known:
        grace = f", grace until {data['grace_ends_at']}" if data["in_grace"] else ""
        click.echo(f"requirement   {data['requirement']}{grace}{'  MUST SET UP' if data['must_setup'] else ''}")
    else:
        click.echo("requirement   unknown (roles and addresses unknown: set member_lookup in the settings)")
    enrolled = data["channel"] if data["enrolled"] else ("disabled" if data["disabled"] else "not enrolled")
    click.echo(f"enrolled      {enrolled}")
    click.echo(f"factors       {len(data['factors'])}")
    for f in data["factors"]:
        click.echo("  " + _factor_line(f))
    click.echo(f"backup codes  {data['backup_codes_remaining']} left")
    click.echo(f"lockout       {'locked until ' + str(data['locked_until']) if data['locked_until'] else 'none'}")
    click.echo(f"devices       {len(data['trusted_devices'])} trusted")
    for d in data["trusted_devices"]:
        click.echo(f"  #{d['id']} {d['label']}  until {d['expires_at']}  last used {d['last_used_at'] or 'never'}")
    click.echo(f"events        last {len(data['events'])}")
    for e in data["events"]:
        click.echo("  " + event_line(SimpleNamespace(**{**e, "at": datetime.fromisoformat(e["at"])})))

def _quoted(label: str) -> str:
    """A member's label in double quotes, anything unprintable (a bidi override, DEL) escaped as repr() writes it."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in json.dumps(label, ensure_ascii=False))


def _factor_line(f: dict[str, Any]) -> str:
    """One factor of ``members show`` on one line (the label quoted: it is the member's own text)."""
    parts = [f"#{f['id']} {f['kind']}", _quoted(f["label"])]
    if f["default"]:
        parts.append("default")
    if f["recipient_hint"]:
        parts.append(f"to {f['recipient_hint']}")
    parts.append(f"added {f['created_at']}")
    parts.append(f"last used {f['last_used_at'] or 'never'}")
    if f["needs_reconfirming"]:
        parts.append("NEEDS RE-CONFIRMING")
    elif f["usable"] is False:
        parts.append(f"not usable: {f['reason']}")
    return "  ".join(parts)


@members.command("disable")
@click.argument("member_id", metavar="ID")
@click.option("--force", is_flag=True, help="disable even when the policy requires a second factor")
@actor_option
@_strict_option
@click.pass_context
def members_disable(ctx: click.Context, member_id: str, force: bool, actor: str | None, strict: bool) -> None:
    """Switch the member's second factor off (every factor, backup codes and trusted devices removed)."""
    from ..errors import PolicyError

    otp = load_otp(ctx)
    member, known = _member_arg(otp, member_id, strict)
    if not known and not force:
        raise CliError("cannot check the member's policy without their roles (set member_lookup in the "
                       "settings); pass --force to disable anyway")
    try:
        otp.disable(member, actor=actor or os_user(), force=force)
    except PolicyError as exc:
        raise CliError(f"{exc}; pass --force to disable it anyway") from None
    click.echo(f"disabled two-factor authentication for {member.id}")


@members.command("reset")
@click.argument("member_id", metavar="ID")
@actor_option
@_strict_option
@click.pass_context
def members_reset(ctx: click.Context, member_id: str, actor: str | None, strict: bool) -> None:
    """Force the member to set up again: every factor, backup codes, trusted devices and lockout cleared."""
    otp = load_otp(ctx)
    member, known = _member_arg(otp, member_id, strict)
    otp.reset(member, actor=actor or os_user())
    click.echo(f"reset {member.id}: every factor, backup codes and trusted devices removed; they will set up again")
    if not known:
        # The notifications plugin audits the unsent notice; the operator hears it here, where they can act.
        click.echo(f"warning: {member.id!r} cannot be told of the reset: their address is unknown (set "
                   "member_lookup in the settings)", err=True)


@members.command("unlock")
@click.argument("member_id", metavar="ID")
@actor_option
@_strict_option
@click.pass_context
def members_unlock(ctx: click.Context, member_id: str, actor: str | None, strict: bool) -> None:
    """Lift a lockout (including the hard lock after 100 consecutive failures)."""
    otp = load_otp(ctx)
    member, _ = _member_arg(otp, member_id, strict)
    otp.unlock(member, actor=actor or os_user())
    click.echo(f"unlocked {member.id}")


class _FactorId(click.ParamType):
    """A factor's id as ``members show`` lists it (``#3`` is accepted too); anything else is a usage error."""

    name = "factor_id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().removeprefix("#")
        # ASCII digits only (int() would take "٤٢" and "4_2"), and short enough for any database's integer.
        if not (text.isascii() and text.isdigit() and 0 < len(text) < 19 and int(text) > 0):
            self.fail(f"{str(value)[:40]!r} is not a factor id (the number `otp-pro members show` lists)", param, ctx)
        return int(text)


_factor_id_argument = click.argument("factor_id", metavar="FACTOR_ID", type=_FactorId())


def _owned_factor(otp: Any, member: Any, factor_id: int) -> Any:
    """The member's factor ``factor_id`` (its :class:`FactorInfo`); "no such factor" (exit code 1) otherwise."""
    found = next((f for f in otp.factors(member) if f.id == factor_id), None)
    if found is None:
        raise CliError(f"member {member.id!r} has no factor #{factor_id} (`otp-pro members show {member.id}` "
                       "lists their factors)", exit_code=1)
    return found


@members.command("remove-factor")
@click.argument("member_id", metavar="ID")
@_factor_id_argument
@click.option("--force", is_flag=True, help="remove it even when it is the last factor a required member's role "
                                            "allows")
@actor_option
@_strict_option
@click.pass_context
def members_remove_factor(ctx: click.Context, member_id: str, factor_id: int, force: bool, actor: str | None,
                          strict: bool) -> None:
    """Remove one of the member's factors (its unused codes stop working; trusted devices are revoked)."""
    from ..errors import PolicyError, UnknownFactor

    otp = load_otp(ctx)
    member, known = _member_arg(otp, member_id, strict)
    factor = _owned_factor(otp, member, factor_id)
    if not known and not force:
        raise CliError("cannot check the member's policy without their roles (set member_lookup in the "
                       "settings); pass --force to remove the factor anyway")
    try:
        otp.remove_factor(member, factor.id, actor=actor or os_user(), force=force)
    except PolicyError as exc:
        raise CliError(f"{exc}; pass --force to remove it anyway") from None
    except UnknownFactor:  # removed by someone else since it was looked up
        raise CliError(f"member {member.id!r} has no factor #{factor_id} (any more)", exit_code=1) from None
    left = len(otp.factors(member))
    click.echo(f"removed factor #{factor.id} ({factor.kind}) of {member.id}; "
               + (f"{left} factor(s) left" if left else "no factor left: they are no longer enrolled"))
    if not known:
        click.echo(f"warning: {member.id!r} cannot be told of the change: their address is unknown (set "
                   "member_lookup in the settings)", err=True)


@members.command("rename-factor")
@click.argument("member_id", metavar="ID")
@_factor_id_argument
@click.argument("label")
@actor_option
@_strict_option
@click.pass_context
def members_rename_factor(ctx: click.Context, member_id: str, factor_id: int, label: str, actor: str | None,
                          strict: bool) -> None:
    """Give one of the member's factors a LABEL ("" gives it back the channel's own label)."""
    from ..errors import InvalidFactorLabel, UnknownFactor

    otp = load_otp(ctx)
    member, _ = _member_arg(otp, member_id, strict)
    factor = _owned_factor(otp, member, factor_id)
    try:
        otp.rename_factor(member, factor.id, label, actor=actor or os_user())
    except InvalidFactorLabel as exc:
        raise CliError(f"bad label: {exc}") from None
    except UnknownFactor:
        raise CliError(f"member {member.id!r} has no factor #{factor_id} (any more)", exit_code=1) from None
    renamed = _owned_factor(otp, member, factor.id)
    click.echo(f"factor #{factor.id} ({factor.kind}) of {member.id} is now labelled "
               f"{_quoted(renamed.label)}")


@members.command("default-factor")
@click.argument("member_id", metavar="ID")
@_factor_id_argument
@actor_option
@_strict_option
@click.pass_context
def members_default_factor(ctx: click.Context, member_id: str, factor_id: int, actor: str | None,
                           strict: bool) -> None:
    """Make one of the member's factors their default (offered first, sent to when no channel is named)."""
    from ..errors import UnknownFactor

    otp = load_otp(ctx)
    member, _ = _member_arg(otp, member_id, strict)
    factor = _owned_factor(otp, member, factor_id)
    try:
        otp.set_default_factor(member, factor.id, actor=actor or os_user())
    except UnknownFactor:
        raise CliError(f"member {member.id!r} has no factor #{factor_id} (any more)", exit_code=1) from None
    click.echo(f"factor #{factor.id} ({factor.kind}) is now the default of {member.id}")
