"""A bounded soak on PostgreSQL: 8 worker processes, 1,000 members, 100,000 mixed operations.

Each worker is its own process with its own :class:`~otp_pro.OtpPro` (its own
connection pool and ``outbox`` transport), as application instances behind a
load balancer would be. A worker owns an eighth of the members and keeps a small
model of each (default channel, live code, failures, lockout, backup codes, last
TOTP step, sends in the last hour; an app member also has the outbox as a second
factor), so it knows what every call must answer:
send a challenge, verify the right code, a wrong one, an expired one, replay an
accepted code or TOTP code, use a backup code and reuse it, unlock a locked
member. Every 50 operations the two workers of a pair race on a shared member:
both verify the same code, backup code or TOTP step at the same moment.

Afterwards, from the database:

* every audit count (per kind) equals the sum of what the workers did and saw;
* no code (challenge), backup code or TOTP step was accepted twice, and every race had exactly one winner;
* no lockout was skipped: per member, a ``locked_out`` event follows every
  ``max_attempts``-th consecutive failure, no member ever holds ``max_attempts`` failures,
  and every answer the workers got agreed with their model (a locked member is refused).

Time is virtual (each worker's clock moves one second per operation, so the
workers of a pair stand at the same instant when they race); the database, the
processes and the races are real. The figures are printed (``-s`` shows them).

``OTP_PRO_SOAK_OPS``, ``OTP_PRO_SOAK_MEMBERS`` and ``OTP_PRO_SOAK_WORKERS`` scale it
(defaults 100000, 1000, 8); it needs ``OTP_PRO_TEST_POSTGRES_URL``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import re
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from core_support import SECRET_KEY
from sqlalchemy import create_engine, func, select

from otp_pro import Member, OtpPro, totp
from otp_pro.errors import LockedOut, ThrottledError
from otp_pro.storage.schema import audit_events, challenges, members
from otp_pro.testing import PG_SKIP_REASON, truncate_all

OPS = int(os.environ.get("OTP_PRO_SOAK_OPS", "100000"))
MEMBERS = int(os.environ.get("OTP_PRO_SOAK_MEMBERS", "1000"))
WORKERS = int(os.environ.get("OTP_PRO_SOAK_WORKERS", "8"))
RACE_EVERY = 50
MAX_ATTEMPTS = 5
LOCKOUT = 60
CODE_TTL = 300
SENDS_PER_HOUR = 30  # above the race member's 24 an hour; members who ask more are throttled
BACKUP_COUNT = 4
CODE = "outbox:code"
TOTP = "totp"
START = datetime(2026, 11, 23, 12, 0, 10, tzinfo=timezone.utc)
RACE_KINDS = ("code", "backup", "totp")


def soak_settings(url: str) -> dict[str, Any]:
    return {
        "secret_key": SECRET_KEY, "database_url": url, "site_name": "Soak", "mode": "visible",
        "channels": [CODE, TOTP], "default_channel": CODE, "max_attempts": MAX_ATTEMPTS, "lockout_seconds": LOCKOUT,
        "code_ttl_seconds": CODE_TTL, "resend_cooldown_seconds": 0, "max_sends_per_hour": SENDS_PER_HOUR,
        "max_sends_per_hour_per_recipient": SENDS_PER_HOUR, "backup_code_count": BACKUP_COUNT,
        # A worker answers races from its own address, one every RACE_EVERY virtual seconds: at most 72 an hour,
        # and the loser of each fails. The model does not count per-IP refusals, so the limit sits above that
        # (at the default 50, a worker that lost more than 50 races in an hour saw ``ip_limited``).
        "max_failed_verifications_per_hour_per_ip": 3600 // RACE_EVERY + 1,
        "providers": {"outbox": {"max_messages": 10}},
        # Security notices go through the outbox too; their own tests count them. Here every message is a code.
        "disable_plugins": ["otp_pro_notify"],
    }


class VirtualClock:
    """One second per operation from ``START``: the two workers of a pair are at the same instant at each race."""

    def __init__(self) -> None:
        self.tick = 0

    def __call__(self) -> datetime:
        return START + timedelta(seconds=self.tick)


@dataclass
class Model:
    member: Member
    channel: str
    seed: str | None = None
    last_step: int | None = None
    live: tuple[str, int, datetime] | None = None  # code, challenge id, expires
    accepted_codes: list[str] = field(default_factory=list)
    fresh_backup: list[str] = field(default_factory=list)
    used_backup: list[str] = field(default_factory=list)
    failures: int = 0
    consecutive: int = 0
    locked_until: datetime | None = None
    sends: list[datetime] = field(default_factory=list)

    def locked(self, now: datetime) -> bool:
        return self.consecutive >= 100 or (self.locked_until is not None and self.locked_until > now)


class Worker:
    """One process: its members, its model of them, what it did and what it saw."""

    def __init__(self, number: int, url: str) -> None:
        # Backup codes are hashed with scrypt (N=2**14, ~40 ms each); the soak is about the database
        # paths under concurrency, so the workers use a cheaper cost (the parameter, not the code, changes).
        from otp_pro import crypto

        crypto.SCRYPT_N = 2**8
        self.number = number
        self.clock = VirtualClock()
        self.otp = OtpPro(soak_settings(url), clock=self.clock)
        self.outbox: Any = self.otp.transports["outbox"]
        self.rng = random.Random(number)
        self.audit: Counter[str] = Counter()
        self.ops: Counter[str] = Counter()
        self.accepted: list[str] = []  # "code:<challenge id>", "backup:<member>:<code>", "totp:<member>:<step>"
        self.violations: list[str] = []
        self.races: list[tuple[str, int, bool, str | None]] = []  # kind, round, won, reason
        self.models: list[Model] = []

    # ------------------------------------------------------------ helpers

    @property
    def now(self) -> datetime:
        return self.clock()

    def violation(self, text: str) -> None:
        if len(self.violations) < 50:
            self.violations.append(f"worker {self.number} op {self.clock.tick}: {text}")

    def last_code(self) -> str:
        found = re.search(r"\b(\d{6})\b", self.outbox.messages[-1].text)
        assert found
        return found.group(1)

    def step(self) -> int:
        return totp.step_at(self.now, self.otp.settings.totp)

    def totp_code(self, seed: str, step: int | None = None) -> str:
        return totp.code_at_step(seed, self.step() if step is None else step, self.otp.settings.totp)

    def enroll(self, member: Member, channel: str) -> Model:
        model = Model(member, channel)
        info = self.otp.begin_setup(member, channel)
        self.audit["setup_started"] += 1
        if channel == TOTP:
            assert info.secret
            model.seed = info.secret
            code = self.totp_code(info.secret)
            model.fresh_backup = self.otp.complete_setup(member, code)
            model.last_step = self.matched_step(model, code)  # after_step None: the first match, as the core
            # A second factor, the outbox, for the codes an app member asks for as a fallback (only a
            # member's own factors are sent to). It brings no new backup codes.
            self.otp.begin_setup(member, CODE)
            self.audit["setup_started"] += 1
            self.audit["challenge_sent"] += 1
            model.sends.append(self.now)
            assert self.otp.complete_setup(member, self.last_code()) == []
            self.audit["setup_completed"] += 1
        else:
            self.audit["challenge_sent"] += 1
            model.sends.append(self.now)
            model.fresh_backup = self.otp.complete_setup(member, self.last_code())
        self.audit["setup_completed"] += 1
        self.audit["backup_codes_generated"] += 1
        return model

    def fail(self, m: Model) -> bool:
        """A counted failure in the model; True when it locks the member."""
        reached = m.failures + 1 >= MAX_ATTEMPTS
        if reached:
            m.failures, m.locked_until = 0, self.now + timedelta(seconds=LOCKOUT)
        else:
            m.failures += 1
        m.consecutive += 1
        self.audit["verify_failed"] += 1
        locked = m.consecutive >= 100 or reached
        if locked:
            self.audit["locked_out"] += 1
        return locked

    def succeed(self, m: Model) -> None:
        m.failures = m.consecutive = 0
        m.locked_until = None
        self.audit["verify_ok"] += 1

    def live_code(self, m: Model) -> str | None:
        return m.live[0] if m.live is not None and m.live[2] > self.now else None

    def totp_window(self, m: Model) -> set[str]:
        if m.seed is None:
            return set()
        return {self.totp_code(m.seed, self.step() + d) for d in (-1, 0, 1)}

    def verify(self, m: Model, code: str, expect_ok: bool, what: str) -> Any:
        """Verify and compare with the model (which has already said whether the code is right)."""
        self.ops[what] += 1
        result = self.otp.verify(m.member, code)
        if m.locked(self.now):
            if result.ok or result.reason != "locked":
                self.violation(f"{what} on locked member {m.member.id} answered {result.ok} {result.reason}")
            return None
        if result.ok is not expect_ok:
            self.violation(f"{what} on {m.member.id}: expected ok={expect_ok}, got {result.ok} {result.reason}")
            return None
        if expect_ok:
            self.succeed(m)
        else:
            locked = self.fail(m)
            if (result.reason == "locked") is not locked:
                self.violation(f"{what} on {m.member.id}: lockout skipped or early ({result.reason}, model {m})")
        return result

    # ------------------------------------------------------------ operations on own members

    def op_send(self, m: Model) -> None:
        self.ops["send"] += 1
        hour_ago = self.now - timedelta(hours=1)
        m.sends = [t for t in m.sends if t > hour_ago]
        try:
            challenge = self.otp.send_challenge(m.member, channel=CODE)
        except LockedOut:
            if not m.locked(self.now):
                self.violation(f"send to {m.member.id}: LockedOut but not locked in the model")
            return
        except ThrottledError:
            self.audit["send_throttled"] += 1
            if len(m.sends) < SENDS_PER_HOUR or m.locked(self.now):
                self.violation(f"send to {m.member.id}: throttled after {len(m.sends)} sends in the hour")
            return
        if m.locked(self.now) or len(m.sends) >= SENDS_PER_HOUR:
            self.violation(f"send to {m.member.id}: sent although locked or over the hourly cap")
        self.audit["challenge_sent"] += 1
        m.sends.append(self.now)
        m.live = (self.last_code(), challenge.id, challenge.expires_at)

    def op_verify_code(self, m: Model) -> None:
        if m.live is None:
            return self.op_send(m)
        code, challenge_id, _ = m.live
        if m.seed is not None and code in self.totp_window(m):
            return None  # a six-digit clash with the authenticator window: not this operation's point
        ok = self.live_code(m) is not None
        usable = not m.locked(self.now)
        result = self.verify(m, code, ok, "verify_code" if ok else "verify_expired")
        if result is not None and ok and usable:
            m.live = None
            m.accepted_codes.append(code)
            self.accepted.append(f"code:{challenge_id}")
        return None

    def matched_step(self, m: Model, code: str) -> int | None:
        """The step the core matches ``code`` to: the first in the window after the last used one.

        Usually the current step; now and then (one in a million) two neighbouring steps share a code.
        """
        assert m.seed is not None
        return next((s for s in range(self.step() - 1, self.step() + 2)
                     if (m.last_step is None or s > m.last_step) and self.totp_code(m.seed, s) == code), None)

    def op_verify_totp(self, m: Model) -> None:
        assert m.seed is not None
        code = self.totp_code(m.seed)
        step = self.matched_step(m, code)
        ok = step is not None
        if not ok and code == self.live_code(m):
            return
        usable = not m.locked(self.now)
        result = self.verify(m, code, ok, "verify_totp" if ok else "replay_totp_step")
        if result is not None and ok and usable:
            m.last_step = step
            m.accepted_codes.append(code)
            self.accepted.append(f"totp:{m.member.id}:{step}")

    def op_verify_wrong(self, m: Model) -> None:
        taken = self.totp_window(m) | {m.live[0] if m.live else ""}
        code = next(c for c in (f"{self.rng.randrange(10**6):06d}" for _ in range(100)) if c not in taken)
        self.verify(m, code, False, "verify_wrong")

    def op_replay(self, m: Model) -> None:
        if not m.accepted_codes:
            return self.op_verify_wrong(m)
        code = self.rng.choice(m.accepted_codes[-5:])
        if code == self.live_code(m) or (m.seed is not None and self.matched_step(m, code) is not None):
            return None
        self.verify(m, code, False, "replay_code")
        return None

    def op_backup(self, m: Model) -> None:
        if not m.fresh_backup:
            self.ops["regenerate"] += 1
            m.used_backup += m.fresh_backup
            m.fresh_backup = self.otp.regenerate_backup_codes(m.member)
            self.audit["backup_codes_generated"] += 1
            return
        code = m.fresh_backup[0]
        usable = not m.locked(self.now)
        result = self.verify(m, code, True, "backup_code")
        if result is not None and usable:
            m.fresh_backup.pop(0)
            m.used_backup.append(code)
            self.audit["backup_code_used"] += 1
            self.accepted.append(f"backup:{m.member.id}:{code}")

    def op_backup_reuse(self, m: Model) -> None:
        if not m.used_backup:
            return self.op_backup(m)
        self.verify(m, self.rng.choice(m.used_backup), False, "backup_reuse")
        return None

    def op_unlock(self, m: Model) -> None:
        self.ops["unlock"] += 1
        self.otp.unlock(m.member, actor="soak")
        m.failures = m.consecutive = 0
        m.locked_until = None
        self.audit["unlocked"] += 1

    def one(self, m: Model) -> None:
        if m.locked(self.now) and self.rng.random() < 0.3:
            return self.op_unlock(m)
        r = self.rng.random()
        if r < 0.03:
            return self.op_backup(m)
        if r < 0.05:
            return self.op_backup_reuse(m)
        if r < 0.13:
            return self.op_replay(m)
        if r < 0.30:
            return self.op_verify_wrong(m)
        if m.channel == TOTP:
            return self.op_verify_totp(m) if r < 0.90 else self.op_send(m)  # a code as a fallback
        return self.op_send(m) if r < 0.62 else self.op_verify_code(m)

    # ------------------------------------------------------------ races

    def race(self, round_no: int, shared: dict[str, Model], pipe: Any, barrier: Any, leader: bool) -> None:
        """Both workers of a pair verify the same secret at once; the leader prepares it and hands it over."""
        kind = RACE_KINDS[round_no % len(RACE_KINDS)]
        m = shared[kind]
        key = ""
        if leader:
            if kind == "code":
                challenge = self.otp.send_challenge(m.member)
                self.audit["challenge_sent"] += 1
                secret, key = self.last_code(), f"code:{challenge.id}"
            elif kind == "backup":
                if not m.fresh_backup:
                    m.fresh_backup = self.otp.regenerate_backup_codes(m.member)
                    self.audit["backup_codes_generated"] += 1
                secret = m.fresh_backup.pop()
                key = f"backup:{m.member.id}:{secret}"
            else:
                assert m.seed is not None
                secret, key = self.totp_code(m.seed), f"totp:{m.member.id}:{self.step()}"
            pipe.send((secret, key))
        else:
            secret, key = pipe.recv()
        barrier.wait(timeout=60)
        result = self.otp.verify(m.member, secret, ip=f"10.0.{self.number}.1")
        barrier.wait(timeout=60)  # the leader prepares the next round only after both answered
        self.ops[f"race_{kind}"] += 1
        self.races.append((kind, round_no, result.ok, result.reason))
        if result.ok:
            self.audit["verify_ok"] += 1
            if kind == "backup":
                self.audit["backup_code_used"] += 1
            self.accepted.append(key)
        else:
            self.audit["verify_failed"] += 1
            if result.reason == "locked":
                self.audit["locked_out"] += 1  # not expected: the losers' failures are reset by each winner


def _worker_main(number: int, url: str, own_ids: list[int], ops: int, pair: tuple[Any, Any] | None, leader: bool,
                 out: Any, start_barrier: Any) -> None:
    try:
        w = Worker(number, url)
        started = time.perf_counter()
        for i in own_ids:
            member = Member(f"soak-{i}", email=f"soak-{i}@example.com")
            w.models.append(w.enroll(member, TOTP if i % 5 < 2 else CODE))
        shared: dict[str, Model] = {}
        if pair is not None:
            pipe = pair[0]
            group = number // 2
            for kind in RACE_KINDS:
                member = Member(f"soak-race-{group}-{kind}", email=f"soak-race-{group}-{kind}@example.com")
                channel = TOTP if kind == "totp" else CODE
                if leader:
                    shared[kind] = w.enroll(member, channel)
                    pipe.send(shared[kind].seed)
                else:
                    shared[kind] = Model(member, channel, seed=pipe.recv())
        setup_seconds = time.perf_counter() - started
        start_barrier.wait(timeout=300)
        started = time.perf_counter()
        round_no = 0
        for i in range(ops):
            w.clock.tick += 1
            if pair is not None and i % RACE_EVERY == RACE_EVERY - 1:
                w.race(round_no, shared, pair[0], pair[1], leader)
                round_no += 1
            else:
                w.one(w.rng.choice(w.models))
        elapsed = time.perf_counter() - started
        w.otp.close()
        out.put({"number": w.number, "audit": dict(w.audit), "ops": dict(w.ops), "accepted": w.accepted,
                 "violations": w.violations, "races": w.races, "seconds": elapsed, "setup_seconds": setup_seconds,
                 "members": len(own_ids) + (len(RACE_KINDS) if leader and pair is not None else 0)})
    except BaseException:  # noqa: BLE001 - reported to the parent, which fails the test with it
        out.put({"number": number, "error": traceback.format_exc()})


@pytest.fixture
def soak_url(pg_url: str | None) -> str:
    if pg_url is None:
        pytest.skip(PG_SKIP_REASON)
    truncate_all(pg_url)
    return pg_url


def test_soak_on_postgresql(soak_url: str) -> None:
    context = multiprocessing.get_context("fork")  # each worker builds its own OtpPro after the fork
    own_members = MEMBERS - (WORKERS // 2) * len(RACE_KINDS)
    per_worker = OPS // WORKERS
    out = context.Queue()
    start_barrier = context.Barrier(WORKERS)
    pairs: dict[int, tuple[Any, Any]] = {}
    for group in range(WORKERS // 2):
        left, right = context.Pipe()
        barrier = context.Barrier(2)
        pairs[2 * group], pairs[2 * group + 1] = (left, barrier), (right, barrier)
    processes = [context.Process(target=_worker_main, args=(
        n, soak_url, list(range(n, own_members, WORKERS)), per_worker, pairs.get(n), n % 2 == 0, out, start_barrier,
    )) for n in range(WORKERS)]
    wall = time.perf_counter()
    for p in processes:
        p.start()
    reports = []
    try:
        for _ in processes:
            reports.append(out.get(timeout=900))
            if "error" in reports[-1]:
                break  # its partner may wait for it forever: stop them all below
    finally:
        for p in processes:
            p.join(timeout=0 if reports and "error" in reports[-1] else 60)
            if p.is_alive():
                p.terminate()
                p.join()
    wall = time.perf_counter() - wall
    errors = [r["error"] for r in reports if "error" in r]
    assert not errors, errors[0]

    # What every worker saw agreed with its model (answers, lockouts, throttling).
    violations = [v for r in reports for v in r["violations"]]
    assert not violations, violations[:10]

    # Audit counts, per kind, equal what the workers did.
    expected: Counter[str] = Counter()
    for r in reports:
        expected.update(r["audit"])
    engine = create_engine(soak_url)
    try:
        with engine.connect() as conn:
            found = dict(conn.execute(select(audit_events.c.kind, func.count()).group_by(audit_events.c.kind)).all())
            rows = conn.execute(select(audit_events.c.member_id, audit_events.c.kind, audit_events.c.details).where(
                audit_events.c.kind.in_(["verify_failed", "locked_out"])).order_by(audit_events.c.id)).all()
            held = conn.execute(select(func.max(members.c.failures))).scalar_one()
            consumed = conn.execute(select(func.count()).select_from(challenges).where(
                challenges.c.consumed_at.is_not(None))).scalar_one()
            member_count = conn.execute(select(func.count()).select_from(members)).scalar_one()
    finally:
        engine.dispose()
    assert found == dict(+expected)
    assert member_count == MEMBERS

    # Nothing accepted twice: codes by challenge, backup codes, TOTP steps; every race had one winner.
    accepted = [key for r in reports for key in r["accepted"]]
    twice = [key for key, n in Counter(accepted).items() if n > 1]
    assert not twice, twice[:10]
    # Every consumed challenge is an accepted code: a sign-in code above, or a setup code: every member set up
    # the outbox (an app member as a second factor), the shared race members of each pair included.
    setup_by_code = own_members + (WORKERS // 2) * len(RACE_KINDS)
    assert consumed == sum(1 for key in accepted if key.startswith("code:")) + setup_by_code
    rounds: dict[tuple[int, str, int], list[bool]] = {}
    for r in reports:
        for kind, round_no, won, _reason in r["races"]:
            rounds.setdefault((r["number"] // 2, kind, round_no), []).append(won)
    assert rounds and all(sorted(wins) == [False, True] for wins in rounds.values()), [
        (k, v) for k, v in rounds.items() if sorted(v) != [False, True]][:5]

    # No lockout skipped: per member, every max_attempts-th consecutive failure is followed by locked_out.
    assert held < MAX_ATTEMPTS
    due: Counter[str] = Counter()
    locks: Counter[str] = Counter()
    for member_id, kind, details in rows:
        if kind == "verify_failed":
            if json.loads(details)["failures"] % MAX_ATTEMPTS == 0:
                due[member_id] += 1
        else:
            locks[member_id] += 1
    assert due == locks
    assert sum(locks.values()) > 0, "the soak never locked anyone out: it did not test lockouts"

    # The figures.
    ops: Counter[str] = Counter()
    for r in reports:
        ops.update(r["ops"])
    total = sum(ops.values())
    busiest = max(r["seconds"] for r in reports)
    print(f"\nsoak: {WORKERS} workers, {MEMBERS} members, {total} operations in {busiest:.1f} s "
          f"({total / busiest:.0f} ops/s); wall time {wall:.1f} s including enrolment "
          f"({max(r['setup_seconds'] for r in reports):.1f} s)")
    print("operations: " + ", ".join(f"{k} {v}" for k, v in sorted(ops.items())))
    print("audit events: " + ", ".join(f"{k} {v}" for k, v in sorted(found.items())))
    print(f"races: {len(rounds)} rounds, one winner each; accepted secrets {len(accepted)}, none twice; "
          f"lockouts {sum(locks.values())}, none skipped")
    assert total >= OPS - WORKERS * RACE_EVERY  # a few operations fall through to another (a clash skipped)
