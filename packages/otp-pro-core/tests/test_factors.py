"""A member's factors: only their own are offered, sent to and accepted; several per member; changes audited.

Each test runs on SQLite and, when OTP_PRO_TEST_POSTGRES_URL is set, on PostgreSQL
(the ``backend`` fixture), with email sent to the loopback SMTP server.
"""

from __future__ import annotations

import dataclasses

import pyotp
import pytest
from core_support import base_settings, burst

from otp_pro import (
    ChannelUnavailable,
    FactorNeedsReconfirming,
    FactorNotEnrolled,
    InvalidFactorLabel,
    Member,
    NotEnrolled,
    OtpPro,
    PolicyError,
    SetupError,
    ThrottledError,
    UnknownFactor,
)
from otp_pro.testing import enrol, mailed_code, outbox_code


def _totp(otp, member, label=None):
    """Add an authenticator app; its pyotp.TOTP and the backup codes the setup returned."""
    info = otp.begin_setup(member, "totp", label=label)
    app = pyotp.TOTP(info.secret)
    codes = otp.complete_setup(member, app.at(otp.clock()))
    return app, codes


def _next_step(otp, clock):
    """Move the clock to the next TOTP step, so the same app's next code is a new one."""
    clock.advance(otp.settings.totp.period)


def _kinds(otp, member):
    return [f.kind for f in otp.factors(member)]


def test_totp_only_member_is_never_sent_or_accepted_an_emailed_code(otp, member, smtp_server):
    """A role allowing email does not let someone with the password downgrade an authenticator member."""
    _host, _port, mailbox = smtp_server
    _totp(otp, member)
    assert "email:code" in otp.requirement(member).channels  # the role would allow it
    before = len(mailbox.messages)
    with pytest.raises(FactorNotEnrolled) as refused:
        otp.send_challenge(member, channel="email:code")
    assert refused.value.channel == "email:code" and isinstance(refused.value, ChannelUnavailable)
    with pytest.raises(FactorNotEnrolled):
        otp.send_challenge(member, channel="outbox:code")
    with pytest.raises(ChannelUnavailable):  # the default factor is the app: nothing to send
        otp.send_challenge(member)
    assert len(mailbox.messages) == before
    assert otp.transports["outbox"].messages == []
    assert otp.status(member).channel == "totp"
    assert [f.kind for f in otp.status(member).factors] == ["totp"]


def test_a_code_sent_to_a_removed_factor_no_longer_signs_in(otp, member):
    enrol(otp, member, "outbox:code")
    _totp(otp, member)
    email_factor = next(f for f in otp.factors(member) if f.kind == "outbox:code")
    otp.send_challenge(member, channel="outbox:code")
    code = outbox_code(otp)
    otp.remove_factor(member, email_factor.id)
    result = otp.verify(member, code)
    assert not result.ok and result.reason == "invalid"
    with pytest.raises(FactorNotEnrolled):
        otp.send_challenge(member, channel="outbox:code")


def test_member_with_an_app_and_email_can_use_either(otp, member, clock, smtp_server):
    _host, _port, mailbox = smtp_server
    info = otp.begin_setup(member, "email:code", label="Inbox")
    first_codes = otp.complete_setup(member, mailed_code(mailbox, member.email))
    assert len(first_codes) == 10
    app, codes = _totp(otp, member, label="Phone app")
    assert codes == []  # backup codes come with the first factor only
    assert info.challenge is not None
    factors = {f.kind: f for f in otp.factors(member)}
    assert factors["email:code"].is_default and not factors["totp"].is_default
    assert factors["email:code"].label == "Inbox" and factors["totp"].label == "Phone app"
    assert factors["email:code"].recipient_hint == "a***@example.com"

    otp.send_challenge(member)  # the default factor: email
    emailed = otp.verify(member, mailed_code(mailbox, member.email))
    assert emailed.ok and emailed.method == "code" and emailed.factor_id == factors["email:code"].id
    _next_step(otp, clock)
    by_app = otp.verify(member, app.at(otp.clock()))
    assert by_app.ok and by_app.method == "totp" and by_app.factor_id == factors["totp"].id
    listed = {f.kind: f for f in otp.factors(member)}
    assert listed["totp"].last_used_at is not None and listed["email:code"].last_used_at is not None
    # A backup code from the first setup still works.
    assert otp.verify(member, first_codes[0]).ok


def test_two_authenticator_apps_each_verify_and_a_replayed_code_does_not(otp, member, clock):
    work, _ = _totp(otp, member, label="Work phone")
    home, codes = _totp(otp, member, label="Home tablet")
    assert codes == []
    ids = [f.id for f in otp.factors(member)]
    _next_step(otp, clock)
    first = otp.verify(member, work.at(otp.clock()))
    assert first.ok and first.factor_id == ids[0]
    second = otp.verify(member, home.at(otp.clock()))
    assert second.ok and second.factor_id == ids[1]
    replay = otp.verify(member, home.at(otp.clock()))
    assert not replay.ok
    assert sorted(e.details.get("factor_id") for e in otp.events(member, kinds=["verify_ok"])) == sorted(ids)


