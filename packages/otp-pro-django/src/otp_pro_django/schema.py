"""otp-pro's tables under ``manage.py migrate``: the core's Alembic migrations, run for Django's database.

Django's migration ``0001_otp_pro_schema`` applies every core migration (forwards)
and removes every otp-pro table (backwards, ``migrate otp_pro_django zero``).
A later otp-pro-core ships more Alembic revisions while Django's migration stays
applied, so every ``migrate`` also brings the tables to the core's newest
revision (the ``post_migrate`` receiver in :mod:`.apps`). Each runs on a
SQLAlchemy engine of its own, opened for the URL of the database being migrated
and disposed of afterwards.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, inspect, text

from otp_pro.storage import migrate

from . import conf
from .database import url_for_database


def url_of(connection: Any) -> str:
    """The URL of the database a Django connection is on (``OTP_PRO["database_url"]`` wins when set).

    Read from the connection's own settings, which name the test database during ``manage.py test``.
    """
    explicit = conf.raw_settings().get("database_url")
    if explicit is not None:
        return str(explicit)
    return url_for_database(connection.alias, connection.settings_dict)


def is_otp_database(connection: Any) -> bool:
    """Whether ``connection`` is the database otp-pro's tables belong to (``OTP_PRO_DATABASE_ALIAS``)."""
    return bool(connection.alias == conf.database_alias())


def upgrade(url: str) -> tuple[str | None, str | None]:
    """Apply the core's migrations to ``url``; ``(revision before, revision after)``."""
    engine = create_engine(url)
    try:
        before = migrate.current_revision(engine)
        migrate.upgrade(engine)
        return before, migrate.current_revision(engine)
    finally:
        engine.dispose()


def upgrade_if_behind(url: str) -> str | None:
    """Bring existing otp-pro tables to the newest revision; the revision it was at, or None when nothing ran.

    Tables that are not there are left alone: they come with Django's migration, or were removed on purpose.
    """
    engine = create_engine(url)
    try:
        if not inspect(engine).has_table(migrate.VERSION_TABLE):
            return None
        current = migrate.current_revision(engine)
        if current == migrate.head_revision() or current not in migrate.known_revisions():
            return None
        migrate.upgrade(engine)
        return current
    finally:
        engine.dispose()


def remove(url: str) -> None:
    """Undo every core migration and drop Alembic's version table: no otp-pro table is left."""
    from alembic import command

    engine = create_engine(url)
    try:
        if inspect(engine).has_table(migrate.VERSION_TABLE):
            cfg = migrate.alembic_config()
            with engine.connect() as conn:
                cfg.attributes["connection"] = conn
                command.downgrade(cfg, "base")
                conn.commit()
            with engine.begin() as conn:
                conn.execute(text(f"DROP TABLE {migrate.VERSION_TABLE}"))
    finally:
        engine.dispose()
