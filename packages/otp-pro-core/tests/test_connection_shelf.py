"""SQLite keeps a few connections open between operations (otp_pro.storage.shelf): what it keeps and what not."""

from __future__ import annotations

import os

import pytest
from core_support import base_settings, burst
from sqlalchemy import text

from otp_pro import OtpPro
from otp_pro.storage import shelf
from otp_pro.storage.schema import members


@pytest.fixture
def otp(sqlite_url):
    instance = OtpPro(base_settings(sqlite_url))
    yield instance
    instance.close()


def driver_connection_of_a_write(otp: OtpPro) -> object:
    with otp.db.write() as conn:
        return conn.connection.dbapi_connection


def add_member(otp: OtpPro, member_id: str) -> None:
    now = otp.clock()
    with otp.db.write() as conn:
        conn.execute(members.insert().values(member_id=member_id, failures=0, consecutive_failures=0,
                                             created_at=now, updated_at=now))


def member_count(otp: OtpPro) -> int:
    with otp.db.read() as conn:
        return int(conn.execute(text("SELECT count(*) FROM otp_members")).scalar_one())


def test_operations_one_after_another_reuse_one_kept_connection(otp):
    first = driver_connection_of_a_write(otp)
    assert driver_connection_of_a_write(otp) is first
    assert otp.db.connections_kept >= 1
    assert otp.db.engine.pool.checkedin() == 0  # kept, not pooled


def test_a_block_that_raised_gives_its_connection_back_to_the_pool_and_writes_nothing(otp):
    kept = driver_connection_of_a_write(otp)
    with pytest.raises(RuntimeError), otp.db.write() as conn:
        assert conn.connection.dbapi_connection is kept
        now = otp.clock()
        conn.execute(members.insert().values(member_id="half", failures=0, consecutive_failures=0,
                                             created_at=now, updated_at=now))
        raise RuntimeError("the rest failed")
    assert otp.db.engine.pool.checkedin() == 1  # closed into the pool, not kept
    assert member_count(otp) == 0
    add_member(otp, "whole")
    assert member_count(otp) == 1


def test_changed_execution_options_are_not_passed_on_to_the_next_borrower(otp):
    with otp.db.read() as conn:
        conn.execution_options(yield_per=7)  # in place, as an export does
    with otp.db.read() as conn:
        assert "yield_per" not in conn.get_execution_options()


def test_a_read_once_block_left_in_a_transaction_is_not_kept(otp):
    with otp.db.read_once() as conn:
        conn.execute(text("SELECT 1"))  # Connection.execute autobegins
        assert conn.in_transaction()
    with otp.db.read_once() as conn:
        assert not conn.in_transaction()
    add_member(otp, "after")  # the write lock is free: nothing was left open
    assert member_count(otp) == 1


def test_at_most_a_few_idle_connections_are_kept_after_many_threads(otp):
    def work(instance: OtpPro, n: int) -> int:
        for i in range(10):
            add_member(instance, f"t{n}-{i}")
            member_count(instance)
        return n

    assert burst([otp], work, threads=12) == list(range(12))  # an exception would stand in its place
    assert member_count(otp) == 120
    assert otp.db.connections_kept <= 3 * shelf.KEPT_PER_WAY


def test_close_closes_the_kept_connections(sqlite_url):
    otp = OtpPro(base_settings(sqlite_url))
    add_member(otp, "a")
    member_count(otp)
    assert otp.db.connections_kept >= 2
    otp.close()
    assert otp.db.connections_kept == 0


def test_a_forked_child_opens_its_own_connections_and_the_parent_keeps_its_own(otp):
    add_member(otp, "parent")
    kept = driver_connection_of_a_write(otp)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child; its result comes back through the pipe
        code = 1
        try:
            mine = driver_connection_of_a_write(otp)
            add_member(otp, "child")
            os.write(write, b"new" if mine is not kept else b"inherited")
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(child, 0)
    answer = os.read(read, 64)
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0
    assert answer == b"new"
    assert driver_connection_of_a_write(otp) is kept  # neither closed nor used by the child
    add_member(otp, "parent-again")
    assert member_count(otp) == 3
