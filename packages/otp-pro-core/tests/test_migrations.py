"""Alembic migrations: shipped, applied automatically to a new SQLite file, explicitly
elsewhere, and match the models."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from core_support import base_settings
from sqlalchemy import create_engine, inspect

from otp_pro import ConfigurationError, OtpPro
from otp_pro.storage import migrate
from otp_pro.storage.schema import metadata
from otp_pro.testing import PG_ENV, temporary_pg_database


def test_new_sqlite_file_is_migrated_and_in_wal_mode(tmp_path):
    otp = OtpPro(base_settings(f"sqlite:///{tmp_path}/new.sqlite3"))
    assert migrate.current_revision(otp.db.engine) == migrate.head_revision()
    with otp.db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000
    otp.close()


def test_models_match_the_migrations(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/m.sqlite3")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": migrate.VERSION_TABLE})
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_postgresql_needs_an_explicit_upgrade(pg_url):
    if pg_url is None:
        pytest.skip(f"PostgreSQL tests skipped: set {PG_ENV} (CI sets it) to run them")
    with temporary_pg_database(pg_url, "otp_pro_mig") as url:
        with pytest.raises(ConfigurationError, match="otp-pro db upgrade"):
            OtpPro(base_settings(url))
        engine = create_engine(url)
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
        assert {"otp_members", "otp_challenges", "otp_audit_events"} <= set(inspect(engine).get_table_names())
        engine.dispose()
        OtpPro(base_settings(url)).close()


def test_bad_database_urls_are_configuration_errors(tmp_path):
    with pytest.raises(ConfigurationError, match="database_url"):
        OtpPro(base_settings("not a url"))
    with pytest.raises(ConfigurationError, match="does not exist"):
        OtpPro(base_settings(f"sqlite:///{tmp_path}/missing/dir/x.sqlite3"))
    with pytest.raises(ConfigurationError, match="driver"):
        OtpPro(base_settings("postgresql+nosuchdriver://h/db"))
    for url in ("mssql+pyodbc://h/db", "mysql+pymysql://root@127.0.0.1/test"):
        with pytest.raises(ConfigurationError, match="SQLite or PostgreSQL"):
            OtpPro(base_settings(url))
    with pytest.raises(ConfigurationError, match="cannot connect"):
        OtpPro(base_settings("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2"))


def _first_revision() -> str:
    revisions = {migrate.revision_ids(path) for path in migrate.VERSIONS.glob("*.py")}
    return next(revision for revision, down in revisions if revision and not down)


def test_an_instance_refuses_a_shared_database_behind_its_code_and_accepts_one_ahead(pg_url):
    """Rolling deploys (docs/deployment.md): instances never migrate PostgreSQL; one behind is refused."""
    if pg_url is None:
        pytest.skip(f"PostgreSQL tests skipped: set {PG_ENV} (CI sets it) to run them")
    first = _first_revision()
    assert first != migrate.head_revision(), "needs at least two shipped migrations"
    with temporary_pg_database(pg_url, "otp_pro_mig") as url:
        engine = create_engine(url)
        migrate.upgrade(engine, first)
        with pytest.raises(ConfigurationError, match=f"at revision {first}.*otp-pro db upgrade"):
            OtpPro(base_settings(url))
        migrate.upgrade(engine)
        OtpPro(base_settings(url)).close()
        # A revision this code does not know: a newer release migrated it. Migrations only add,
        # so this instance keeps serving during the rollout.
        with engine.begin() as conn:
            conn.exec_driver_sql(f"UPDATE {migrate.VERSION_TABLE} SET version_num = 'ffffffffffff'")
        OtpPro(base_settings(url)).close()
        engine.dispose()


def test_postgresql_pool_is_sized_by_the_settings(pg_url):
    if pg_url is None:
        pytest.skip(f"PostgreSQL tests skipped: set {PG_ENV} (CI sets it) to run them")
    otp = OtpPro({**base_settings(pg_url), "database_pool_size": 3, "database_max_overflow": 1})
    try:
        assert otp.db.engine.pool.size() == 3
        assert otp.db.engine.pool._max_overflow == 1  # type: ignore[attr-defined]
    finally:
        otp.close()
    with pytest.raises(ConfigurationError, match="database_pool_size"):
        OtpPro({**base_settings(pg_url), "database_pool_size": 0})


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
@pytest.mark.parametrize("before_rev, after_rev", [("0005", "0006"), ("0006", "0007")])
def test_a_migration_only_adds_so_the_release_before_keeps_running(database, before_rev, after_rev, tmp_path,
                                                                    pg_url):
    """docs/deployment.md: 0006 and 0007 remove nothing and tighten nothing, so instances of the release before
    (which only know the schema before) keep running beside them during a rolling deploy."""
    if database == "postgresql" and pg_url is None:
        pytest.skip(f"PostgreSQL tests skipped: set {PG_ENV} (CI sets it) to run them")

    def columns(engine) -> dict[tuple[str, str], tuple[str, bool]]:
        found = inspect(engine)
        return {(table, c["name"]): (str(c["type"]), bool(c["nullable"]))
                for table in found.get_table_names() if table.startswith("otp_")
                for c in found.get_columns(table)}

    def audit_indexes(engine) -> set[str]:
        return {index["name"] for index in inspect(engine).get_indexes("otp_audit_events")}

    def check(url: str) -> None:
        engine = create_engine(url)
        try:
            migrate.upgrade(engine, before_rev)
            before = columns(engine)
            migrate.upgrade(engine, after_rev)
            after = columns(engine)
            indexes = audit_indexes(engine)
            if after_rev == "0007":  # and back: the index goes, nothing else changes
                cfg = migrate.alembic_config()
                with engine.connect() as conn:
                    cfg.attributes["connection"] = conn
                    command.downgrade(cfg, before_rev)
                    conn.commit()
                assert columns(engine) == before and "ix_otp_audit_events_ip_id" not in audit_indexes(engine)
        finally:
            engine.dispose()
        assert before.keys() <= after.keys(), f"{after_rev} removed {sorted(before.keys() - after.keys())}"
        for name, (kind, nullable) in before.items():
            assert after[name][0] == kind, f"{after_rev} changed the type of {name}"
            assert after[name][1] or not nullable, f"{after_rev} made {name} NOT NULL"
        if after_rev == "0006":
            assert after[("otp_challenges", "member_id")][1], "a first factor's challenge has no member"
        else:
            assert "ix_otp_audit_events_ip_id" in indexes, "the console's IP filter has its index"

    if database == "sqlite":
        check(f"sqlite:///{tmp_path}/rolling.sqlite3")
    else:
        with temporary_pg_database(pg_url, "otp_pro_mig6") as url:
            check(url)
