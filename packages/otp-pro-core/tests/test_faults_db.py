"""The PostgreSQL connection killed in the middle of an operation (``pg_terminate_backend``).

A SQLAlchemy cursor event on the OtpPro's own engine terminates the backend
that is about to run (or has just run) the Nth statement of an operation,
from a second connection, for every N the operation has. After each kill:

- the caller gets :class:`~otp_pro.StorageError` (typed, no SQL, no parameters),
  never SQLAlchemy's ``OperationalError``;
- the database holds the whole operation or none of it (a consumed code and
  its ``verify_ok`` row, or neither; a counted failure, its ``verify_failed``
  row and the lockout, or none of them);
- the next operation on the same OtpPro succeeds: the pool replaces the dead
  connection instead of handing it out again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from core_support import SECRET_KEY
from flow_client import flow_client
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import Engine, make_url

from otp_pro import Member, OtpPro, StorageError, ThrottledError, hookimpl
from otp_pro.storage.schema import audit_events, challenges, members
from otp_pro.testing import PG_SKIP_REASON, Clock, outbox_code, page_csrf, truncate_all

BEFORE, AFTER = "before", "after"


@pytest.fixture
def pg(pg_url: str | None) -> str:
    if pg_url is None:
        pytest.skip(PG_SKIP_REASON)
    truncate_all(pg_url)
    return pg_url


@pytest.fixture
def admin(pg: str) -> Iterator[Engine]:
    """A second, independent connection to the server: the one that kills."""
    engine = create_engine(pg, isolation_level="AUTOCOMMIT")
    try:
        yield engine
    finally:
        engine.dispose()


@dataclass
class Killer:
    """Counts the statements an engine runs; terminates the backend at statement ``target`` (1-based)."""

    admin: Engine
    target: int = 0
    phase: str = BEFORE
    seen: list[str] = field(default_factory=list)
    killed: list[int] = field(default_factory=list)

    def _kill(self, cursor: Any) -> None:
        pid = cursor.connection.info.backend_pid
        with self.admin.connect() as conn:
            # The timeout makes the call wait until the backend has exited.
            assert conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar() is True
        self.killed.append(pid)

    def before(self, _conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        self.seen.append(" ".join(statement.split())[:60])
        if self.phase == BEFORE and len(self.seen) == self.target:
            self._kill(cursor)

    def after(self, _conn: Any, cursor: Any, *_: Any) -> None:
        if self.phase == AFTER and len(self.seen) == self.target:
            self._kill(cursor)


@contextmanager
def watching(otp: OtpPro, admin: Engine, target: int = 0, phase: str = BEFORE) -> Iterator[Killer]:
    """Count (and with ``target``, kill at) the statements ``otp`` runs inside the block."""
    killer = Killer(admin, target, phase)
    engine = otp.db.engine
    event.listen(engine, "before_cursor_execute", killer.before)
    event.listen(engine, "after_cursor_execute", killer.after)
    try:
        yield killer
    finally:
        event.remove(engine, "before_cursor_execute", killer.before)
        event.remove(engine, "after_cursor_execute", killer.after)


@pytest.fixture
def new_otp(pg: str, clock: Clock) -> Iterator[Callable[..., OtpPro]]:
    made: list[OtpPro] = []

    def factory(migrate_database: bool | None = None, **overrides: Any) -> OtpPro:
        settings = {"secret_key": SECRET_KEY, "database_url": pg, "site_name": "Example",
                    "channels": ["outbox:code", "totp"], "default_channel": "outbox:code",
                    "resend_cooldown_seconds": 30, "max_attempts": 3, **overrides}
        otp = OtpPro(settings, clock=clock, entry_points=False, migrate_database=migrate_database)
        made.append(otp)
        return otp

    yield factory
    for otp in made:
        otp.close()


ANN = Member(id="ann", email="ann@example.com", name="Ann")


def _snapshot(otp: OtpPro, pg: str) -> dict[str, Any]:
    """What the database holds for ANN, read over a connection of its own."""
    engine = create_engine(pg)
    try:
        with engine.connect() as conn:
            member = conn.execute(select(members).where(members.c.member_id == ANN.id)).first()
            rows = conn.execute(select(challenges).order_by(challenges.c.id)).all()
            kinds = conn.execute(select(audit_events.c.kind).order_by(audit_events.c.id)).scalars().all()
    finally:
        engine.dispose()
    return {"member": member, "challenges": rows, "kinds": list(kinds)}


def _statements(run: Callable[[], Any], otp: OtpPro, admin: Engine) -> list[str]:
    with watching(otp, admin) as counter:
        run()
    return counter.seen


def _attempt(run: Callable[[], Any]) -> Any:
    """``run()``'s result, or the :class:`StorageError` it raised."""
    try:
        return run()
    except StorageError as exc:
        return exc


