"""Applying the shipped Alembic migrations.

Alembic is imported only to apply migrations: knowing the newest shipped
revision and the database's revision (what every start-up asks) needs neither
Alembic nor its script directory, which keeps ``import otp_pro`` and the CLI's
start quick.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

VERSION_TABLE = "otp_pro_alembic_version"
VERSIONS = Path(__file__).resolve().parent.parent / "migrations" / "versions"


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "otp_pro:migrations")
    return cfg


def revision_ids(path: Path) -> tuple[Any, Any]:
    """``revision`` and ``down_revision`` of one migration file, read without importing it."""
    found: dict[str, Any] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ("revision", "down_revision"):
                found[node.targets[0].id] = ast.literal_eval(node.value)
    return found.get("revision"), found.get("down_revision")


@functools.lru_cache(maxsize=1)
def known_revisions() -> frozenset[str]:
    """Every migration shipped with this version of otp-pro-core."""
    return frozenset(_graph()[0])


def _graph() -> tuple[set[str], set[str]]:
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in VERSIONS.glob("*.py"):
        revision, down = revision_ids(path)
        if revision is None:
            continue
        revisions.add(revision)
        revised.update(down if isinstance(down, (tuple, list)) else [down] if down else [])
    return revisions, revised


@functools.lru_cache(maxsize=1)
def head_revision() -> str:
    """The newest migration shipped with this version of otp-pro-core (the one no other revises)."""
    revisions, revised = _graph()
    heads = revisions - revised
    assert len(heads) == 1, f"otp-pro migrations must have one head, found {sorted(heads)}"
    return heads.pop()


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, or None for an empty database."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(rows) > 1:  # several heads: only Alembic can say which
        from alembic.runtime.migration import MigrationContext

        with engine.connect() as conn:
            return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()
    return rows[0] if rows else None


def schema_problem(engine: Engine, where: str = "the database") -> str | None:
    """Why the database's schema cannot serve this otp-pro-core without a migration, or None.

    No otp-pro tables, or a revision this release ships that is behind its newest, are problems;
    a revision this release does not know (a newer release migrated the database) is not: a
    migration that only adds leaves older code working on a newer schema. One that does not
    (0005 drops the one-channel columns) says so in docs/deployment.md: its older instances
    are stopped before it runs.
    """
    if not inspect(engine).has_table("otp_members"):
        return f"{where} has no otp-pro tables yet: run `otp-pro db upgrade`"
    current = current_revision(engine)
    if current != head_revision() and current in known_revisions():
        return (f"the database schema is at revision {current}, this otp-pro-core needs "
                f"{head_revision()}: run `otp-pro db upgrade`")
    return None


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    from alembic import command

    cfg = alembic_config()
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.commit()
