"""The hot statements run on the driver's cursor (``Database.run``, otp_pro.storage.fast) behave as
``Connection.execute`` would: same rows and types, same transaction, same events, typed errors.

Each test runs on SQLite and, with ``OTP_PRO_TEST_POSTGRES_URL``, on PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import bindparam, event, func, insert, select

from otp_pro import Member, audit
from otp_pro.audit import AuditEvent
from otp_pro.errors import StorageError
from otp_pro.storage.schema import audit_events, factors, members
from otp_pro.storage.statements import SENDS, STATE

WHEN = datetime(2026, 11, 24, 9, 30, 15, 123456, tzinfo=timezone.utc)
_INSERT_MEMBER = insert(members).values(
    member_id=bindparam("m_id"), enrolled_at=bindparam("m_at", type_=members.c.enrolled_at.type),
    locked_until=bindparam("m_locked", type_=members.c.locked_until.type),
    failures=0, consecutive_failures=0, created_at=bindparam("m_at2", type_=members.c.created_at.type),
    updated_at=bindparam("m_at3", type_=members.c.updated_at.type),
)
_INSERT_FACTOR = insert(factors).values(
    member_id=bindparam("f_member"), kind=bindparam("f_kind"), is_default=True, last_step=bindparam("f_step"),
    created_at=bindparam("f_at", type_=factors.c.created_at.type),
)


def add_member(otp: Any, conn: Any, member_id: str, **extra: Any) -> None:
    """A member's row, and a factor (an app whose step is ``step``) when ``step`` is given."""
    otp.db.run(conn, _INSERT_MEMBER, {"m_id": member_id, "m_at": WHEN, "m_at2": WHEN, "m_at3": WHEN,
                                      "m_locked": extra.get("locked")})
    if "step" in extra:
        otp.db.run(conn, _INSERT_FACTOR, {"f_member": member_id, "f_kind": "totp", "f_step": extra["step"],
                                          "f_at": WHEN})


def count_audit(otp: Any) -> int:
    with otp.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(audit_events)).scalar_one())


def test_rows_match_sqlalchemys_with_aware_datetimes(otp):
    with otp.db.write() as conn:
        add_member(otp, conn, "ann", locked=WHEN + timedelta(minutes=5), step=2**40)
    with otp.db.read() as conn:
        fast = otp.db.run(conn, STATE, {"b_member": "ann"}).first()
        slow = conn.execute(STATE, {"b_member": "ann"}).first()
        assert otp.db.run(conn, STATE, {"b_member": "nobody"}).first() is None
    assert tuple(fast) == tuple(slow)
    assert fast.enrolled_at == WHEN and fast.enrolled_at.tzinfo is timezone.utc
    assert fast.locked_until == WHEN + timedelta(minutes=5)
    # The member's factor comes in the same row (a state read is one statement).
    assert fast.f_last_step == 2**40 and fast.f_kind == "totp" and fast.f_is_default is True
    assert fast.disabled_at is None


def test_aggregates_over_dates_come_back_as_aware_datetimes(otp):
    with otp.db.read() as conn:  # no rows: every aggregate is NULL or 0 on both paths
        params = {"b_member": "ann", "b_recipient": "r", "b_since": WHEN}
        assert tuple(otp.db.run(conn, SENDS, params).one()) == tuple(conn.execute(SENDS, params).one())
    ann = Member(id="ann", email="ann@example.com", name="Ann")
    otp.begin_setup(ann, "outbox:code")
    with otp.db.read() as conn:
        since = otp.clock() - timedelta(hours=1)
        last, count, oldest, *_ = otp.db.run(conn, SENDS, {**params, "b_since": since}).one()
    assert count == 1 and last == oldest and last.tzinfo is timezone.utc


def test_returning_gives_the_new_id_and_engine_events_see_the_statement(otp):
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement.split()[0].upper())

    event.listen(otp.db.engine, "before_cursor_execute", before)
    try:
        with otp.db.write() as conn:
            first = audit.write(otp.db, conn, AuditEvent(kind="test", at=WHEN, member_id="ann", details={"n": 1}))
            second = audit.write(otp.db, conn, AuditEvent(kind="test", at=WHEN, member_id="ann"))
    finally:
        event.remove(otp.db.engine, "before_cursor_execute", before)
    assert first.id is not None and second.id == first.id + 1
    assert seen.count("INSERT") == 2
    stored = otp.events(kinds=["test"])
    assert [e.id for e in stored] == [second.id, first.id] and stored[1].details == {"n": 1} and stored[1].at == WHEN


def test_a_driver_error_is_a_storage_error_and_the_transaction_is_rolled_back(otp):
    with otp.db.write() as conn:
        add_member(otp, conn, "ann")
    before = count_audit(otp)
    with pytest.raises(StorageError) as caught:
        with otp.db.write() as conn:
            audit.write(otp.db, conn, AuditEvent(kind="test", at=WHEN, member_id="ann"))
            add_member(otp, conn, "ann")  # the primary key is taken
    assert caught.value.reason == "error"
    assert "INSERT" not in str(caught.value) and "ann" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert count_audit(otp) == before  # the audit row went with the failed transaction
    with otp.db.write() as conn:  # the connection is usable again
        add_member(otp, conn, "bob")


def test_a_naive_datetime_is_refused_before_anything_is_sent(otp):
    with pytest.raises(ValueError, match="aware"):
        with otp.db.write() as conn:
            add_member(otp, conn, "ann")
            otp.db.run(conn, _INSERT_MEMBER, {"m_id": "bob", "m_at": datetime(2026, 1, 1),
                                              "m_at2": WHEN, "m_at3": WHEN, "m_locked": None})
    with otp.db.read() as conn:
        assert otp.db.run(conn, STATE, {"b_member": "ann"}).first() is None


def test_sqlite_begin_runs_on_the_cursor_with_engine_events_and_a_write_takes_the_lock_first(tmp_path):
    """SQLite's BEGIN goes to the driver's cursor (``FastStatements.run_sql``): the engine events still see
    it, a write transaction holds SQLite's write lock from its first statement, a read does not."""
    import sqlite3

    from core_support import base_settings

    from otp_pro import OtpPro

    path = tmp_path / "begin.sqlite3"
    otp = OtpPro(base_settings(f"sqlite:///{path}"), entry_points=False)
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    def try_to_write() -> str:
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            return "free"
        except sqlite3.OperationalError as exc:
            return str(exc)
        finally:
            other.close()

    event.listen(otp.db.engine, "before_cursor_execute", before)
    try:
        with otp.db.write():
            assert try_to_write() == "database is locked"
        with otp.db.read():
            assert try_to_write() == "free"
    finally:
        event.remove(otp.db.engine, "before_cursor_execute", before)
        otp.close()
    assert seen == ["BEGIN IMMEDIATE", "BEGIN"]