def _check_error(error: StorageError, caplog: pytest.LogCaptureFixture, code: str | None = None) -> None:
    text_ = str(error)
    assert error.reason == "connection_lost" and error.backend == "PostgreSQL"
    assert "PostgreSQL error: the connection to the database was lost" in text_
    assert "try again" in text_
    # No SQL, no bound parameters, no chained SQLAlchemy exception carrying them.
    assert "SELECT" not in text_ and "UPDATE" not in text_ and "INSERT" not in text_ and "b_" not in text_
    assert error.__cause__ is None and error.__suppress_context__
    if code is not None:
        assert code not in text_ and code not in repr(error) and code not in caplog.text


# ----------------------------------------------------------------------- verify


def _enrolled_with_challenge(otp: OtpPro, clock: Clock, *, failures: int) -> str:
    """ANN enrolled on the outbox, ``failures`` wrong codes counted, and a fresh live code; returns it."""
    otp.begin_setup(ANN, "outbox:code")
    otp.complete_setup(ANN, outbox_code(otp))
    clock.advance(31)
    otp.send_challenge(ANN)
    code = outbox_code(otp)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(failures):
        assert not otp.verify(ANN, wrong).ok
    return code


def test_verify_with_the_right_code_is_all_or_nothing_at_every_statement(new_otp, pg, admin, clock, caplog):
    caplog.set_level(logging.DEBUG)
    probe = new_otp()
    code = _enrolled_with_challenge(probe, clock, failures=1)
    count = len(_statements(lambda: probe.verify(ANN, code), probe, admin))
    assert count >= 2  # the member's state, then the consuming UPDATE (and the counter reset)
    kills = recovered = 0
    for target in range(1, count + 1):
        for phase in (BEFORE, AFTER):
            truncate_all(pg)
            otp = new_otp()
            code = _enrolled_with_challenge(otp, clock, failures=1)
            before = _snapshot(otp, pg)
            with watching(otp, admin, target, phase) as killer:
                outcome = _attempt(lambda otp=otp, code=code: otp.verify(ANN, code, ip="203.0.113.9"))
            kills += len(killer.killed)
            if not isinstance(outcome, StorageError):
                # Killed between two transactions (after the autocommit statement that read the state and,
                # with failures to reset, consumed nothing): the pool
                # replaced the connection and the verification completed, exactly once.
                recovered += 1
                assert outcome.ok and outcome.method == "code", (target, phase, outcome)
                done = _snapshot(otp, pg)
                assert done["kinds"][len(before["kinds"]):] == ["verify_ok"] and done["member"].failures == 0
                assert not otp.verify(ANN, code).ok
                clock.advance(60)
                continue
            _check_error(outcome, caplog, code)
            after = _snapshot(otp, pg)
            # None of it: the code is still live, no verify_ok, the failure still counted.
            assert after["kinds"] == before["kinds"], (target, phase)
            assert [r.consumed_at for r in after["challenges"]] == [r.consumed_at for r in before["challenges"]]
            assert after["member"].failures == 1 and after["member"].consecutive_failures == 1
            # The pool recovered: the same OtpPro answers, and the code the member still holds works once.
            result = otp.verify(ANN, code)
            assert result.ok and result.method == "code", (target, phase, result)
            done = _snapshot(otp, pg)
            assert done["kinds"].count("verify_ok") == 1 and done["member"].failures == 0
            assert not otp.verify(ANN, code).ok  # and only once
            clock.advance(60)
    assert kills == 2 * count
    assert recovered <= 1  # only right after the autocommit statement; every other point is all or nothing


