"""The factor-type contract: what every factor type that is not delivered owes the core."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import select

from .. import FactorInfo, InvalidCode, IssuedChallenge, Member, OtpPro, SetupError, SetupInfo, VerifyResult
from ..factor_types import Description, FactorType
from ._clock import Clock
from ._spies import assert_no_leak, captured_log


class FactorTypeContract:
    """What every factor type owes the core, run against the type as the site would use it.

    Subclass it in a test module, set the class attributes, implement
    :meth:`answer`, and every ``test_*`` below runs against your type::

        class TestHotpContract(FactorTypeContract):
            factor_type = "hotp"
            distribution = "otp-pro-hotp"     # None for a plugin object passed in
            step_seconds = 0                  # how far the clock moves between answers

            def answer(self, setup, n):       # the n-th right answer (n = 0 confirms the setup)
                return pyotp.HOTP(setup.show["secret"]).at(n)

    The contract builds its own :class:`~otp_pro.OtpPro` (the ``otp`` fixture,
    redefined here) on a fresh SQLite file with ``channels = [<factor_type>]``;
    ``otp_plugins`` passes a plugin object that is not installed as a distribution.
    An answer is never asked for twice with the same ``n``: a right answer is used
    once. ``wrong_answer`` must be an answer of the right shape that proves nothing.

    A type that issues its own challenges (a passkey) also implements
    :meth:`answer_challenge`: the contract then asks ``otp.begin_challenge`` before
    every answer after the setup, and verifies with the session's binding.
    """

    factor_type: str = ""
    distribution: str | None = None
    step_seconds: float = 0
    wrong_answer: Any = "000000"

    def answer(self, setup: SetupInfo, n: int) -> Any:
        """The ``n``-th right answer of the factor set up with ``setup`` (n = 0 confirms the setup)."""
        raise NotImplementedError("a FactorTypeContract subclass says how to answer")

    def answer_challenge(self, setup: SetupInfo, issued: IssuedChallenge, n: int) -> Any:
        """For a type that issues challenges: the ``n``-th right answer (n >= 1) to ``issued`` of the factor set
        up with ``setup``."""
        raise NotImplementedError("a FactorTypeContract subclass of a type that issues challenges says how to answer")

    #: The binding the contract's "session" passes to begin_challenge and verify.
    binding = "contract-session"

    def _issues_challenge(self, otp: OtpPro) -> bool:
        kind = otp.channels[self.factor_type].factor_type
        return kind is not None and kind.issues_challenge

    def _verify(self, otp: OtpPro, member: Member, setup: SetupInfo, n: int) -> tuple[Any, VerifyResult]:
        """The ``n``-th answer (after a fresh challenge, for a type that issues them) and what verify said."""
        answer = self._answer(otp, member, setup, n)
        return answer, otp.verify(member, answer, binding=self.binding)

    def _answer(self, otp: OtpPro, member: Member, setup: SetupInfo, n: int) -> Any:
        if not self._issues_challenge(otp):
            return self.answer(setup, n)
        issued = otp.begin_challenge(member, self.factor_type, binding=self.binding)
        return self.answer_challenge(setup, issued, n)

    # ---------------------------------------------------------------- fixtures

    @pytest.fixture
    def otp_settings(self, tmp_path: Any) -> dict[str, Any]:
        from ._instances import TEST_SECRET_KEY

        return {"secret_key": TEST_SECRET_KEY, "database_url": f"sqlite:///{tmp_path / 'otp.sqlite3'}",
                "site_name": "Contract", "channels": [self.factor_type], "default_channel": self.factor_type,
                "max_attempts": 3}

    @pytest.fixture
    def otp(self, otp_settings: dict[str, Any], otp_plugins: list[object], otp_factory: Any) -> OtpPro:
        """The instance under contract (a project's own ``otp`` fixture does not apply here)."""
        made: OtpPro = otp_factory(otp_settings, plugins=otp_plugins)
        return made

    def _member(self, n: int = 1) -> Member:
        return Member(f"contract-{n}", email=f"member{n}@example.com", name=f"Member {n}")

    def _set_up(self, otp: OtpPro, clock: Clock, member: Member, label: str | None = None) -> SetupInfo:
        setup = otp.begin_setup(member, self.factor_type, label=label)
        otp.complete_setup(member, self.answer(setup, 0))
        return setup

    def _own(self, otp: OtpPro, member: Member) -> list[FactorInfo]:
        return [f for f in otp.factors(member) if f.kind == self.factor_type]

    # ------------------------------------------------------------------- tests

    def test_registered_and_described(self, otp: OtpPro) -> None:
        owners = [p for p in otp.plugins() if self.factor_type in p.factor_types]
        assert len(owners) == 1, f"expected one plugin registering {self.factor_type!r}, found {owners}"
        assert owners[0].error is None and owners[0].enabled
        if self.distribution is not None:
            assert owners[0].distribution == self.distribution
        channel = otp.channels[self.factor_type]
        kind = channel.factor_type
        assert isinstance(kind, FactorType) and not kind.delivers and type(kind).name == self.factor_type
        assert kind.label, "a factor type needs a label to show members"
        description = kind.describe()
        assert isinstance(description, Description) and description.input and description.hint

    def test_set_up_then_verified_with_each_new_answer(self, otp: OtpPro, clock: Clock) -> None:
        member = self._member()
        setup = self._set_up(otp, clock, member, label="My token")
        [factor] = self._own(otp, member)
        assert factor.label == "My token" and factor.is_default and factor.usable
        for n in (1, 2):
            clock.advance(self.step_seconds)
            _answer, result = self._verify(otp, member, setup, n)
            assert result.ok, result.reason
            assert result.factor_id == factor.id and result.channel == self.factor_type
        assert self._own(otp, member)[0].last_used_at is not None

    def test_an_answer_is_accepted_once(self, otp: OtpPro, clock: Clock) -> None:
        member = self._member()
        setup = self._set_up(otp, clock, member)
        clock.advance(self.step_seconds)
        answer, first = self._verify(otp, member, setup, 1)
        assert first.ok, first.reason
        replay = otp.verify(member, answer, binding=self.binding)
        # "used": the challenge the answer names was consumed by the first (a type that issues them).
        assert not replay.ok and replay.reason in ("invalid", "used")

    def test_concurrent_answers_are_accepted_once(self, otp: OtpPro, clock: Clock) -> None:
        member = self._member()
        setup = self._set_up(otp, clock, member)
        clock.advance(self.step_seconds)
        answer = self._answer(otp, member, setup, 1)
        barrier, results = threading.Barrier(12), []

        def attempt() -> None:
            barrier.wait()
            results.append(otp.verify(member, answer, binding=self.binding).ok)

        threads = [threading.Thread(target=attempt) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert results.count(True) == 1, results

    def test_a_wrong_answer_counts_toward_the_lockout(self, otp: OtpPro, clock: Clock) -> None:
        member = self._member()
        setup = self._set_up(otp, clock, member)
        clock.advance(self.step_seconds)
        # Asked for before the lock (begin_challenge refuses a locked member), answered after it.
        answer = self._answer(otp, member, setup, 1)
        for _ in range(otp.settings.max_attempts):
            assert not otp.verify(member, self.wrong_answer, binding=self.binding).ok
        locked = otp.verify(member, answer, binding=self.binding)
        assert not locked.ok and locked.reason == "locked"

    def test_a_wrong_answer_does_not_confirm_a_setup(self, otp: OtpPro) -> None:
        member = self._member()
        otp.begin_setup(member, self.factor_type)
        with pytest.raises((InvalidCode, SetupError)):  # SetupError: an answer the type cannot read
            otp.complete_setup(member, self.wrong_answer)
        assert self._own(otp, member) == []

    def test_two_factors_of_the_type_each_answer(self, otp: OtpPro, clock: Clock) -> None:
        member = self._member()
        first = self._set_up(otp, clock, member, label="first")
        second = self._set_up(otp, clock, member, label="second")
        ids = [f.id for f in self._own(otp, member)]
        assert len(ids) == 2
        clock.advance(self.step_seconds)
        assert self._verify(otp, member, first, 1)[1].factor_id == ids[0]
        assert self._verify(otp, member, second, 1)[1].factor_id == ids[1]

    def test_secret_sealed_and_never_shown(self, otp: OtpPro, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level("DEBUG")
        member = self._member()
        setup = self._set_up(otp, clock, member)
        shown = [str(v) for v in setup.show.values() if isinstance(v, str)]
        assert all(value not in repr(setup) for value in shown)
        from ..storage.schema import factors, members

        with otp.db.read() as conn:
            stored = [str(v) for row in conn.execute(select(factors)) for v in row if v is not None]
            stored += [str(v) for row in conn.execute(select(members)) for v in row if v is not None]
        events = "\n".join(repr(e) for e in otp.events(member))
        secret = setup.show.get("secret")
        if isinstance(secret, str):
            assert_no_leak([secret], {"the database": "\n".join(stored), "the audit log": events,
                                      "the log": captured_log(caplog, ())})
