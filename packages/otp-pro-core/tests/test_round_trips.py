"""The hot paths' transactions: each verification is one transaction that writes its audit row.

Counted with SQLAlchemy's engine events on a real database (SQLite, and
PostgreSQL when ``OTP_PRO_TEST_POSTGRES_URL`` is set). Speed itself is the
benchmark's business (``bench/compare.py``); these tests pin the rules that the
fast paths must keep.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyotp
import pytest
from core_support import base_settings
from sqlalchemy import create_engine, event, func, select, text

from otp_pro import Member, OtpPro
from otp_pro.storage import db as storage_db
from otp_pro.testing import PG_SKIP_REASON, enrol, mailed_code, outbox_code, truncate_all


@contextmanager
def transactions(otp: OtpPro) -> Iterator[dict[str, int]]:
    """Count the transactions that wrote (``commit``) and the statements sent while the block runs.

    On PostgreSQL a writing transaction is one that was given a transaction id: the
    server's next id is read (without taking one) before and after, on a connection of
    its own. That counts a statement run in autocommit that changed rows, and not one
    that changed nothing (a conditional UPDATE that matched no row takes no id). The ids
    are the cluster's: the count assumes nothing else writes meanwhile (the suite runs
    alone in CI), and autovacuum, whose ANALYZE takes an id, is switched off for the
    test database's tables. Elsewhere it is SQLAlchemy's ``commit`` event (SQLite has
    no autocommit writes).
    """
    counts = {"commit": 0, "statements": 0}

    def on_commit(_conn: Any) -> None:
        counts["commit"] += 1

    def on_statement(*_args: Any) -> None:
        counts["statements"] += 1

    probe = None
    if otp.db.is_postgresql:
        import psycopg

        probe = psycopg.connect(otp.db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False),
                                autocommit=True)
        for (table,) in probe.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'otp%'").fetchall():
            probe.execute(f'ALTER TABLE "{table}" SET (autovacuum_enabled = off)')

    def next_xid() -> int:
        assert probe is not None
        return int(probe.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint").fetchone()[0])

    start = next_xid() if probe is not None else 0
    if probe is None:
        event.listen(otp.db.engine, "commit", on_commit)
    event.listen(otp.db.engine, "before_cursor_execute", on_statement)
    try:
        yield counts
        if probe is not None:
            counts["commit"] = next_xid() - start
    finally:
        if probe is None:
            event.remove(otp.db.engine, "commit", on_commit)
        else:
            probe.close()
        event.remove(otp.db.engine, "before_cursor_execute", on_statement)


def totp_member(otp: OtpPro, member: Member) -> pyotp.TOTP:
    info = otp.begin_setup(member, "totp")
    assert info.secret is not None
    app = pyotp.TOTP(info.secret)
    otp.complete_setup(member, app.at(otp.clock()))
    return app


def test_totp_verify_is_one_transaction_with_its_audit_row(otp, member, clock):
    app = totp_member(otp, member)
    clock.advance(30)
    with transactions(otp) as counts:
        result = otp.verify(member, app.at(clock()), ip="10.0.0.1")
    assert result.ok and result.method == "totp"
    assert counts["commit"] == 1
    assert otp.events(member, kinds=["verify_ok"], limit=1)[0].details["method"] == "totp"
    with transactions(otp) as counts:
        assert otp.verify(member, app.at(clock())).reason == "invalid"  # the same step again
    assert counts["commit"] == 1
    assert otp.events(member, limit=1)[0].kind == "verify_failed"


def test_a_totp_success_resets_the_failure_count_in_the_same_statement(otp, member, clock):
    app = totp_member(otp, member)
    clock.advance(30)
    wrong = "123456" if app.at(clock()) != "123456" else "654321"
    assert otp.verify(member, wrong).attempts_remaining == otp.settings.max_attempts - 1
    assert otp.verify(member, wrong).attempts_remaining == otp.settings.max_attempts - 2
    assert otp.verify(member, app.at(clock())).ok
    # The next failure is the first again.
    assert otp.verify(member, wrong).attempts_remaining == otp.settings.max_attempts - 1


def test_totp_code_leaves_a_pending_email_code_usable(make_otp, member, clock):
    otp = make_otp(channels=["outbox:code", "totp"])
    app = totp_member(otp, member)
    assert enrol(otp, member, "outbox:code") == []  # a second factor: only a member's own factors are sent to
    otp.send_challenge(member, channel="outbox:code")
    emailed = outbox_code(otp)
    clock.advance(30)
    assert otp.verify(member, app.at(clock())).method == "totp"
    result = otp.verify(member, emailed)
    assert result.ok and result.method == "code"
    assert not otp.verify(member, emailed).ok  # once


def test_email_code_verify_is_one_transaction(otp, member):
    enrol(otp, member)
    otp.send_challenge(member)
    code = outbox_code(otp)
    with transactions(otp) as counts:
        # With the caller's address: its limit of failed verifications is read by the same statement.
        assert otp.verify(member, code, ip="10.0.0.1").ok
    assert counts["commit"] == 1


def test_a_failure_before_success_is_reset_by_an_email_code(make_otp, member):
    otp = make_otp(max_attempts=3)
    enrol(otp, member)
    otp.send_challenge(member)
    code = outbox_code(otp)
    wrong = "000000" if code != "000000" else "111111"
    assert otp.verify(member, wrong).attempts_remaining == 2
    assert otp.verify(member, code).ok
    assert otp.verify(member, wrong).attempts_remaining == 2  # counted from zero again, not locked


def test_an_inline_send_on_the_members_own_channel_is_two_writes(otp, member):
    """The challenge recorded before the transport is called, then the sent mark with its audit row.

    On PostgreSQL each is one statement of its own: the first reads the member's state,
    checks the throttle and inserts the challenge (``statements.SEEN_AND_SEND``), with no read before it.
    """
    enrol(otp, member)
    with transactions(otp) as counts:
        otp.send_challenge(member)
    assert counts["commit"] == 2
    if otp.db.is_postgresql:
        assert counts["statements"] == 2
    assert otp.verify(member, outbox_code(otp)).ok


def test_a_member_off_the_default_channel_is_sent_one_message_on_their_own(make_otp, member, mailbox):
    """The message is first made for the policy's default channel; the member's own channel wins, and the
    member's state comes from the statement that found the guess wrong (on PostgreSQL, no read of its own)."""
    otp = make_otp()
    otp.begin_setup(member, "email:code")
    otp.complete_setup(member, mailed_code(mailbox, "ann@example.com"))
    outbox = otp.transports["outbox"]
    before, mails = len(outbox.messages), len(mailbox.to("ann@example.com"))  # type: ignore[attr-defined]
    with transactions(otp) as counts:
        challenge = otp.send_challenge(member)
    assert challenge.channel == "email:code" and challenge.status == "sent"
    assert len(outbox.messages) == before  # type: ignore[attr-defined]
    assert len(mailbox.to("ann@example.com")) == mails + 1
    assert counts["commit"] == 2
    if otp.db.is_postgresql:
        # The guess (no write), the transaction's member lock, its throttle + insert, then the sent mark.
        assert counts["statements"] == 4
    assert otp.verify(member, mailed_code(mailbox, "ann@example.com")).ok
    newest = otp.events(member, kinds=["challenge_sent"])[0]
    assert (newest.channel, newest.details["challenge_id"]) == ("email:code", challenge.id)