def test_a_wrong_code_is_counted_whole_or_not_at_all_at_every_statement(new_otp, pg, admin, clock, caplog):
    # Two failures already: the third (max_attempts = 3) locks the member. Either the failure,
    # its verify_failed row, the lock and its locked_out row are all stored, or none is.
    caplog.set_level(logging.DEBUG)
    probe = new_otp()
    code = _enrolled_with_challenge(probe, clock, failures=2)
    wrong = "000000" if code != "000000" else "111111"
    count = len(_statements(lambda: probe.verify(ANN, wrong), probe, admin))
    assert probe.status(ANN).locked_until is not None
    recovered = 0
    for target in range(1, count + 1):
        for phase in (BEFORE, AFTER):
            truncate_all(pg)
            otp = new_otp()
            code = _enrolled_with_challenge(otp, clock, failures=2)
            before = _snapshot(otp, pg)
            with watching(otp, admin, target, phase):
                outcome = _attempt(lambda otp=otp: otp.verify(ANN, wrong))
            if not isinstance(outcome, StorageError):
                # Killed between the autocommit statement (nothing accepted) and the transaction: completed,
                # counted once.
                recovered += 1
                assert not outcome.ok and outcome.reason == "locked", (target, phase, outcome)
                final = _snapshot(otp, pg)
                assert final["kinds"][len(before["kinds"]):] == ["verify_failed", "locked_out"]
                assert final["member"].consecutive_failures == 3
                clock.advance(60)
                continue
            _check_error(outcome, caplog)
            after = _snapshot(otp, pg)
            assert after["kinds"] == before["kinds"], (target, phase)
            assert (after["member"].failures, after["member"].consecutive_failures) == (2, 2)
            assert after["member"].locked_until is None
            # Exact counters afterwards: the next wrong code is the third failure and locks.
            locked = otp.verify(ANN, wrong)
            assert not locked.ok and locked.reason == "locked", (target, phase)
            final = _snapshot(otp, pg)
            assert final["kinds"][len(before["kinds"]):] == ["verify_failed", "locked_out"]
            assert final["member"].consecutive_failures == 3
            assert not otp.verify(ANN, code).ok  # locked: even the right code waits
            clock.advance(60)
    assert recovered <= 1


# --------------------------------------------------------------------- challenge


def _enrolled(otp: OtpPro, clock: Clock) -> None:
    otp.begin_setup(ANN, "outbox:code")
    otp.complete_setup(ANN, outbox_code(otp))
    clock.advance(31)


def _sent(otp: OtpPro) -> int:
    return len(otp.transports["outbox"].messages)  # type: ignore[attr-defined]


def _statements_around_the_send(probe: OtpPro, admin: Engine) -> tuple[list[str], int]:
    """Send ANN a code on ``probe``: the statements it ran, and how many of them ran before the transport was called."""
    outbox = probe.transports["outbox"]
    marks: list[int] = []
    with watching(probe, admin) as counter:
        original = outbox.send

        def spy(message: Any) -> Any:
            marks.append(len(counter.seen))
            return original(message)

        outbox.send = spy  # type: ignore[method-assign]
        probe.send_challenge(ANN)
        del outbox.send
    [before_send] = marks
    return counter.seen, before_send


