"""``otp-pro members``: support actions on one member (show, disable, reset, unlock)."""

from __future__ import annotations

import json
from typing import Any

import click

from .common import CliError, actor_option, event_dict, event_line, iso, load_otp, os_user

#: ``--strict``: refuse an id that no member lookup knows instead of going on without roles and addresses.
_strict_option = click.option("--strict", is_flag=True,
                              help="fail when no member lookup knows the id (default: warn; roles and "
                                   "addresses unknown)")

#: What the operator is told when no member lookup is set up at all.
NO_LOOKUP = ("no member lookup is set up (set member_lookup = \"package.module:function\" in the settings, "
             "or install an otp_pro_member_lookup plugin)")


def _member_arg(otp: Any, member_id: str, strict: bool, *, warn: bool = True) -> tuple[Any, bool]:
    """The member from the member lookup, else a bare ``Member(id)`` (with a warning) unless ``strict``.

    Returns ``(member, known)``: without ``known`` the member's roles and addresses are unknown, so
    the policy cannot be judged and nothing can be sent to them; callers say so instead of guessing.
    ``warn=False`` leaves the warning (:func:`_unknown_warning`) to the caller.
    """
    from ..errors import PluginError, UnknownMember
    from ..member import InvalidMember, Member

    try:
        bare = Member(member_id)
    except InvalidMember as exc:
        raise CliError(f"bad member id {member_id[:40]!r}: {exc}") from None
    if not otp.has_member_lookup:
        if strict:
            raise CliError(f"{NO_LOOKUP} (--strict)")
        if warn:
            _unknown_warning(otp, bare.id)
        return bare, False
    try:
        return otp.member(bare.id), True
    except PluginError as exc:
        raise CliError(str(exc)) from None
    except UnknownMember:
        if strict:
            raise CliError(f"the member lookup does not know member {bare.id!r} (--strict)") from None
    if warn:
        _unknown_warning(otp, bare.id)
    return bare, False


def _unknown_warning(otp: Any, member_id: str) -> None:
    why = NO_LOOKUP if not otp.has_member_lookup else "the member lookup does not know the id"
    click.echo(f"warning: {why}: roles and addresses of {member_id!r} unknown", err=True)


@click.group()
def members() -> None:
    """Support actions on one member: show, disable, reset, unlock."""


@members.command("show")
@click.argument("member_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@_strict_option
@click.pass_context
def members_show(ctx: click.Context, member_id: str, as_json: bool, strict: bool) -> None:
    """Requirement, enrolled channel, backup codes left, trusted devices, lockout and the last 20 events."""
    otp = load_otp(ctx)
    member, known = _member_arg(otp, member_id, strict, warn=False)
    status = otp.status(member, start_grace=False)  # looking must not start a grace period
    if not known:
        if not status.seen:
            # Nobody knows the id and otp-pro holds nothing for it: a typo, not a member who is "not enrolled".
            raise CliError(f"no such member {member.id!r}: no member lookup knows the id and otp-pro holds no "
                           "state for it", exit_code=1)
        _unknown_warning(otp, member.id)
    devices = otp.trusted_devices(member)
    events = otp.events(member, limit=20)
    # Without the member's roles the policy's answer (requirement, grace, channels) would be the site
    # default dressed up as fact, and without the addresses every delivered channel would look unavailable:
    # those fields are null and the table says they are unknown.
    data = {
        "member": {"id": member.id, "roles": list(member.roles) if known else None, "roles_known": known,
                   "email": member.email, "name": member.name},
        "requirement": status.requirement if known else None,
        "enrolled": status.enrolled,
        "channel": status.channel,
        "disabled": status.disabled,
        "channels": list(status.channels) if known else None,
        "unavailable": dict(status.unavailable) if known else None,
        "in_grace": status.in_grace if known else None,
        "grace_ends_at": iso(status.grace_ends_at) if known else None,
        "must_setup": status.must_setup if known else None,
        "locked_until": iso(status.locked_until),
        "backup_codes_remaining": status.backup_codes_remaining,
        "trusted_devices": [
            {"id": d.id, "label": d.label, "created_at": iso(d.created_at), "expires_at": iso(d.expires_at),
             "last_used_at": iso(d.last_used_at)} for d in devices
        ],
        "events": [event_dict(e) for e in events],
    }
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    roles = (", ".join(member.roles) or "-") if known else "unknown"
    click.echo(f"member        {member.id}  ({member.display_name}; roles: {roles})")
    if known:
        grace = f", grace until {data['grace_ends_at']}" if status.in_grace else ""
        click.echo(f"requirement   {status.requirement}{grace}{'  MUST SET UP' if status.must_setup else ''}")
    else:
        click.echo("requirement   unknown (roles and addresses unknown: set member_lookup in the settings)")
    enrolled = status.channel if status.enrolled else ("disabled" if status.disabled else "not enrolled")
    click.echo(f"enrolled      {enrolled}")
    click.echo(f"backup codes  {status.backup_codes_remaining} left")
    click.echo(f"lockout       {'locked until ' + str(data['locked_until']) if status.locked_until else 'none'}")
    click.echo(f"devices       {len(devices)} trusted")
    for d in data["trusted_devices"]:
        click.echo(f"  #{d['id']} {d['label']}  until {d['expires_at']}  last used {d['last_used_at'] or 'never'}")
    click.echo(f"events        last {len(events)}")
    for e in events:
        click.echo("  " + event_line(e))


@members.command("disable")
@click.argument("member_id", metavar="ID")
@click.option("--force", is_flag=True, help="disable even when the policy requires a second factor")
@actor_option
@_strict_option
@click.pass_context
def members_disable(ctx: click.Context, member_id: str, force: bool, actor: str | None, strict: bool) -> None:
    """Switch the member's second factor off (factor, backup codes and trusted devices removed)."""
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
    """Force the member to set up again: factor, backup codes, trusted devices and lockout cleared."""
    otp = load_otp(ctx)
    member, known = _member_arg(otp, member_id, strict)
    otp.reset(member, actor=actor or os_user())
    click.echo(f"reset {member.id}: factor, backup codes and trusted devices removed; they will set up again")
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