def test_a_changed_address_is_not_sent_to_until_reconfirmed(otp, member, smtp_server):
    """Someone who changed the profile's address must not receive the codes; re-confirming binds the new one."""
    _host, _port, mailbox = smtp_server
    otp.begin_setup(member, "email:code")
    otp.complete_setup(member, mailed_code(mailbox, member.email))
    factor = otp.factors(member)[0]
    moved = dataclasses.replace(member, email="mallory@example.net")
    before = len(mailbox.messages)
    with pytest.raises(FactorNeedsReconfirming) as refused:
        otp.send_challenge(moved)
    assert refused.value.factor_id == factor.id
    with pytest.raises(FactorNeedsReconfirming):
        otp.send_challenge(moved, channel="email:code")
    assert len(mailbox.messages) == before  # neither address got anything
    stale = otp.status(moved)
    assert stale.enrolled and stale.verification_needed  # still has to pass the second step
    assert stale.factors[0].needs_reconfirming and not stale.factors[0].usable
    assert otp.fallback_channels(moved) == ()
    # Back at the confirmed address, it works as before.
    otp.send_challenge(member)
    assert otp.verify(member, mailed_code(mailbox, member.email)).ok
    # Re-confirming at the new address keeps the factor (id, default) and binds it there.
    otp.begin_setup(moved, "email:code", reconfirm=factor.id)
    assert otp.complete_setup(moved, mailed_code(mailbox, "mallory@example.net")) == []
    after = otp.factors(moved)
    assert [f.id for f in after] == [factor.id] and not after[0].needs_reconfirming
    assert after[0].recipient_hint == "m***@example.net"
    with pytest.raises(FactorNeedsReconfirming):
        otp.send_challenge(member)  # the old address is the stale one now


def test_the_role_limits_which_factors_count(make_otp, member, clock):
    otp = make_otp(roles={"editor": {"requirement": "required", "channels": ["outbox:code", "totp"]}})
    enrol(otp, member, "outbox:code")
    app, _ = _totp(otp, member)
    narrowed = make_otp(roles={"editor": {"requirement": "required", "channels": ["outbox:code"]}})
    _next_step(otp, clock)
    refused = narrowed.verify(member, app.at(narrowed.clock()))
    assert not refused.ok
    status = narrowed.status(member)
    assert status.enrolled and not {f.kind: f for f in status.factors}["totp"].usable
    only_app = make_otp(roles={"editor": {"requirement": "required", "channels": ["totp"], "grace_days": 0}})
    app_factor = next(f for f in otp.factors(member) if f.kind == "totp")
    otp.remove_factor(member, app_factor.id)
    after = only_app.status(member)
    assert not after.enrolled and after.must_setup  # the email factor no longer counts for this role


def test_removing_the_last_allowed_factor_of_a_required_member_is_refused(make_otp, member):
    otp = make_otp(roles={"editor": {"requirement": "required"}})
    enrol(otp, member, "outbox:code")
    only = otp.factors(member)[0]
    with pytest.raises(PolicyError):
        otp.remove_factor(member, only.id)
    assert [f.id for f in otp.factors(member)] == [only.id]
    _totp(otp, member)
    otp.remove_factor(member, only.id)  # another factor is left: allowed
    left = otp.factors(member)
    assert [f.kind for f in left] == ["totp"] and left[0].is_default
    removed = otp.events(member, kinds=["factor_removed"])
    assert removed and removed[0].details["factor_id"] == only.id


def test_removing_the_very_last_factor_of_an_optional_member_unenrols_them(otp, member):
    codes = enrol(otp, member, "outbox:code")
    device = otp.trust_device(member, label="laptop")
    otp.remove_factor(member, otp.factors(member)[0].id)
    status = otp.status(member)
    assert not status.enrolled and status.backup_codes_remaining == 0
    assert not otp.verify(member, codes[0]).ok
    assert not otp.is_trusted(member, device)
    with pytest.raises(NotEnrolled):
        otp.send_challenge(member)


def test_rename_and_default_are_the_members_own(otp, member, make_member):
    enrol(otp, member, "outbox:code")
    _totp(otp, member)
    mail, app = otp.factors(member)
    otp.rename_factor(member, app.id, "  Work   phone ")
    otp.set_default_factor(member, app.id)
    renamed = {f.id: f for f in otp.factors(member)}
    assert renamed[app.id].label == "Work phone" and renamed[app.id].is_default
    assert not renamed[mail.id].is_default
    otp.rename_factor(member, app.id, None)
    assert otp.factors(member)[1].label == "Authenticator app" and otp.factors(member)[1].own_label is None
    other = make_member()
    for call in (lambda: otp.remove_factor(other, app.id), lambda: otp.rename_factor(other, app.id, "x"),
                 lambda: otp.set_default_factor(other, app.id), lambda: otp.remove_factor(member, "12ab"),
                 lambda: otp.remove_factor(member, 10**30)):
        with pytest.raises(UnknownFactor):
            call()
    with pytest.raises(InvalidFactorLabel):
        otp.rename_factor(member, app.id, "x" * 101)
    with pytest.raises(InvalidFactorLabel):
        otp.rename_factor(member, app.id, "bad\x00label")
    kinds = [e.kind for e in otp.events(member)]
    assert "factor_renamed" in kinds and "factor_default_changed" in kinds