def test_send_challenge_killed_before_the_message_goes_out_leaves_nothing(new_otp, pg, admin, clock, caplog):
    """Every statement before the transport is called: no challenge, no audit, no message, no cooldown;
    or, killed right after a statement that ran alone (autocommit), all of it on a fresh connection."""
    caplog.set_level(logging.DEBUG)
    probe = new_otp()
    _enrolled(probe, clock)
    seen, before_send = _statements_around_the_send(probe, admin)
    # PostgreSQL reads the member's state, checks the throttle and inserts the challenge with one
    # statement that runs alone (delivery.deliver, statements.SEEN_AND_SEND), and nothing else before the send.
    assert before_send == 1 and seen[0].startswith("WITH seen")
    alone = {1}
    for target in range(1, before_send + 1):
        for phase in (BEFORE, AFTER):
            truncate_all(pg)
            otp = new_otp()
            _enrolled(otp, clock)
            before, messages = _snapshot(otp, pg), _sent(otp)
            try:
                with watching(otp, admin, target, phase):
                    otp.send_challenge(ANN)
            except StorageError as exc:
                _check_error(exc, caplog)
                after = _snapshot(otp, pg)
                assert after["kinds"] == before["kinds"], (target, phase)
                assert after["challenges"] == before["challenges"], (target, phase)
                assert _sent(otp) == messages, "a message went out for a challenge that was not stored"
            else:
                # Killed after a statement that ran alone (autocommit) had finished: the operation went
                # on with a fresh connection (the sent mark gets its second try), and all of it happened.
                assert phase == AFTER and target in alone, "a kill inside the transaction must fail the operation"
                after = _snapshot(otp, pg)
                assert after["kinds"][len(before["kinds"]):] == ["challenge_sent"]
                assert [r.status for r in after["challenges"]][-1] == "sent" and _sent(otp) == messages + 1
                assert otp.verify(ANN, outbox_code(otp)).ok
                clock.advance(60)
                messages = _sent(otp)
            # Not counted against the 30 s cooldown: the next send goes through at once.
            challenge = otp.send_challenge(ANN)
            assert _sent(otp) == messages + 1
            assert otp.verify(ANN, outbox_code(otp)).ok
            assert otp.events(ANN, kinds=["challenge_sent"])[0].details["challenge_id"] == challenge.id
            clock.advance(60)


def test_send_challenge_killed_after_the_message_went_out_is_recorded(new_otp, pg, admin, clock, caplog):
    """The statements after the transport returned: the message is out, so the send must be on record."""
    caplog.set_level(logging.DEBUG)
    probe = new_otp()
    _enrolled(probe, clock)
    seen, before_send = _statements_around_the_send(probe, admin)
    total = len(seen)
    assert total > before_send
    failures = []
    for target in range(before_send + 1, total + 1):
        for phase in (BEFORE, AFTER):
            truncate_all(pg)
            otp = new_otp()
            _enrolled(otp, clock)
            messages, before = _sent(otp), _snapshot(otp, pg)
            with watching(otp, admin, target, phase):
                try:
                    otp.send_challenge(ANN)
                except StorageError as exc:
                    _check_error(exc, caplog)
            assert _sent(otp) == messages + 1  # the message did go out
            after = _snapshot(otp, pg)
            [row] = [r for r in after["challenges"] if r.purpose == "verify"]
            new_kinds = after["kinds"][len(before["kinds"]):]
            where = f"{phase} statement {target} ({seen[target - 1]}...)"
            if new_kinds.count("challenge_sent") + new_kinds.count("delivery_failed") > 1:
                failures.append(f"{where}: the send was recorded twice ({new_kinds})")
            if not {"challenge_sent", "delivery_failed"} & set(new_kinds):
                failures.append(f"{where}: no audit event for a message that went out "
                                f"(challenge status {row.status!r}, new audit rows {new_kinds})")
            if not otp.verify(ANN, outbox_code(otp)).ok and row.status == "pending":
                failures.append(f"{where}: the challenge stays 'pending' and the code the member got is refused")
            clock.advance(1)
            try:
                otp.send_challenge(ANN)
            except ThrottledError:
                if row.status not in ("sent",):
                    failures.append(f"{where}: a challenge that was not marked sent blocks the next send "
                                    "(cooldown)")
            clock.advance(60)
    assert not failures, "\n".join(failures)


# ------------------------------------------------------------------------- other


def test_storage_error_names_the_problem_without_sql_when_the_server_is_gone(new_otp, pg, admin, clock, caplog):
    """Every connection of the pool killed at once (a database restart): one failure, then recovery."""
    caplog.set_level(logging.DEBUG)
    otp = new_otp()
    code = _enrolled_with_challenge(otp, clock, failures=0)
    with admin.connect() as conn:
        pids = conn.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )).scalars().all()
        for pid in pids:
            conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    assert pids
    # The pooled connections are dead; the pool notices before handing one out.
    assert otp.status(ANN).enrolled
    assert otp.verify(ANN, code).ok


