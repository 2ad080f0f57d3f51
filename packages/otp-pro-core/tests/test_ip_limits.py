"""Per-IP limits across members: sends and failed verifications, one address's hourly caps.

Both are shared by every instance (a counter row per address and kind in the
database), hold under concurrency (32 threads on 16 instances, on SQLite and
PostgreSQL), refuse without looking at anything once an address is over its cap,
and never touch the members' own lockout or throttle. Sign-in links that
otp-pro never issued, the third per-IP limit, are tested in ``test_tokens.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
from click.testing import CliRunner
from core_support import base_settings, burst
from sqlalchemy import func, select

from otp_pro import Member, OtpPro, Reason, ThrottledError, VerifyResult
from otp_pro.cli import cli
from otp_pro.stats import collect
from otp_pro.storage.schema import audit_events, challenges
from otp_pro.storage.schema import members as member_rows
from otp_pro.testing import enrol, outbox_code

ATTACKER = "198.51.100.7"
NEIGHBOUR = "198.51.100.8"
INSTANCES = 16
THREADS = 32
CAP = 5


def members(count: int, prefix: str = "m") -> list[Member]:
    return [Member(id=f"{prefix}{i}", email=f"{prefix}{i}@example.com") for i in range(count)]


def wrong_code(right: str) -> str:
    return f"{(int(right) + 1) % 10**6:06d}"


def audited(otp: OtpPro, kind: str) -> int:
    with otp.db.read() as conn:
        return conn.execute(select(func.count()).select_from(audit_events).where(
            audit_events.c.kind == kind)).scalar_one()


def failures(otp: OtpPro, member: Member) -> int:
    """The member's own consecutive failures (their lockout's counter)."""
    with otp.db.read() as conn:
        return conn.execute(select(member_rows.c.consecutive_failures).where(
            member_rows.c.member_id == member.id)).scalar_one()


def challenges_recorded(otp: OtpPro) -> int:
    with otp.db.read() as conn:
        return conn.execute(select(func.count()).select_from(challenges)).scalar_one()


# ------------------------------------------------------------------- sends


def test_sends_from_one_address_to_many_members_are_capped(make_otp, clock):
    otp = make_otp(max_sends_per_hour_per_ip=3)
    crowd = members(5)
    for someone in crowd:
        enrol(otp, someone)
    for someone in crowd[:3]:
        otp.send_challenge(someone, ip=ATTACKER)
    recorded = challenges_recorded(otp)
    with pytest.raises(ThrottledError) as refused:
        otp.send_challenge(crowd[3], ip=ATTACKER)
    assert refused.value.limit == "ip_hourly" and 3500 < refused.value.retry_after <= 3601
    assert "from this network" in str(refused.value)
    assert challenges_recorded(otp) == recorded  # nothing sent
    event = otp.events(kinds=["ip_limited"])[0]
    assert (event.member_id, event.ip, event.details["limit"]) == (crowd[3].id, ATTACKER, "send")
    otp.send_challenge(crowd[3], ip=NEIGHBOUR)  # another address is not held back
    otp.send_challenge(crowd[4])  # nor a library call that names no address
    clock.advance(seconds=3601)
    otp.send_challenge(crowd[4], ip=ATTACKER)  # a new hour


def test_a_send_refused_by_the_members_own_throttle_is_not_counted_against_the_address(make_otp, clock):
    otp = make_otp(max_sends_per_hour_per_ip=2, resend_cooldown_seconds=60)
    ann, bob = members(2)
    enrol(otp, ann)
    enrol(otp, bob)
    clock.advance(seconds=61)  # past the setups' cooldown
    otp.send_challenge(ann, ip=ATTACKER)
    for _ in range(3):
        with pytest.raises(ThrottledError) as cooling:
            otp.send_challenge(ann, ip=ATTACKER)
        assert cooling.value.limit == "cooldown"
    otp.send_challenge(bob, ip=ATTACKER)  # the second send of the hour, not the fifth
    assert audited(otp, "ip_limited") == 0


@pytest.fixture
def fleet(backend: str, clock: Any) -> Iterator[list[OtpPro]]:
    settings = base_settings(backend, max_attempts=CAP, max_sends_per_hour_per_ip=CAP, backup_code_count=1,
                             max_failed_verifications_per_hour_per_ip=CAP)
    instances = [OtpPro(settings, clock=clock) for _ in range(INSTANCES)]
    yield instances
    for otp in instances:
        otp.close()


def test_concurrent_sends_from_one_address_never_pass_the_cap(fleet):
    otp = fleet[0]
    crowd = members(THREADS, "s")
    for someone in crowd:
        enrol(otp, someone)
    before = challenges_recorded(otp)
    results = burst(fleet, lambda o, i: o.send_challenge(crowd[i], ip=ATTACKER))
    refused = [r for r in results if isinstance(r, ThrottledError)]
    unexpected = [r for r in results if isinstance(r, Exception) and not isinstance(r, ThrottledError)]
    assert not unexpected, unexpected[:3]
    assert {r.limit for r in refused} == {"ip_hourly"} and len(refused) == THREADS - CAP
    assert challenges_recorded(otp) - before == CAP
    assert audited(otp, "ip_limited") == THREADS - CAP


# ------------------------------------------------------ failed verifications


def test_failed_verifications_across_members_are_capped_per_address(make_otp, clock):
    otp = make_otp(max_failed_verifications_per_hour_per_ip=3)
    crowd = members(4)
    for someone in crowd:
        enrol(otp, someone)
    otp.send_challenge(crowd[3])
    right = outbox_code(otp, crowd[3].email)
    for someone in crowd[:3]:  # one guess each: far from any member's lockout
        assert otp.verify(someone, "000000", ip=ATTACKER).reason == Reason.INVALID
    limited = otp.verify(crowd[3], right, ip=ATTACKER)  # over the cap: not even a right code is looked at
    assert limited.reason == Reason.RATE_LIMITED and 3500 < (limited.retry_after or 0) <= 3601
    assert failures(otp, crowd[3]) == 0  # the member is not charged
    event = otp.events(kinds=["ip_limited"])[0]
    assert (event.member_id, event.details["limit"]) == (crowd[3].id, "failed_verify")
    assert otp.verify(crowd[3], right, ip=NEIGHBOUR).ok
    clock.advance(seconds=3601)
    assert otp.verify(crowd[0], "000000", ip=ATTACKER).reason == Reason.INVALID


@pytest.mark.parametrize("method", ["code", "totp", "backup_code"])
def test_a_code_that_passes_gives_its_count_back(make_otp, clock, method):
    """Many members behind one office address signing in all day are never held back."""
    otp = make_otp(max_failed_verifications_per_hour_per_ip=2, backup_code_count=1)
    crowd = members(6)
    for someone in crowd:
        if method == "totp":
            secret = otp.begin_setup(someone, "totp").secret
            app = pyotp.TOTP(secret)
            otp.complete_setup(someone, app.at(clock()))
            clock.advance(30)
            assert otp.verify(someone, app.at(clock()), ip=ATTACKER).ok
        elif method == "backup_code":
            codes = enrol(otp, someone)
            assert otp.verify(someone, codes[0], ip=ATTACKER).ok
        else:
            enrol(otp, someone)
            otp.send_challenge(someone)
            assert otp.verify(someone, outbox_code(otp, someone.email), ip=ATTACKER).ok
    assert otp.verify(crowd[0], "000000", ip=ATTACKER).reason == Reason.INVALID
    assert otp.verify(crowd[1], "000000", ip=ATTACKER).reason == Reason.INVALID
    assert otp.verify(crowd[2], "000000", ip=ATTACKER).reason == Reason.RATE_LIMITED


@pytest.mark.parametrize("method", ["code", "totp", "backup_code"])
def test_concurrent_guesses_from_one_address_judge_exactly_the_cap(fleet, clock, method):
    """32 members, one wrong guess each, from one address at once: exactly ``CAP`` are judged; then a
    right code from that address is refused, and the members' own counters hold only the judged ones."""
    otp = fleet[0]
    crowd = members(THREADS + 1, method[0])
    right: str
    for someone in crowd:
        if method == "totp":
            secret = otp.begin_setup(someone, "totp").secret
            app = pyotp.TOTP(secret)
            otp.complete_setup(someone, app.at(clock()))
        else:
            codes = enrol(otp, someone)
            if method == "code":
                otp.send_challenge(someone)
                right = outbox_code(otp, someone.email)
            else:
                right = codes[0]
    if method == "totp":
        clock.advance(60)
        right = app.at(clock())
        taken = {app.at(clock(), counter_offset=offset) for offset in (-1, 0, 1)}
        guess = next(c for c in (f"{n:06d}" for n in range(100_000, 200_000)) if c not in taken)
    elif method == "backup_code":
        guess = "yyyyyyyyyy"
    else:
        guess = wrong_code(right)
    results = burst(fleet, lambda o, i: o.verify(crowd[i], guess, ip=ATTACKER))
    assert all(isinstance(r, VerifyResult) and not r.ok for r in results), [r for r in results][:3]
    judged = [r for r in results if r.reason == Reason.INVALID]
    assert len(judged) == CAP
    assert sum(1 for r in results if r.reason == Reason.RATE_LIMITED) == THREADS - CAP
    assert audited(otp, "verify_failed") == CAP
    assert sum(failures(otp, m) for m in crowd) == CAP
    assert otp.verify(crowd[-1], right, ip=ATTACKER).reason == Reason.RATE_LIMITED


