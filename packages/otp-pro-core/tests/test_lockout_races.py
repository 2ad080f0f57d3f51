"""The lockout holds under concurrency: 32 concurrent wrong attempts evaluate exactly ``max_attempts``.

For every way a member proves a factor (one-time code, backup code, TOTP code,
setup code; sign-in links, below), 32 threads on 16 OtpPro instances (16 application instances, two
requests each) send wrong attempts at once. Exactly ``max_attempts`` of them are
evaluated (one ``verify_failed`` each, one ``locked_out``); the others are refused
as locked without being looked at; and the right secret, sent once the burst is
over, is refused too. Both databases: on SQLite the write lock serialises the
attempts, on PostgreSQL the member's row lock does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pyotp
import pytest
from core_support import base_settings, burst
from sqlalchemy import func, select

from otp_pro import InvalidCode, LockedOut, Member, OtpPro, Reason, VerifyResult
from otp_pro.storage.schema import audit_events
from otp_pro.testing import outbox_code

INSTANCES = 16
THREADS = 32
MAX_ATTEMPTS = 5


@pytest.fixture
def fleet(backend: str, clock: Any) -> Iterator[list[OtpPro]]:
    settings = base_settings(backend, max_attempts=MAX_ATTEMPTS, lockout_seconds=900, max_sends_per_hour=1000,
                             max_sends_per_hour_per_recipient=1000)
    instances = [OtpPro(settings, clock=clock) for _ in range(INSTANCES)]
    yield instances
    for otp in instances:
        otp.close()


def audited(otp: OtpPro, member: Member, kind: str) -> int:
    with otp.db.read() as conn:
        return conn.execute(select(func.count()).select_from(audit_events).where(
            audit_events.c.member_id == member.id, audit_events.c.kind == kind)).scalar_one()


def assert_exactly_max_attempts_evaluated(otp: OtpPro, member: Member, results: list[Any],
                                          locked: Callable[[Any], bool]) -> None:
    unexpected = [r for r in results if not locked(r) and not (isinstance(r, (VerifyResult, InvalidCode)))]
    assert not unexpected, unexpected[:3]
    assert audited(otp, member, "verify_failed") == MAX_ATTEMPTS
    assert audited(otp, member, "locked_out") == 1
    assert sum(1 for r in results if locked(r)) >= THREADS - MAX_ATTEMPTS


def refused_as_locked(result: Any) -> bool:
    return isinstance(result, VerifyResult) and result.reason == Reason.LOCKED and not result.ok


def enrolled_by_code(otp: OtpPro, member: Member) -> list[str]:
    otp.begin_setup(member, "outbox:code")
    return otp.complete_setup(member, outbox_code(otp))


def test_one_time_codes(fleet: list[OtpPro], member: Member) -> None:
    otp = fleet[0]
    enrolled_by_code(otp, member)
    otp.send_challenge(member)
    right = outbox_code(otp)
    wrong = [f"{(int(right) + 1 + i) % 10**6:06d}" for i in range(THREADS)]
    results = burst(fleet, lambda o, i: o.verify(member, wrong[i]))
    assert_exactly_max_attempts_evaluated(otp, member, results, refused_as_locked)
    assert not any(r.ok for r in results)
    assert refused_as_locked(otp.verify(member, right))


def test_backup_codes(fleet: list[OtpPro], member: Member) -> None:
    otp = fleet[0]
    codes = enrolled_by_code(otp, member)
    wrong = [f"yyyyy{i:05d}".replace("0", "c").replace("1", "d") for i in range(THREADS)]
    results = burst(fleet, lambda o, i: o.verify(member, wrong[i]))
    assert_exactly_max_attempts_evaluated(otp, member, results, refused_as_locked)
    assert refused_as_locked(otp.verify(member, codes[0]))


def test_totp_codes(fleet: list[OtpPro], member: Member, clock: Any) -> None:
    otp = fleet[0]
    info = otp.begin_setup(member, "totp")
    app = pyotp.TOTP(info.secret)
    otp.complete_setup(member, app.at(clock()))
    clock.advance(60)
    right = app.at(clock())
    taken = {app.at(clock(), counter_offset=offset) for offset in (-1, 0, 1)}
    wrong = [c for c in (f"{n:06d}" for n in range(100_000, 200_000)) if c not in taken][:THREADS]
    results = burst(fleet, lambda o, i: o.verify(member, wrong[i]))
    assert_exactly_max_attempts_evaluated(otp, member, results, refused_as_locked)
    assert refused_as_locked(otp.verify(member, right))


def test_setup_codes(fleet: list[OtpPro], member: Member) -> None:
    otp = fleet[0]
    otp.begin_setup(member, "outbox:code")
    right = outbox_code(otp)
    wrong = [f"{(int(right) + 1 + i) % 10**6:06d}" for i in range(THREADS)]
    results = burst(fleet, lambda o, i: o.complete_setup(member, wrong[i]))
    assert_exactly_max_attempts_evaluated(otp, member, results, lambda r: isinstance(r, LockedOut))
    assert not any(isinstance(r, list) for r in results)  # no setup completed
    with pytest.raises(LockedOut):
        otp.complete_setup(member, right)


def test_totp_setup_codes(fleet: list[OtpPro], member: Member, clock: Any) -> None:
    otp = fleet[0]
    info = otp.begin_setup(member, "totp")
    app = pyotp.TOTP(info.secret)
    right = app.at(clock())
    taken = {app.at(clock(), counter_offset=offset) for offset in (-1, 0, 1)}
    wrong = [c for c in (f"{n:06d}" for n in range(300_000, 400_000)) if c not in taken][:THREADS]
    results = burst(fleet, lambda o, i: o.complete_setup(member, wrong[i]))
    assert_exactly_max_attempts_evaluated(otp, member, results, lambda r: isinstance(r, LockedOut))
    with pytest.raises(LockedOut):
        otp.complete_setup(member, right)


@pytest.fixture
def link_fleet(backend: str, clock: Any) -> Iterator[list[OtpPro]]:
    from test_tokens import Links

    settings = base_settings(backend, max_attempts=MAX_ATTEMPTS, lockout_seconds=900, max_sends_per_hour=1000,
                             max_sends_per_hour_per_recipient=1000, max_unknown_links_per_hour_per_ip=MAX_ATTEMPTS,
                             channels=["outbox:code", "outbox:link", "totp"])
    instances = [OtpPro(settings, clock=clock, plugins=[Links()]) for _ in range(INSTANCES)]
    yield instances
    for otp in instances:
        otp.close()


def test_magic_links_unknown_tokens(link_fleet: list[OtpPro], member: Member) -> None:
    """32 concurrent guessed tokens from one address: exactly the address's cap is looked up; the member's
    own real link from that address is then refused too (nothing is looked at past the cap)."""
    import secrets

    from test_tokens import add_link_factor, token_in

    otp = link_fleet[0]
    enrolled_by_code(otp, member)
    add_link_factor(otp, member)  # only a member's own factors are sent to
    guesses = [secrets.token_urlsafe(32) for _ in range(THREADS)]
    results = burst(link_fleet, lambda o, i: o.verify_token("link", guesses[i], ip="198.51.100.7"))
    assert all(isinstance(r, VerifyResult) and not r.ok for r in results), results[:3]
    assert sum(r.reason == Reason.UNKNOWN for r in results) == MAX_ATTEMPTS
    assert sum(r.reason == Reason.RATE_LIMITED for r in results) == THREADS - MAX_ATTEMPTS
    otp.send_challenge(member, channel="outbox:link")
    assert otp.verify_token("link", token_in(otp), ip="198.51.100.7").reason == Reason.RATE_LIMITED


def test_magic_links_of_a_locked_member(link_fleet: list[OtpPro], member: Member) -> None:
    """A member locked by wrong codes while 32 clicks of the live link and of stale links race: no click is
    accepted, and the stale links count nothing toward the lock."""
    from test_tokens import add_link_factor, token_in

    otp = link_fleet[0]
    enrolled_by_code(otp, member)
    add_link_factor(otp, member)  # only a member's own factors are sent to
    otp.send_challenge(member, channel="outbox:link")
    stale = token_in(otp)
    otp.send_challenge(member, channel="outbox:link")
    live = token_in(otp)
    for _ in range(MAX_ATTEMPTS):
        otp.verify(member, "000000")
    results = burst(link_fleet, lambda o, i: o.verify_token("link", live if i % 2 else stale))
    assert not any(getattr(r, "ok", True) for r in results), results[:3]
    assert {r.reason for r in results} <= {Reason.LOCKED, Reason.REPLACED}
    assert audited(otp, member, "verify_failed") == MAX_ATTEMPTS  # the wrong codes only
    assert audited(otp, member, "locked_out") == 1


def test_a_backup_code_on_sqlite_forgives_only_the_failures_counted_before_it(sqlite_url: str, clock: Any,
                                                                                monkeypatch: Any) -> None:
    """On SQLite a backup code is counted before its KDF runs; its success forgives the failures counted up
    to its own, and those counted while its KDF ran keep counting (a lock they reach would stand)."""
    from otp_pro import crypto

    otp = OtpPro(base_settings(sqlite_url, max_attempts=4), clock=clock)
    try:
        member = Member(id="slow-kdf", email="slow@example.com")
        codes = enrolled_by_code(otp, member)
        otp.verify(member, "wrongcode1")  # a failure judged before the race: forgiven by the success
        started, release = threading.Event(), threading.Event()
        real = crypto.backup_kdf

        def first_call_waits(*args: Any) -> bytes:
            if not started.is_set():
                started.set()
                assert release.wait(30)
            return real(*args)

        monkeypatch.setattr(crypto, "backup_kdf", first_call_waits)
        answer: list[VerifyResult] = []
        right = threading.Thread(target=lambda: answer.append(otp.verify(member, codes[0])))
        right.start()
        assert started.wait(30)  # the right code is counted; its KDF waits
        during = [otp.verify(member, f"wrongcode{n}") for n in (2, 3)]
        assert [r.attempts_remaining for r in during] == [1, 0] and during[1].reason == Reason.LOCKED
        release.set()
        right.join(30)
        assert answer and answer[0].ok and answer[0].method == "backup_code"
        # 1 judged before + the right code's own count forgiven; the 2 counted while it ran stand.
        assert otp.status(member, start_grace=False).locked_until is None
        assert otp.verify(member, "wrongcode4").attempts_remaining == 1
        assert refused_as_locked(otp.verify(member, "wrongcode5"))
    finally:
        otp.close()