def test_a_send_whose_guessed_channel_cannot_be_used_goes_on_from_the_members_state(make_otp, member):
    """The policy's default is the authenticator app, which has nothing to send: the guess is dropped, the
    member's state is read, and the code goes out once on the member's own channel."""
    otp = make_otp(default_channel="totp")
    enrol(otp, member)  # on the outbox
    outbox = otp.transports["outbox"]
    before = len(outbox.messages)  # type: ignore[attr-defined]
    with transactions(otp) as counts:
        challenge = otp.send_challenge(member)
    assert challenge.channel == "outbox:code" and len(outbox.messages) == before + 1  # type: ignore[attr-defined]
    assert counts["commit"] == 2
    if otp.db.is_postgresql:
        # The state read, the transaction's member lock, its throttle + insert, then the sent mark.
        assert counts["statements"] == 4
    assert otp.verify(member, outbox_code(otp)).ok


def test_a_hard_locked_member_is_sent_nothing(otp, member):
    """Consecutive failures at the NIST limit lock for good, with no ``locked_until``: the one-statement
    send must refuse as the state read does, with nothing recorded and nothing sent."""
    from otp_pro import LockedOut
    from otp_pro.settings import NIST_MAX_ATTEMPTS
    from otp_pro.storage.schema import challenges, members

    enrol(otp, member)
    with otp.db.write() as conn:
        conn.execute(members.update().where(members.c.member_id == member.id).values(
            consecutive_failures=NIST_MAX_ATTEMPTS))
        rows = conn.execute(select(func.count()).select_from(challenges)).scalar_one()
    outbox = otp.transports["outbox"]
    before = len(outbox.messages)  # type: ignore[attr-defined]
    with pytest.raises(LockedOut):
        otp.send_challenge(member)
    assert len(outbox.messages) == before  # type: ignore[attr-defined]
    with otp.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(challenges)).scalar_one() == rows


