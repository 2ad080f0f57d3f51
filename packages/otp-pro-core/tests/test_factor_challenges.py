"""A factor type that issues its own challenge and is answered with JSON, not digits (the shape of a passkey).

The rules are the core's: a challenge is single use, bound to the session that asked for it, short lived; an
answer is judged under the member's lock and counts like a code; the type's counter never goes back; the
type's own refusals carry their reason into the result and the audit log. Run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from core_support import SoftKey, SoftKeyFactor, softkey_plugin
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from otp_pro import (
    ChannelUnavailable,
    FactorNotEnrolled,
    InvalidCode,
    IssuedChallenge,
    LockedOut,
    Member,
    OtpPro,
    SetupError,
    SetupInfo,
)
from otp_pro.storage.schema import challenges, factors
from otp_pro.testing import FactorTypeContract, mailed_code

SESSION = "session-binding-1"


@pytest.fixture
def otp(make_otp: Callable[..., OtpPro]) -> OtpPro:
    return make_otp(plugins=[softkey_plugin], channels=["softkey", "totp", "email:code"], default_channel="totp",
                    max_attempts=5)


@pytest.fixture
def key() -> SoftKey:
    return SoftKey()


def enrol(otp: OtpPro, member: Member, key: SoftKey, label: str = "Blue key") -> int:
    setup = otp.begin_setup(member, "softkey", label=label, binding=SESSION)
    otp.complete_setup(member, key.register(setup.show), binding=SESSION)
    return next(f.id for f in otp.factors(member) if f.label == label)


def test_registered_with_a_json_answer_which_makes_what_the_factor_keeps(otp, member, key):
    factor_id = enrol(otp, member, key)
    [factor] = otp.factors(member)
    assert (factor.id, factor.kind, factor.label) == (factor_id, "softkey", "Blue key")
    with otp.db.read() as conn:
        sealed = conn.execute(select(factors.c.secret).where(factors.c.id == factor_id)).scalar_one()
    kept = json.loads(otp.keys.decrypt(sealed))
    # The factor keeps the public key the registration answer made, not the pending setup's challenge.
    assert kept["key_id"] == key.key_id and "public_key" in kept and "challenge" not in kept


def test_a_challenge_answered_once_in_its_own_session(otp, member, key):
    factor_id = enrol(otp, member, key)
    issued = otp.begin_challenge(member, "softkey", binding=SESSION)
    assert isinstance(issued, IssuedChallenge) and issued.show["keys"] == [key.key_id]
    assert issued.show["challenge"] not in repr(issued)
    answer = key.sign(issued.show)
    result = otp.verify(member, answer, binding=SESSION)
    assert result.ok and result.method == "softkey" and result.factor_id == factor_id
    replay = otp.verify(member, answer, binding=SESSION)
    assert not replay.ok and replay.reason == "used" and replay.attempts_remaining == 4
    [event] = [e for e in otp.events(member) if e.kind == "verify_failed"]
    assert event.details["reason"] == "used"
    # Only the challenge's keyed hash is stored.
    with otp.db.read() as conn:
        stored = [str(v) for row in conn.execute(select(challenges)) for v in row if v is not None]
    assert not any(issued.show["challenge"] in value for value in stored)


def test_a_challenge_answered_from_another_session_is_refused(otp, member, key):
    enrol(otp, member, key)
    answer = key.sign(otp.begin_challenge(member, "softkey", binding=SESSION).show)
    for binding in ("another-session", None):
        refused = otp.verify(member, answer, binding=binding)
        assert not refused.ok and refused.reason == "wrong_browser"
    # The refusals did not use the challenge up: its own session still answers it.
    assert otp.verify(member, answer, binding=SESSION).ok


def test_an_old_challenge_expires_and_a_new_one_replaces_it(otp, member, key, clock):
    enrol(otp, member, key)
    late = key.sign(otp.begin_challenge(member, "softkey", binding=SESSION).show)
    clock.advance(SoftKeyFactor.challenge_seconds + 1)
    refused = otp.verify(member, late, binding=SESSION)
    assert not refused.ok and refused.reason == "expired"
    first = otp.begin_challenge(member, "softkey", binding=SESSION)
    second = otp.begin_challenge(member, "softkey", binding=SESSION)
    assert otp.verify(member, key.sign(first.show), binding=SESSION).reason == "replaced"
    assert otp.verify(member, key.sign(second.show), binding=SESSION).ok
    # Another session's challenge is not replaced by this one's.
    other = otp.begin_challenge(member, "softkey", binding="phone-session")
    otp.begin_challenge(member, "softkey", binding=SESSION)
    assert otp.verify(member, key.sign(other.show), binding="phone-session").ok


def test_an_unknown_challenge_and_a_bad_signature_count_as_failures(otp, member, key):
    enrol(otp, member, key)
    made_up = key.sign({"challenge": "not-issued-by-the-server-at-all-0123456789"})
    assert otp.verify(member, made_up, binding=SESSION).reason == "invalid"
    issued = otp.begin_challenge(member, "softkey", binding=SESSION)
    forged = json.loads(key.sign(issued.show))
    forged["counter"] += 7  # the signature no longer covers what is sent
    result = otp.verify(member, json.dumps(forged), binding=SESSION)
    assert not result.ok and result.reason == "bad_signature" and result.attempts_remaining == 3


def test_a_sign_count_that_goes_back_is_refused_as_a_possible_clone(otp, member, key):
    enrol(otp, member, key)
    for _ in range(3):
        assert otp.verify(member, key.sign(otp.begin_challenge(member, "softkey", binding=SESSION).show),
                          binding=SESSION).ok
    key.counter = 1  # a copy of the key, made when its count was 1
    cloned = otp.verify(member, key.sign(otp.begin_challenge(member, "softkey", binding=SESSION).show),
                        binding=SESSION)
    assert not cloned.ok and cloned.reason == "counter_regressed"
    failed = [e for e in otp.events(member) if e.kind == "verify_failed"]
    assert failed[-1].details["reason"] == "counter_regressed" and failed[-1].channel == "softkey"


def test_a_key_whose_count_stays_zero_signs_in_each_time(otp, member):
    still = SoftKey(counting=False)
    enrol(otp, member, still)
    for _ in range(3):
        result = otp.verify(member, still.sign(otp.begin_challenge(member, "softkey", binding=SESSION).show),
                            binding=SESSION)
        assert result.ok, result.reason


def test_begin_challenge_refusals(otp, member, key):
    with pytest.raises(FactorNotEnrolled):
        otp.begin_challenge(member, "softkey", binding=SESSION)
    enrol(otp, member, key)
    with pytest.raises(ValueError, match="binding"):
        otp.begin_challenge(member, "softkey", binding="")
    with pytest.raises(ChannelUnavailable, match="issues no challenge"):
        otp.begin_challenge(member, "totp", binding=SESSION)
    for _ in range(5):
        otp.verify(member, "000000")
    with pytest.raises(LockedOut):
        otp.begin_challenge(member, "softkey", binding=SESSION)


def test_a_json_answer_from_a_member_without_such_a_factor_is_malformed_and_not_counted(otp, member, key, clock):
    setup = otp.begin_setup(member, "totp")
    import pyotp

    otp.complete_setup(member, pyotp.TOTP(setup.secret).at(clock()))
    answer = key.sign({"challenge": "x" * 43})
    result = otp.verify(member, answer, binding=SESSION)
    assert not result.ok and result.reason == "malformed"
    assert not [e for e in otp.events(member) if e.kind == "verify_failed"]


def test_codes_still_answer_for_a_member_with_a_key_too(otp, member, key, clock):
    import pyotp

    setup = otp.begin_setup(member, "totp")
    otp.complete_setup(member, pyotp.TOTP(setup.secret).at(clock()))
    enrol(otp, member, key)
    clock.advance(30)  # the setup used this step's code
    assert otp.verify(member, pyotp.TOTP(setup.secret).at(clock())).method == "totp"


def test_a_registration_answer_of_another_shape_is_malformed(otp, member):
    otp.begin_setup(member, "softkey", binding=SESSION)
    with pytest.raises(InvalidCode) as refused:
        otp.complete_setup(member, "123456", binding=SESSION)
    assert refused.value.result is not None and refused.value.result.reason == "malformed"


def test_concurrent_answers_to_one_challenge_are_accepted_once(otp, member, key):
    enrol(otp, member, key)
    answer = key.sign(otp.begin_challenge(member, "softkey", binding=SESSION).show)
    barrier, results = threading.Barrier(16), []

    def attempt() -> None:
        barrier.wait()
        results.append(otp.verify(member, answer, binding=SESSION))

    threads = [threading.Thread(target=attempt) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [r.ok for r in results].count(True) == 1
    # Judged one at a time: "used" until the failures reach max_attempts (5), "locked" from then on.
    assert {r.reason for r in results if not r.ok} == {"used", "locked"}


def test_concurrent_challenges_of_one_key_move_its_count_once_each(otp, member, key):
    """Eight sessions each answer their own challenge with the same sign count: one wins, the rest are
    refused as a count that did not grow (what a cloned key looks like)."""
    enrol(otp, member, key)
    key.counter = 5
    answers = []
    for n in range(8):
        issued = otp.begin_challenge(member, "softkey", binding=f"s{n}")
        answers.append((f"s{n}", key._answer(issued.show["challenge"])))
    barrier, results = threading.Barrier(8), []

    def attempt(binding: str, answer: str) -> None:
        barrier.wait()
        results.append(otp.verify(member, answer, binding=binding))

    threads = [threading.Thread(target=attempt, args=pair) for pair in answers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [r.ok for r in results].count(True) == 1
    assert {r.reason for r in results if not r.ok} == {"counter_regressed", "locked"}


class TestSoftKeyContract(FactorTypeContract):
    """The contract kit runs for a type that issues challenges too."""

    factor_type = "softkey"
    distribution = None
    wrong_answer: Any = SoftKey().sign({"challenge": "never-issued-challenge-value-0123456789abcdef"})

    @pytest.fixture
    def otp_plugins(self) -> list[object]:
        return [softkey_plugin]

    @pytest.fixture(autouse=True)
    def _keys(self) -> None:
        self._devices: dict[str, SoftKey] = {}

    def _device(self, setup: SetupInfo) -> SoftKey:
        return self._devices.setdefault(setup.show["challenge"], SoftKey())

    def answer(self, setup: SetupInfo, n: int) -> Any:
        return self._device(setup).register(setup.show)

    def answer_challenge(self, setup: SetupInfo, issued: IssuedChallenge, n: int) -> Any:
        return self._device(setup).sign(issued.show)


def test_a_key_is_registered_once_across_members(otp, member, key):
    enrol(otp, member, key)
    other = Member(id="43", roles=["editor"], email="bob@example.com", name="Bob")
    for who in (member, other):
        setup = otp.begin_setup(who, "softkey", label="Same key", binding=SESSION)
        with pytest.raises(SetupError, match="already registered"):
            otp.complete_setup(who, key.register(setup.show), binding=SESSION)
    assert [f.label for f in otp.factors(member)] == ["Blue key"] and otp.factors(other) == []
    # The database holds the rule too, whatever a race between two members' setups would do.
    with otp.db.write() as conn, pytest.raises(IntegrityError):
        conn.execute(factors.insert().values(member_id="43", kind="softkey", is_default=True, created_at=otp.clock(),
                                             handle=key.key_id))


def test_an_issued_challenge_is_no_delivery(otp, member, key, smtp_server, clock):
    """delivery_status and the throttle see sends only: a passkey's challenges neither show nor count."""
    otp.begin_setup(member, "email:code")
    otp.complete_setup(member, mailed_code(smtp_server[2], member.email))
    clock.advance(120)  # past the send cooldown
    enrol(otp, member, key)
    for _ in range(otp.settings.max_sends_per_hour + 1):
        otp.begin_challenge(member, "softkey", binding=SESSION)
    latest = otp.delivery_status(member)
    assert latest is not None and latest.channel == "email:code"
    assert otp.send_challenge(member, channel="email:code").channel == "email:code"
