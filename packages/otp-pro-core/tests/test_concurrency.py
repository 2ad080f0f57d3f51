"""16 workers race to verify the same secret, 50 rounds each for a code, a backup code and a TOTP step.

Each worker is its own OtpPro instance with its own connection pool, as 16
application instances behind a load balancer would be. Exactly one worker wins
each round, and the failure counter equals the number of failures.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from core_support import base_settings
from sqlalchemy import create_engine, func, insert, select, text, update

from otp_pro import Member, OtpPro, ThrottledError
from otp_pro.storage.schema import audit_events, challenges, members
from otp_pro.testing import PG_SKIP_REASON, outbox_code

WORKERS = 16
ROUNDS = 50


def _race(instances: list[OtpPro], member: Member, secret: str) -> list[Any]:
    barrier = threading.Barrier(len(instances))
    results: list[Any] = [None] * len(instances)

    def work(i: int) -> None:
        barrier.wait()
        try:
            results[i] = instances[i].verify(member, secret, ip=f"10.0.0.{i}")
        except Exception as exc:  # noqa: BLE001 - any exception fails the test below
            results[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(instances))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def _counters(otp: OtpPro, member: Member) -> tuple[int, int, int]:
    with otp.db.read() as conn:
        row = conn.execute(select(members.c.failures, members.c.consecutive_failures).where(
            members.c.member_id == member.id)).one()
        failed = conn.execute(select(func.count()).select_from(audit_events).where(
            audit_events.c.member_id == member.id, audit_events.c.kind == "verify_failed")).scalar_one()
    return row[0], row[1], failed


@pytest.fixture
def fleet(backend: str, clock: Any) -> Any:
    settings = base_settings(backend, max_attempts=100, max_sends_per_hour=1000,
                             max_sends_per_hour_per_recipient=1000, code_ttl_seconds=3600)
    instances = [OtpPro(settings, clock=clock) for _ in range(WORKERS)]
    yield instances
    for otp in instances:
        otp.close()


def _check_rounds(fleet: list[OtpPro], member: Member, next_secret: Callable[[int], str], *,
                  counted_first: bool = False) -> None:
    """``counted_first``: attempts are counted before they are judged (a backup code on SQLite)."""
    total_failures_seen = 0
    for round_no in range(ROUNDS):
        secret = next_secret(round_no)
        results = _race(fleet, member, secret)
        errors = [r for r in results if isinstance(r, Exception)]
        assert not errors, errors[:3]
        wins = [r for r in results if r.ok]
        losses = [r for r in results if not r.ok]
        assert len(wins) == 1, f"round {round_no}: {len(wins)} winners"
        assert all(r.reason == "invalid" for r in losses)
        total_failures_seen += len(losses)
        failures, consecutive, audited = _counters(fleet[0], member)
        if counted_first:
            # Each attempt was counted before it was judged; the winner forgives the failures counted up
            # to its own, so the counter holds the losers counted after the winner: never more than lost.
            assert failures == consecutive <= len(losses) == WORKERS - 1, f"round {round_no}"
        else:
            # Losers can only fail after the winner committed (they wait on its row lock),
            # so the winner's reset comes first and the counter holds exactly this round's failures.
            assert failures == consecutive == len(losses) == WORKERS - 1, f"round {round_no}"
        assert audited == total_failures_seen


def test_same_code_raced_by_16_workers(fleet, clock):
    member = Member(id="race-code", email="race@example.com")
    setup = fleet[0]
    setup.begin_setup(member, "outbox:code")
    setup.complete_setup(member, outbox_code(setup))

    def next_code(_round: int) -> str:
        clock.advance(1)
        setup.send_challenge(member)
        return outbox_code(setup)

    _check_rounds(fleet, member, next_code)


def test_same_backup_code_raced_by_16_workers(fleet, clock):
    # On SQLite a backup code's attempt is counted before its KDF runs (the write lock is not held across it).
    member = Member(id="race-backup", email="race-b@example.com")
    setup = fleet[0]
    setup.begin_setup(member, "outbox:code")
    codes = setup.complete_setup(member, outbox_code(setup))
    pool: list[str] = []

    def next_backup(_round: int) -> str:
        nonlocal codes
        if not codes:
            codes = setup.regenerate_backup_codes(member)
        return codes.pop()

    _check_rounds(fleet, member, next_backup, counted_first=fleet[0].db.is_sqlite)
    del pool


def test_same_totp_step_raced_by_16_workers(fleet, clock):
    member = Member(id="race-totp", email="race-t@example.com")
    setup = fleet[0]
    info = setup.begin_setup(member, "totp")
    app = pyotp.TOTP(info.secret)
    setup.complete_setup(member, app.at(clock()))

    def next_step(_round: int) -> str:
        clock.advance(30)
        return app.at(clock())

    _check_rounds(fleet, member, next_step)


def test_wrong_codes_from_16_workers_are_all_counted(backend, clock):
    """No lost update: 16 concurrent failures raise the counter by exactly 16."""
    settings = base_settings(backend, max_attempts=100)
    fleet = [OtpPro(settings, clock=clock) for _ in range(WORKERS)]
    try:
        member = Member(id="race-wrong", email="race-w@example.com")
        fleet[0].begin_setup(member, "outbox:code")
        fleet[0].complete_setup(member, outbox_code(fleet[0]))
        for round_no in range(1, 6):
            results = _race(fleet, member, "00000000")
            assert all(not r.ok for r in results)
            failures, consecutive, _ = _counters(fleet[0], member)
            assert consecutive == failures == round_no * WORKERS
            remaining = sorted(r.attempts_remaining for r in results)
            assert remaining == list(range(100 - round_no * WORKERS, 100 - (round_no - 1) * WORKERS))
    finally:
        for otp in fleet:
            otp.close()


def test_concurrent_sends_to_one_member_respect_the_cooldown(backend, clock):
    """Sends for one member are serialised (the member row's lock on PostgreSQL, BEGIN IMMEDIATE on
    SQLite): eight simultaneous requests inside the cooldown deliver exactly one message."""
    settings = base_settings(backend, resend_cooldown_seconds=30)
    fleet = [OtpPro(settings, clock=clock) for _ in range(8)]
    try:
        member = Member(id="race-send", email="race-s@example.com")
        fleet[0].begin_setup(member, "outbox:code")
        fleet[0].complete_setup(member, outbox_code(fleet[0]))
        clock.advance(31)
        barrier = threading.Barrier(len(fleet))
        outcomes: list[str] = []

        def send(otp: OtpPro) -> None:
            barrier.wait()
            try:
                otp.send_challenge(member)
                outcomes.append("sent")
            except Exception as exc:  # noqa: BLE001 - the kinds are asserted below
                outcomes.append(type(exc).__name__)

        threads = [threading.Thread(target=send, args=(otp,)) for otp in fleet]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(outcomes) == ["ThrottledError"] * 7 + ["sent"]
        delivered = sum(len(otp.transports["outbox"].messages) for otp in fleet)  # type: ignore[attr-defined]
        assert delivered == 2  # the setup code and one sign-in code
    finally:
        for otp in fleet:
            otp.close()


def test_a_send_committed_while_the_one_statement_send_waits_makes_it_step_aside(pg_url, clock):
    """PostgreSQL records an inline send in one statement whose throttle counts come from its snapshot.
    Another send that holds the member's row lock when that snapshot is taken, and commits its
    challenge afterwards, is invisible to the counts: the statement must see that the member's row
    changed, write nothing, and leave the decision to the transaction, which then refuses the send."""
    if pg_url is None:
        pytest.skip(PG_SKIP_REASON)
    otp = OtpPro(base_settings(pg_url, resend_cooldown_seconds=30), clock=clock)
    admin = create_engine(pg_url)
    try:
        member = Member(id="gate", email="gate@example.com")
        otp.begin_setup(member, "outbox:code")
        otp.complete_setup(member, outbox_code(otp))
        clock.advance(31)
        outbox = otp.transports["outbox"]
        sent_before = len(outbox.messages)  # type: ignore[attr-defined]
        outcome: list[Any] = []
        with admin.connect() as other:
            # The other send: the member's row lock (as OtpPro takes it) and a new live challenge.
            other.execute(update(members).where(members.c.member_id == member.id).values(
                updated_at=members.c.updated_at))
            other.execute(insert(challenges).values(
                member_id=member.id, channel="outbox:code", payload="code", purpose="verify", secret_hash="x" * 64,
                recipient_hash="y" * 64, status="pending", created_at=clock(),
                expires_at=clock() + timedelta(minutes=10)))

            def send() -> None:
                try:
                    outcome.append(otp.send_challenge(member))
                except Exception as exc:  # noqa: BLE001 - asserted below
                    outcome.append(exc)

            worker = threading.Thread(target=send)
            worker.start()
            # Wait until the send's statement waits on the row lock, then commit the other send.
            for _ in range(500):
                with admin.connect() as probe:
                    waiting = probe.execute(text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'")).scalar_one()
                if waiting:
                    break
                time.sleep(0.01)
            assert waiting == 1, "the send never waited on the member's row lock"
            other.commit()
        worker.join(timeout=30)
        [result] = outcome
        assert isinstance(result, ThrottledError) and result.limit == "cooldown", result
        assert len(outbox.messages) == sent_before  # type: ignore[attr-defined]
        assert otp.events(member, limit=1)[0].kind == "send_throttled"
    finally:
        admin.dispose()
        otp.close()
