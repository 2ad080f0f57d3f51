"""Alembic environment: runs on the connection otp-pro hands in (``config.attributes["connection"]``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from otp_pro.storage.schema import metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        url = config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("otp-pro migrations need a connection or sqlalchemy.url")
        with create_engine(url).connect() as conn:
            _run(conn)
            conn.commit()
    else:
        _run(connection)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        version_table="otp_pro_alembic_version",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():  # pragma: no cover - offline SQL generation is not offered
    raise RuntimeError("otp-pro migrations run online only")
run()