def test_an_unreachable_database_is_a_storage_error(new_otp, pg):
    # Nothing listens on port 1; migrate_database=False skips the start-up check that would say so first.
    otp = new_otp(database_url=make_url(pg).set(port=1).render_as_string(hide_password=False),
                  migrate_database=False)
    for operation in (lambda: otp.verify(ANN, "123456"), lambda: otp.send_challenge(ANN), lambda: otp.status(ANN)):
        with pytest.raises(StorageError) as info:
            operation()
        assert info.value.reason == "unavailable" and "cannot be used right now" in str(info.value)
        assert re.search(r"\(psycopg\.\w+\)", str(info.value)) and "123456" not in str(info.value)


# ----------------------------------------------------------------------- the web page


def test_the_verify_page_answers_503_with_a_message_and_the_code_still_works(new_otp, pg, admin, clock, tmp_path):
    from otp_pro.web.flow import STORAGE_FAILED_TEXT

    def signed_in_app(otp: OtpPro) -> tuple[Any, str]:
        client = flow_client(otp, ANN)
        assert client.get("/login").status_code == 303
        return client, outbox_code(otp)

    probe = new_otp()
    _enrolled(probe, clock)
    client, code = signed_in_app(probe)
    token = page_csrf(client.get("/otp/verify").text)
    with watching(probe, admin) as counter:
        assert client.post("/otp/verify", data={"code": code, "csrf_token": token}).status_code == 303
    count = len(counter.seen)
    # The posted code is checked first (signin.verify): on a clean record that is verify()'s one statement, and a
    # right code reads nothing else. Every statement the POST runs is killed in turn below.
    assert count >= 1, counter.seen
    for target in range(1, count + 1):
        truncate_all(pg)
        otp = new_otp()
        _enrolled(otp, clock)
        client, code = signed_in_app(otp)
        token = page_csrf(client.get("/otp/verify").text)
        with watching(otp, admin, target, BEFORE):
            page = client.post("/otp/verify", data={"code": code, "csrf_token": token})
        assert page.status_code == 503, (target, page.status_code)
        assert STORAGE_FAILED_TEXT in page.text.replace("&#39;", "'")
        assert "Traceback" not in page.text and "SELECT" not in page.text and code not in page.text
        api = None
        with watching(otp, admin, 1, BEFORE):
            api = client.post("/otp/api/verify", json={"code": code}, headers={"X-CSRF-Token": token})
        assert api.status_code == 503 and api.get_json() == {"ok": False, "error": "unavailable",
                                                              "message": STORAGE_FAILED_TEXT}
        assert _snapshot(otp, pg)["kinds"].count("verify_ok") == 0
        # Nothing changed: the same code, typed again, signs the member in.
        done = client.post("/otp/verify", data={"code": code, "csrf_token": token})
        assert done.status_code == 303 and client.get("/home").text == "home page"
        clock.advance(60)


def test_a_failed_delivery_whose_record_is_killed_leaves_no_pending_challenge(new_otp, pg, admin, clock, caplog):
    from otp_pro import TransientDeliveryError

    def broken(message: Any) -> Any:
        raise TransientDeliveryError("outbox is down", transport="outbox", provider_code="down")

    probe = new_otp()
    _enrolled(probe, clock)
    marks: list[int] = []
    with watching(probe, admin) as counter:
        probe.transports["outbox"].send = lambda m: (marks.append(len(counter.seen)), broken(m))  # type: ignore
        with pytest.raises(TransientDeliveryError):
            probe.send_challenge(ANN)
    total, before_send = len(counter.seen), marks[0]
    assert total > before_send
    failures = []
    for target in range(before_send + 1, total + 1):
        truncate_all(pg)
        otp = new_otp()
        _enrolled(otp, clock)
        otp.transports["outbox"].send = broken  # type: ignore[method-assign]
        with watching(otp, admin, target, BEFORE), pytest.raises((TransientDeliveryError, StorageError)):
            otp.send_challenge(ANN)
        after = _snapshot(otp, pg)
        [row] = [r for r in after["challenges"] if r.purpose == "verify"]
        del otp.transports["outbox"].send
        clock.advance(1)
        try:
            otp.send_challenge(ANN)
        except ThrottledError:
            failures.append(f"statement {target}: the undelivered challenge (status {row.status!r}) blocks the "
                            "next send")
        if "delivery_failed" not in after["kinds"]:
            failures.append(f"statement {target}: no audit event records the failed delivery")
        if after["kinds"].count("delivery_failed") > 1:
            failures.append(f"statement {target}: the failed delivery was recorded twice")
        clock.advance(60)
    assert not failures, "\n".join(failures)


