"""``otp-pro members``: support actions on one member (show, disable, reset, unlock)."""

from __future__ import annotations

import json
from typing import Any

import click

from .common import CliError, actor_option, event_dict, event_line, iso, load_otp, os_user

#: ``--strict``: refuse an id that no member_lookup plugin knows instead of assuming no roles.
_strict_option = click.option("--strict", is_flag=True,
                              help="fail when no member_lookup plugin knows the id (default: warn, assume no roles)")


def _member_arg(otp: Any, member_id: str, strict: bool) -> tuple[Any, bool]:
    """The member from the ``member_lookup`` hook, else a bare ``Member(id)`` (with a warning) unless ``strict``.

    Returns ``(member, roles_known)``.
    """
    from ..errors import UnknownMember
    from ..member import InvalidMember, Member

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
        "grace_ends_at": iso(status.grace_ends_at),
        "must_setup": status.must_setup,
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
    member, roles_known = _member_arg(otp, member_id, strict)
    if not roles_known and not force:
        raise CliError("cannot check the member's policy without their roles; pass --force to disable anyway")
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
    member, _ = _member_arg(otp, member_id, strict)
    otp.reset(member, actor=actor or os_user())
    click.echo(f"reset {member.id}: factor, backup codes and trusted devices removed; they will set up again")


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
