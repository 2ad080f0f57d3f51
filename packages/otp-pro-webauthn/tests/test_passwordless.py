"""Passwordless sign-in (``passwordless = true``): a challenge for no member, answered by a discoverable
credential that names its member; through the core's generic first-factor calls. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from conftest import ORIGIN, SESSION
from soft_authenticator import SoftAuthenticator
from sqlalchemy import select
from test_ceremonies import register, sign_in

from otp_pro import ChannelUnavailable, Member, OtpPro
from otp_pro.storage.schema import challenges

ANN = Member(id="42", roles=["editor"], email="ann@example.com", name="Ann")


@pytest.fixture
def otp(make_otp) -> OtpPro:
    return make_otp(passwordless=True)


@pytest.fixture
def key(otp: OtpPro) -> SoftAuthenticator:
    made = SoftAuthenticator(ORIGIN)
    register(otp, ANN, made)
    return made


def passwordless(otp: OtpPro, key: SoftAuthenticator, binding: str = SESSION, **knobs: object):
    issued = otp.begin_first_factor_challenge("webauthn", binding=binding, ip="203.0.113.9")
    return otp.verify_first_factor("webauthn", key.get(issued.show, **knobs), binding=binding, ip="203.0.113.9")


def test_a_discoverable_credential_signs_its_member_in(otp, key):
    assert otp.first_factor_channels() == ["webauthn"]
    issued = otp.begin_first_factor_challenge("webauthn", binding=SESSION)
    options = issued.show["publicKey"]
    assert options["allowCredentials"] == [] and options["userVerification"] == "required"
    result = otp.verify_first_factor("webauthn", key.get(issued.show), binding=SESSION)
    assert result.ok and result.member_id == "42" and result.method == "webauthn" and result.factor_id
    [event] = otp.events(ANN, kinds=["verify_ok"])
    assert event.details["first_factor"] is True
    with otp.db.read() as conn:
        assert conn.execute(select(challenges.c.member_id).where(challenges.c.member_id.is_(None))).first()


def test_a_replayed_or_foreign_answer_is_refused(otp, key):
    issued = otp.begin_first_factor_challenge("webauthn", binding=SESSION)
    answer = key.get(issued.show)
    assert otp.verify_first_factor("webauthn", answer, binding="another-session").reason == "wrong_browser"
    assert otp.verify_first_factor("webauthn", answer, binding=SESSION).ok
    replay = otp.verify_first_factor("webauthn", answer, binding=SESSION)
    assert not replay.ok and replay.reason == "used"


def test_user_verification_is_required_without_a_password(otp, key):
    result = passwordless(otp, key, uv=False)
    assert not result.ok and result.reason == "user_not_verified" and result.member_id == "42"
    # As a second factor the site's "preferred" still accepts presence alone.
    assert sign_in(otp, ANN, key, uv=False).ok


def test_wrong_origin_and_relying_party_and_clones_are_refused_and_audited_on_the_member(otp, key):
    assert passwordless(otp, key, origin="https://examp1e.com").reason == "wrong_origin"
    assert passwordless(otp, key, rp_id="evil.example.net").reason == "wrong_rp_id"
    assert passwordless(otp, key).ok and passwordless(otp, key).ok
    cloned = passwordless(otp, key, count=1)
    assert not cloned.ok and cloned.reason == "counter_regressed"
    reasons = [e.details["reason"] for e in otp.events(ANN, kinds=["verify_failed"])]
    assert reasons == ["counter_regressed", "wrong_rp_id", "wrong_origin"]
    # Anyone can name a credential id: the member's own lockout is not touched.
    assert otp.status(ANN).locked_until is None and otp.verify(ANN, "000000").attempts_remaining == 4


def test_an_unknown_credential_names_nobody(otp, key):
    stranger = SoftAuthenticator(ORIGIN)
    stranger.user_handle = b"x"
    result = passwordless(otp, stranger)
    assert not result.ok and result.reason == "unknown_credential" and result.member_id is None


def test_failures_count_toward_the_address(make_otp):
    otp = make_otp(passwordless=True, site={"max_failed_verifications_per_hour_per_ip": 3})
    key = SoftAuthenticator(ORIGIN)
    register(otp, ANN, key)
    for _ in range(3):
        assert passwordless(otp, key, origin="https://evil.example.net").reason == "wrong_origin"
    limited = passwordless(otp, key)
    assert not limited.ok and limited.reason == "rate_limited" and limited.retry_after


def test_a_malformed_answer_is_not_counted(otp, key):
    otp.begin_first_factor_challenge("webauthn", binding=SESSION)
    assert otp.verify_first_factor("webauthn", "{", binding=SESSION).reason == "malformed"


def test_off_unless_the_site_turns_it_on(make_otp):
    otp = make_otp()
    assert otp.first_factor_channels() == []
    with pytest.raises(ChannelUnavailable):
        otp.begin_first_factor_challenge("webauthn", binding=SESSION)
    with pytest.raises(ChannelUnavailable):
        otp.verify_first_factor("webauthn", "{}", binding=SESSION)
    with pytest.raises(ChannelUnavailable):
        otp.begin_first_factor_challenge("totp", binding=SESSION)