def test_sent_mark_voids_only_the_members_other_unused_challenges(make_otp, member):
    otp = make_otp()
    other = Member(id="43", email="bob@example.com", name="Bob")
    enrol(otp, member)
    enrol(otp, other)
    otp.send_challenge(other)
    bobs = outbox_code(otp, "bob@example.com")
    otp.send_challenge(member)
    first = outbox_code(otp, "ann@example.com")
    otp.send_challenge(member)
    second = outbox_code(otp, "ann@example.com")
    assert otp.verify(member, first).reason in ("invalid", "expired")
    assert otp.verify(member, second).ok
    assert otp.verify(other, bobs).ok  # another member's challenge is left alone


def test_a_dead_pooled_connection_is_replaced_after_idling(pg_url, clock, member, monkeypatch):
    if pg_url is None:
        pytest.skip(PG_SKIP_REASON)
    truncate_all(pg_url)
    otp = OtpPro(base_settings(pg_url), clock=clock)
    try:
        enrol(otp, member)
        assert otp.db.engine.pool.checkedin() == 1  # one operation at a time: one pooled connection
        with otp.db.engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            conn.rollback()
        admin = create_engine(pg_url)
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
        admin.dispose()
        monkeypatch.setattr(storage_db, "PING_AFTER_IDLE_SECONDS", 0.0)
        otp.send_challenge(member)  # the dead connection is pinged, dropped and replaced
        assert otp.verify(member, outbox_code(otp)).ok
    finally:
        otp.close()


def test_a_connection_lent_in_autocommit_is_pooled_back_in_transactions(pg_url):
    """read_once and write_once switch the driver connection to autocommit; it must be switched back
    before it is pooled again (also after an error in the block, and after the connection was lost),
    or a later write() transaction would commit statement by statement."""
    from otp_pro import StorageError
    from otp_pro.storage.schema import members

    if pg_url is None:
        pytest.skip(PG_SKIP_REASON)
    truncate_all(pg_url)
    otp = OtpPro(base_settings(pg_url))
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")

    def half_written(member_id: str) -> bool:
        """A write() transaction that fails after its insert: True if the insert stayed anyway."""
        with pytest.raises(RuntimeError), otp.db.write() as conn:
            conn.execute(members.insert().values(member_id=member_id, failures=0, consecutive_failures=0,
                                                 created_at=otp.clock(), updated_at=otp.clock()))
            raise RuntimeError("the rest of the transaction failed")
        with admin.connect() as check:
            return check.execute(text("SELECT count(*) FROM otp_members WHERE member_id = :m"),
                                 {"m": member_id}).scalar_one() == 1

    try:
        with otp.db.write_once() as conn:
            conn.execute(text("SELECT 1"))
        assert not half_written("after-write-once")
        with pytest.raises(ValueError), otp.db.read_once() as conn:
            conn.execute(text("SELECT 1"))
            raise ValueError("the caller's own error")
        assert not half_written("after-an-error")
        assert otp.db.engine.pool.checkedin() == 1  # the same connection every time
        with pytest.raises(StorageError), otp.db.write_once() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with admin.connect() as other:
                assert other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
            conn.execute(text("SELECT 1"))
        assert not half_written("after-a-lost-connection")
    finally:
        admin.dispose()
        otp.close()
