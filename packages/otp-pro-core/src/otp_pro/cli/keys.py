"""``otp-pro keys``: re-encrypt the stored secrets after a rotation of the secret key."""

from __future__ import annotations

import click

from .common import CliError, actor_option, load_otp, load_settings, os_user


@click.group()
def keys() -> None:
    """Secret keys: re-encrypt the stored secrets after a key rotation."""


@keys.command("rotate")
@actor_option
@click.pass_context
def keys_rotate(ctx: click.Context, actor: str | None) -> None:
    """Re-encrypt every stored secret with the current secret_key.

    The secrets are the factors' authenticator seeds and confirmed addresses (whose
    keyed hashes are made again too) and the seeds of setups in progress.

    First set the new secret_key and move the old one to previous_secret_keys.
    Keep the old key listed until the trusted devices and backup codes made
    before the rotation have expired or been replaced: they are keyed hashes,
    which cannot be re-computed without the member's token or code.
    """
    from sqlalchemy import func, select

    from ..storage.schema import members, trusted_devices

    settings = load_settings(ctx)
    if not settings.previous_secret_keys:
        raise CliError("previous_secret_keys is empty: set the new secret_key and list the old key in "
                       "previous_secret_keys, then run this again")
    otp = load_otp(ctx)
    count = otp.rotate_keys(actor=actor or os_user())
    current = otp.keys.key_ids[0]
    with otp.db.read() as conn:
        old_backup = conn.execute(select(func.count()).select_from(members).where(
            members.c.backup_key_id.is_not(None), members.c.backup_key_id != current)).scalar_one()
        last_device = conn.execute(select(func.max(trusted_devices.c.expires_at)).where(
            trusted_devices.c.revoked_at.is_(None), trusted_devices.c.expires_at > otp.clock())).scalar_one()
    click.echo(f"re-encrypted {count} stored secret{'s' if count != 1 else ''} (authenticator seeds, confirmed "
               "addresses, setups in progress) with the current secret_key")
    if old_backup or last_device is not None:
        until = f"; live trusted devices last until {last_device:%Y-%m-%d}" if last_device is not None else ""
        click.echo(f"keep the old key in previous_secret_keys: {old_backup} member(s) have backup codes made with "
                   f"it{until} (they stop working once it is removed)")
    else:
        click.echo("no trusted device or backup code needs the old key: it can be removed from previous_secret_keys")