# ---------------------------------------------------------------- reporting


def test_stats_show_each_limit_its_refusals_and_the_addresses_over_it(make_otp, tmp_path):
    otp = make_otp(max_sends_per_hour_per_ip=1, max_failed_verifications_per_hour_per_ip=1)
    ann, bob = members(2)
    enrol(otp, ann)
    enrol(otp, bob)
    otp.send_challenge(ann, ip=ATTACKER)
    with pytest.raises(ThrottledError):
        otp.send_challenge(bob, ip=ATTACKER)
    otp.verify(ann, "000000", ip=NEIGHBOUR)
    for _ in range(2):
        assert otp.verify(bob, "000000", ip=NEIGHBOUR).reason == Reason.RATE_LIMITED
    by_limit = {i.limit: i for i in collect(otp).ip_limits}
    assert list(by_limit) == ["send", "failed_verify", "unknown_link"]
    assert (by_limit["send"].cap, by_limit["send"].refusals, by_limit["send"].addresses,
            by_limit["send"].over_now) == (1, 1, 1, 1)
    assert (by_limit["failed_verify"].refusals, by_limit["failed_verify"].addresses,
            by_limit["failed_verify"].over_now) == (2, 1, 1)
    assert by_limit["unknown_link"].refusals == 0 and by_limit["unknown_link"].cap == 20