def test_sqlite_locked_past_the_busy_timeout_is_a_storage_error(tmp_path, clock, monkeypatch, caplog):
    """Another process holds SQLite's write lock longer than the busy timeout: typed error, nothing written."""
    import sqlite3

    from otp_pro.storage import db as storage_db

    monkeypatch.setattr(storage_db, "SQLITE_BUSY_TIMEOUT_MS", 200)
    path = tmp_path / "locked.sqlite3"
    otp = OtpPro({"secret_key": SECRET_KEY, "database_url": f"sqlite:///{path}", "channels": ["outbox:code", "totp"],
                  "default_channel": "outbox:code", "resend_cooldown_seconds": 0}, clock=clock, entry_points=False)
    try:
        code = _enrolled_with_challenge(otp, clock, failures=1)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # the write lock, held
        try:
            with pytest.raises(StorageError) as info:
                otp.verify(ANN, code)
            assert info.value.reason == "locked" and info.value.backend == "SQLite"
            assert str(info.value).startswith("SQLite error: the database stayed locked by another writer")
            assert code not in str(info.value) and "UPDATE" not in str(info.value)
        finally:
            other.execute("ROLLBACK")
            other.close()
        result = otp.verify(ANN, code)  # nothing was consumed or counted: the code works now
        assert result.ok
        assert [e.kind for e in otp.events(ANN, kinds=["verify_ok", "verify_failed"])] == ["verify_ok", "verify_failed"]
    finally:
        otp.close()


class _Shelf:
    """A queue dispatcher plugin that keeps the ids: the test plays the worker."""

    __name__ = "test_shelf"

    def __init__(self) -> None:
        from otp_pro.dispatch import Dispatcher

        ids: list[int] = []
        self.ids = ids

        class Shelf(Dispatcher):
            name = "shelf"

            def enqueue(self, challenge_id: int) -> None:
                ids.append(challenge_id)

        self.cls = Shelf

    @hookimpl
    def otp_pro_register_dispatchers(self, register: Callable[[Any], None]) -> None:
        register(self.cls)


def test_a_queue_worker_killed_after_sending_still_records_the_send(pg, admin, clock):
    """deliver_queued: the connection dies at each statement after the transport returned. The send is
    recorded once (a second try on a fresh connection), and the code the member got is accepted."""
    made: list[OtpPro] = []

    def make() -> tuple[OtpPro, _Shelf]:
        shelf = _Shelf()
        otp = OtpPro({"secret_key": SECRET_KEY, "database_url": pg, "site_name": "Example",
                      "channels": ["outbox:code", "totp"], "default_channel": "outbox:code",
                      "dispatcher": "shelf", "resend_cooldown_seconds": 0, "disable_plugins": ["otp_pro_notify"]},
                     clock=clock, entry_points=False, plugins=[shelf])
        made.append(otp)
        setup = otp.begin_setup(ANN, "outbox:code")
        assert setup.challenge is not None
        otp.deliver_queued(setup.challenge.id)
        otp.complete_setup(ANN, outbox_code(otp))
        return otp, shelf

    try:
        probe, _ = make()
        queued = probe.send_challenge(ANN)
        outbox = probe.transports["outbox"]
        marks: list[int] = []
        with watching(probe, admin) as counter:
            original = outbox.send
            outbox.send = lambda m: (marks.append(len(counter.seen)), original(m))[1]  # type: ignore
            assert probe.deliver_queued(queued.id).action == "sent"
            del outbox.send
        total, before_send = len(counter.seen), marks[0]
        assert total > before_send
        for target in range(before_send + 1, total + 1):
            for phase in (BEFORE, AFTER):
                truncate_all(pg)
                otp, _ = make()
                challenge = otp.send_challenge(ANN)
                with watching(otp, admin, target, phase):
                    outcome = otp.deliver_queued(challenge.id)
                assert outcome.action == "sent", (target, phase)
                where = f"{phase} statement {target}"
                with otp.db.engine.connect() as conn:
                    status = conn.execute(select(challenges.c.status).where(
                        challenges.c.id == challenge.id)).scalar_one()
                sent = otp.events(ANN, kinds=["challenge_sent"])
                assert status == "sent", where
                assert [e.details["challenge_id"] for e in sent].count(challenge.id) == 1, where
                assert otp.verify(ANN, outbox_code(otp)).ok, where
    finally:
        for otp in made:
            otp.close()


