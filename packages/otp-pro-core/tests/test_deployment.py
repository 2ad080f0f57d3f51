"""Several processes on one PostgreSQL database (docs/deployment.md): forks, pools, schema checks."""

from __future__ import annotations

import os

import pytest
from core_support import base_settings
from sqlalchemy import text

from otp_pro import OtpPro
from otp_pro.testing import PG_SKIP_REASON


@pytest.fixture
def pg(pg_url):
    if pg_url is None:
        pytest.skip(PG_SKIP_REASON)
    return pg_url


def test_a_forked_child_gets_its_own_connections_and_the_parent_keeps_its_own(pg, make_member):
    """A pre-fork server (Celery prefork, gunicorn --preload) builds OtpPro, then forks."""
    otp = OtpPro(base_settings(pg, database_pool_size=1, database_max_overflow=0))
    try:
        with otp.db.engine.connect() as conn:
            parent_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the child; its result comes back through the pipe
            code = 1
            try:
                with otp.db.engine.connect() as conn:
                    pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
                otp.status(make_member("forked"))
                os.write(write, str(pid).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        _, status = os.waitpid(child, 0)
        child_pid = int(os.read(read, 64).decode() or 0)
        os.close(read)
        assert os.waitstatus_to_exitcode(status) == 0
        assert child_pid and child_pid != parent_pid
        # The parent's pooled connection was neither closed nor used by the child.
        with otp.db.engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == parent_pid
    finally:
        otp.close()