def test_the_stats_command_lists_the_per_ip_limits(tmp_path):
    url = f"sqlite:///{tmp_path / 'otp.db'}"
    config = tmp_path / "otp-pro.toml"
    config.write_text(f'secret_key = "{"k" * 43}"\ndatabase_url = "{url}"\nmax_sends_per_hour_per_ip = 1\n'
                      'channels = ["outbox:code"]\ndefault_channel = "outbox:code"\nresend_cooldown_seconds = 0\n')
    otp = OtpPro.from_file(config)
    try:
        ann, bob = members(2)
        enrol(otp, ann)
        enrol(otp, bob)
        otp.send_challenge(ann, ip=ATTACKER)
        with pytest.raises(ThrottledError):
            otp.send_challenge(bob, ip=ATTACKER)
    finally:
        otp.close()
    shown = CliRunner().invoke(cli, ["--config", str(config), "stats"])
    assert shown.exit_code == 0, shown.output
    section = shown.output.split("Per-IP limits")[1]
    send_row = next(line.split() for line in section.splitlines() if line.startswith("send"))
    assert send_row == ["send", "1", "1", "1", "1"]
    as_json = CliRunner().invoke(cli, ["--config", str(config), "stats", "--json"])
    assert {"limit": "send", "setting": "max_sends_per_hour_per_ip", "cap": 1, "refusals": 1, "addresses": 1,
            "over_now": 1} in json.loads(as_json.output)["ip_limits"]
