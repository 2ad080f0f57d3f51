"""Databases for tests: a fresh SQLite file, or a PostgreSQL database made for the run and emptied between tests.

PostgreSQL tests run only when ``OTP_PRO_TEST_POSTGRES_URL`` names a server on
which the test user may create databases; without it they are skipped, saying why.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

#: The environment variable naming the PostgreSQL server (``postgresql+psycopg://user@host:port/db``).
PG_ENV = "OTP_PRO_TEST_POSTGRES_URL"
#: Why a PostgreSQL test is skipped when :data:`PG_ENV` is not set.
PG_SKIP_REASON = f"PostgreSQL tests skipped: set {PG_ENV} (CI sets it) to run them"


@contextmanager
def temporary_pg_database(base_url: str, prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database beside ``base_url``'s, dropped afterwards; yields its URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"
            ), {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def truncate_all(url: str) -> None:
    """Empty every otp-pro table (between PostgreSQL tests that share the run's database)."""
    from sqlalchemy import create_engine, text

    from ..storage.schema import metadata

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(t.name for t in metadata.sorted_tables)} RESTART IDENTITY"))
    engine.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str | None]:
    """A migrated PostgreSQL database for the run, or None without ``OTP_PRO_TEST_POSTGRES_URL``."""
    from sqlalchemy import create_engine

    from ..storage import migrate

    base = os.environ.get(PG_ENV)
    if not base:
        yield None
        return
    with temporary_pg_database(base, "otp_pro_test") as url:
        engine = create_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, pg_url: str | None) -> str:
    """A database URL, once per database: a fresh SQLite file, then the run's PostgreSQL database emptied.

    The PostgreSQL variant is skipped, with :data:`PG_SKIP_REASON`, when ``OTP_PRO_TEST_POSTGRES_URL`` is not set.
    """
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/otp.sqlite3"
    if pg_url is None:
        pytest.skip(PG_SKIP_REASON)
    truncate_all(pg_url)
    return pg_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file for this test."""
    return f"sqlite:///{tmp_path}/otp.sqlite3"