def test_the_same_address_is_not_added_twice_but_a_second_one_is(otp, member, smtp_server):
    _host, _port, mailbox = smtp_server
    otp.begin_setup(member, "email:code")
    otp.complete_setup(member, mailed_code(mailbox, member.email))
    with pytest.raises(SetupError):
        otp.begin_setup(member, "email:code")
    backup = dataclasses.replace(member, email="ann.backup@example.org")
    otp.begin_setup(backup, "email:code", label="Backup inbox")
    otp.complete_setup(backup, mailed_code(mailbox, "ann.backup@example.org"))
    hints = sorted(f.recipient_hint for f in otp.factors(member))
    assert hints == ["a***@example.com", "a***@example.org"]
    # Each address gets the codes only while the record shows it.
    otp.send_challenge(backup, channel="email:code")
    assert mailbox.messages[-1]["To"] == "ann.backup@example.org"


def test_every_factor_change_revokes_trusted_devices_and_is_notified(otp, member):
    enrol(otp, member, "outbox:code")
    device = otp.trust_device(member, label="laptop")
    _totp(otp, member)
    assert not otp.is_trusted(member, device)
    device = otp.trust_device(member, label="laptop")
    otp.remove_factor(member, otp.factors(member)[1].id)
    assert not otp.is_trusted(member, device)
    completed = otp.events(member, kinds=["setup_completed"])
    assert sorted(e.details["factors"] for e in completed) == [1, 2]
    assert {"setup_completed", "factor_removed"} <= {e.kind for e in otp.events(member) if e.factor_change}


def test_a_member_with_no_factor_is_not_enrolled_whatever_the_role(otp, member):
    with pytest.raises(NotEnrolled):
        otp.send_challenge(member)
    assert otp.factors(member) == []
    assert not otp.verify(member, "123456").ok


def test_factors_of_one_member_are_not_anothers(otp, make_member):
    ann, bob = make_member(), make_member()
    enrol(otp, ann, "outbox:code")
    assert otp.factors(bob) == []
    assert isinstance(ann, Member)


# ------------------------------------------------------------------ concurrency


@pytest.fixture
def fleet(backend, clock):
    """Eight instances on the test's database: requests arriving at several application servers at once."""
    settings = base_settings(backend, max_attempts=100, max_sends_per_hour=1000, max_sends_per_hour_per_recipient=1000,
                             roles={"editor": {"requirement": "required"}})
    instances = [OtpPro(settings, clock=clock) for _ in range(8)]
    yield instances
    for instance in instances:
        instance.close()


def test_a_factor_removed_while_codes_are_sent_to_it_leaves_no_code_that_signs_in(fleet, member, clock):
    """32 sends to the member's email factor race its removal: whichever sends got in, no code they left verifies
    once the removal has committed, and the app factor is untouched."""
    otp = fleet[0]
    enrol(otp, member, "outbox:code")
    app, _ = _totp(otp, member)
    mail = next(f for f in otp.factors(member) if f.kind == "outbox:code")
    outboxes = [instance.transports["outbox"] for instance in fleet]

    def attempt(instance, i):
        if i == 0:
            return instance.remove_factor(member, mail.id)
        return instance.send_challenge(member, channel="outbox:code")

    results = burst(fleet, attempt)
    refused = [r for r in results[1:] if isinstance(r, Exception)]
    assert all(isinstance(r, (FactorNotEnrolled, ThrottledError)) for r in refused), refused[:3]
    assert results[0] is None  # the removal went through
    codes = {m.sensitive[0] for box in outboxes for m in box.messages if m.sensitive}
    assert codes, "no send got in before the removal: the race did not happen"
    for code in codes:
        assert not otp.verify(member, code).ok
    assert [f.kind for f in otp.factors(member)] == ["totp"]
    _next_step(otp, clock)
    assert otp.verify(member, app.at(otp.clock())).ok


def test_two_removals_racing_cannot_leave_a_required_member_without_a_factor(fleet, member):
    """A required member with two factors: every instance tries to remove one of them at once. Each removal
    reads the factors under the member's lock, so exactly one succeeds and one factor is left."""
    otp = fleet[0]
    enrol(otp, member, "outbox:code")
    _totp(otp, member)
    ids = [f.id for f in otp.factors(member)]
    results = burst(fleet, lambda instance, i: instance.remove_factor(member, ids[i % 2]), threads=16)
    done = [r for r in results if r is None]
    assert len(done) == 1, results
    assert all(isinstance(r, (PolicyError, UnknownFactor)) for r in results if r is not None)
    left = otp.factors(member)
    assert len(left) == 1 and left[0].is_default
    assert len(otp.events(member, kinds=["factor_removed"])) == 1