def test_a_right_code_on_a_clean_record_is_accepted_by_one_statement_or_not_at_all(new_otp, pg, admin, clock, caplog):
    # No failures to reset: one autocommit statement reads the state, consumes the code and writes
    # verify_ok (verification._verify_once). Killed before it: nothing is written and the code still works;
    # killed after it: it was committed, and the member is signed in once.
    caplog.set_level(logging.DEBUG)
    probe = new_otp()
    code = _enrolled_with_challenge(probe, clock, failures=0)
    seen = _statements(lambda: probe.verify(ANN, code), probe, admin)
    assert len(seen) == 1 and seen[0].startswith("WITH"), seen
    for phase in (BEFORE, AFTER):
        truncate_all(pg)
        otp = new_otp()
        code = _enrolled_with_challenge(otp, clock, failures=0)
        before = _snapshot(otp, pg)
        with watching(otp, admin, 1, phase) as killer:
            outcome = _attempt(lambda otp=otp, code=code: otp.verify(ANN, code))
        assert len(killer.killed) == 1
        added = _snapshot(otp, pg)["kinds"][len(before["kinds"]):]
        if phase == BEFORE:
            _check_error(outcome, caplog, code)
            assert added == []
            assert otp.verify(ANN, code).ok  # still live, and the pool recovered
        else:
            assert outcome.ok and outcome.method == "code" and added == ["verify_ok"]
        assert not otp.verify(ANN, code).ok  # once
        clock.advance(60)


def test_checking_a_sqlite_file_keeps_the_locks_of_connections_already_open_on_it(tmp_path):
    # A Django site has its own connection on the file when otp-pro opens it. Reading the file with
    # open()/close() would drop that connection's POSIX locks, and another process could then write
    # under a reader (or check-point a WAL away): the way SQLite databases get corrupted.
    import sqlite3
    import subprocess
    import sys

    from otp_pro.storage.db import is_sqlite_file

    path = tmp_path / "shared.sqlite3"
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("CREATE TABLE t (x)")
    reader.execute("BEGIN")
    reader.execute("SELECT * FROM t").fetchall()  # holds a SHARED lock until the transaction ends
    assert is_sqlite_file(path)
    writer = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)\n"
              "try:\n    c.execute('BEGIN EXCLUSIVE'); print('exclusive')\n"
              "except sqlite3.OperationalError as e:\n    print('refused:', e)")
    run = subprocess.run([sys.executable, "-c", writer, str(path)], capture_output=True, text=True, timeout=60)
    reader.execute("ROLLBACK")
    reader.close()
    assert run.stdout.startswith("refused: database is locked"), run.stdout + run.stderr
    (tmp_path / "notes.txt").write_text("not a database at all, but long enough to have a header")
    assert not is_sqlite_file(tmp_path / "notes.txt")
    assert is_sqlite_file(tmp_path / "missing.sqlite3") and not (tmp_path / "missing.sqlite3").exists()
    (tmp_path / "empty.sqlite3").touch()
    assert is_sqlite_file(tmp_path / "empty.sqlite3")
