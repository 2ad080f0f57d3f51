"""``otp-pro db``: apply the shipped migrations and show where the database stands."""

from __future__ import annotations

import click

from .common import CliError, load_settings, sqlite_file


@click.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Apply the shipped migrations."""
    from ..storage import migrate
    from ..storage.db import Database

    database = Database(load_settings(ctx).database_url)
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
    from ..storage import migrate
    from ..storage.db import Database

    url = load_settings(ctx).database_url
    database = Database(url)
    head = migrate.head_revision()
    path = sqlite_file(url)
    if path is not None and not path.exists():  # connecting would create it: only `db upgrade` and `init` do
        database.dispose()
        click.echo(f"current: empty (no file at {path} yet)  head: {head}  (run `otp-pro db upgrade`)")
        return
    current = migrate.current_revision(database.engine)
    database.dispose()
    state = "up to date" if current == head else "run `otp-pro db upgrade`"
    click.echo(f"current: {current or 'empty'}  head: {head}  ({state})")
