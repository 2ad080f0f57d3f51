"""Registration and authentication with a software authenticator, and each refusal with its reason.

The authenticator (``soft_authenticator``) writes real WebAuthn structures (client data, authenticator data,
attestation "none", ECDSA P-256 signatures); py_webauthn verifies them through the factor type, and the core
keeps the challenge single use, bound to the session and short lived. Run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json

import pytest
from conftest import ORIGIN, SESSION
from soft_authenticator import SoftAuthenticator
from sqlalchemy import select

from otp_pro import InvalidCode, Member, OtpPro, SetupError
from otp_pro.storage.schema import factors


@pytest.fixture
def key() -> SoftAuthenticator:
    return SoftAuthenticator(ORIGIN)


def register(otp: OtpPro, member: Member, key: SoftAuthenticator, label: str = "Laptop", **knobs: object) -> int:
    setup = otp.begin_setup(member, "webauthn", label=label, binding=SESSION)
    otp.complete_setup(member, key.create(setup.show, **knobs), binding=SESSION)
    return next(f.id for f in otp.factors(member) if f.label == label)


def sign_in(otp: OtpPro, member: Member, key: SoftAuthenticator, binding: str = SESSION, **knobs: object):
    issued = otp.begin_challenge(member, "webauthn", binding=binding)
    return otp.verify(member, key.get(issued.show, **knobs), binding=binding)


def failures(otp: OtpPro, member: Member) -> list[str]:
    return [e.details["reason"] for e in otp.events(member) if e.kind == "verify_failed"]


def test_registration_keeps_the_public_key_and_the_credential_id_as_handle(otp, member, key):
    setup = otp.begin_setup(member, "webauthn", label="Laptop", binding=SESSION)
    options = setup.show["publicKey"]
    assert setup.show["ceremony"] == "create"
    assert options["rp"] == {"id": "example.com", "name": "Example"}
    assert options["attestation"] == "none" and options["authenticatorSelection"]["residentKey"] == "preferred"
    assert [p["alg"] for p in options["pubKeyCredParams"]] == [-7, -8, -257]
    # The user id is a keyed hash of the member's id, not the id or the email address.
    assert "42" not in options["user"]["id"] and options["user"]["name"] == "ann@example.com"
    backup = otp.complete_setup(member, key.create(setup.show), binding=SESSION)
    assert len(backup) == 10  # the first factor brings the backup codes
    [factor] = otp.factors(member)
    assert (factor.kind, factor.label) == ("webauthn", "Laptop")
    with otp.db.read() as conn:
        row = conn.execute(select(factors.c.secret, factors.c.handle, factors.c.last_step)).one()
    assert row.handle == key.id and row.last_step == 0
    kept = json.loads(otp.keys.decrypt(row.secret))
    assert kept["credential_id"] == key.id and kept["public_key"] and "challenge" not in kept
    assert [e.kind for e in otp.events(member)].count("setup_completed") == 1


def test_authentication_signs_in_and_moves_the_sign_count(otp, member, key):
    factor_id = register(otp, member, key)
    issued = otp.begin_challenge(member, "webauthn", binding=SESSION)
    assert issued.show["ceremony"] == "get" and issued.show["publicKey"]["rpId"] == "example.com"
    assert [c["id"] for c in issued.show["publicKey"]["allowCredentials"]] == [key.id]
    result = otp.verify(member, key.get(issued.show), binding=SESSION)
    assert result.ok and result.method == "webauthn" and result.factor_id == factor_id
    assert sign_in(otp, member, key).ok
    with otp.db.read() as conn:
        assert conn.execute(select(factors.c.last_step)).scalar_one() == 2
    [factor] = otp.factors(member)
    assert factor.last_used_at is not None


def test_a_replayed_assertion_is_refused(otp, member, key):
    register(otp, member, key)
    issued = otp.begin_challenge(member, "webauthn", binding=SESSION)
    answer = key.get(issued.show)
    assert otp.verify(member, answer, binding=SESSION).ok
    replay = otp.verify(member, answer, binding=SESSION)
    assert not replay.ok and replay.reason == "used"
    stolen = otp.verify(member, answer, binding="the-attackers-session")
    assert not stolen.ok and stolen.reason == "wrong_browser"
    assert sorted(failures(otp, member)) == ["used", "wrong_browser"]


def test_an_assertion_from_another_origin_is_refused(otp, member, key):
    register(otp, member, key)
    result = sign_in(otp, member, key, origin="https://examp1e.com")
    assert not result.ok and result.reason == "wrong_origin"
    assert failures(otp, member) == ["wrong_origin"]


def test_a_registration_from_another_origin_is_refused(otp, member, key):
    with pytest.raises(InvalidCode) as refused:
        register(otp, member, key, origin="https://evil.example.net")
    assert refused.value.result is not None and refused.value.result.reason == "wrong_origin"
    assert otp.factors(member) == []


def test_an_assertion_for_another_relying_party_is_refused(otp, member, key):
    register(otp, member, key)
    result = sign_in(otp, member, key, rp_id="evil.example.net")
    assert not result.ok and result.reason == "wrong_rp_id"


def test_a_registration_for_another_relying_party_is_refused(otp, member, key):
    with pytest.raises(InvalidCode) as refused:
        register(otp, member, key, rp_id="example.org")
    assert refused.value.result is not None and refused.value.result.reason == "wrong_rp_id"


def test_a_sign_count_that_goes_back_is_refused_and_audited_as_a_possible_clone(otp, member, key, caplog):
    register(otp, member, key)
    for _ in range(3):
        assert sign_in(otp, member, key).ok
    result = sign_in(otp, member, key, count=2)  # a copy of the key, made when its count was 2
    assert not result.ok and result.reason == "counter_regressed"
    [event] = [e for e in otp.events(member) if e.kind == "verify_failed"]
    assert event.details["reason"] == "counter_regressed" and event.channel == "webauthn"
    assert "possibly a cloned authenticator" in caplog.text
    # The genuine key, whose count is ahead, still signs in.
    assert sign_in(otp, member, key, count=4).ok


def test_an_authenticator_whose_count_stays_zero_signs_in_each_time(otp, member):
    synced = SoftAuthenticator(ORIGIN, counting=False)
    register(otp, member, synced)
    for _ in range(3):
        result = sign_in(otp, member, synced)
        assert result.ok, result.reason


def test_user_verification_required_but_not_performed_is_refused(make_otp, member, key):
    otp = make_otp(user_verification="required")
    with pytest.raises(InvalidCode) as refused:
        register(otp, member, key, uv=False)
    assert refused.value.result is not None and refused.value.result.reason == "user_not_verified"
    register(otp, member, key)
    result = sign_in(otp, member, key, uv=False)
    assert not result.ok and result.reason == "user_not_verified"
    assert sign_in(otp, member, key).ok


def test_user_verification_preferred_accepts_presence_alone(otp, member, key):
    register(otp, member, key, uv=False)
    assert sign_in(otp, member, key, uv=False).ok
    result = sign_in(otp, member, key, up=False)
    assert not result.ok and result.reason == "user_not_present"


def test_a_forged_signature_is_refused(otp, member, key):
    register(otp, member, key)
    issued = otp.begin_challenge(member, "webauthn", binding=SESSION)
    forged = json.loads(key.get(issued.show))
    forged["response"]["signature"] = json.loads(SoftAuthenticator(ORIGIN).get(issued.show))["response"]["signature"]
    result = otp.verify(member, json.dumps(forged), binding=SESSION)
    assert not result.ok and result.reason == "bad_signature"


def test_another_members_credential_answers_nothing(otp, member, key):
    register(otp, member, key)
    bob = Member(id="43", email="bob@example.com", name="Bob")
    bobs = SoftAuthenticator(ORIGIN)
    register(otp, bob, bobs)
    # Bob's key signs Ann's challenge: not one of Ann's credentials.
    issued = otp.begin_challenge(member, "webauthn", binding=SESSION)
    result = otp.verify(member, bobs.get(issued.show), binding=SESSION)
    assert not result.ok and result.reason == "invalid"


def test_a_credential_belongs_to_one_member(otp, member, key):
    register(otp, member, key)
    bob = Member(id="43", email="bob@example.com", name="Bob")
    with pytest.raises(SetupError, match="already registered"):
        register(otp, bob, key)
    assert otp.factors(bob) == []


def test_a_registration_answers_its_own_challenge_only(otp, member, key):
    otp.begin_setup(member, "webauthn", binding=SESSION)
    stale = otp.begin_setup(member, "webauthn", binding="an-older-page")
    otp.begin_setup(member, "webauthn", binding=SESSION)
    with pytest.raises(InvalidCode):
        otp.complete_setup(member, key.create(stale.show), binding=SESSION)


def test_several_passkeys_each_named_and_removable(otp, member):
    laptop, phone = SoftAuthenticator(ORIGIN), SoftAuthenticator(ORIGIN)
    first = register(otp, member, laptop, "Laptop")
    second = register(otp, member, phone, "Phone")
    assert [f.label for f in otp.factors(member)] == ["Laptop", "Phone"]
    issued = otp.begin_challenge(member, "webauthn", binding=SESSION)
    assert {c["id"] for c in issued.show["publicKey"]["allowCredentials"]} == {laptop.id, phone.id}
    assert otp.verify(member, phone.get(issued.show), binding=SESSION).factor_id == second
    otp.remove_factor(member, first)
    assert [e.kind for e in otp.events(member)].count("factor_removed") == 1
    assert not sign_in(otp, member, laptop).ok
    assert sign_in(otp, member, phone).ok


def test_malformed_answers_are_not_counted(otp, member, key):
    register(otp, member, key)
    otp.begin_challenge(member, "webauthn", binding=SESSION)
    for junk in ("{", '{"id": 1}', "[]", "x" * 20_000, '{"id": "a", "response": {}}'):
        result = otp.verify(member, junk, binding=SESSION)
        assert not result.ok and result.reason == "malformed"
    assert failures(otp, member) == []


def test_nothing_of_a_ceremony_is_logged_or_audited(otp, member, key, caplog):
    register(otp, member, key)
    issued = otp.begin_challenge(member, "webauthn", binding=SESSION)
    answer = json.loads(key.get(issued.show, origin="https://evil.example.net"))
    otp.verify(member, json.dumps(answer), binding=SESSION)
    text = caplog.text + repr([e.details for e in otp.events(member)]) + repr(issued)
    for secret in (issued.show["publicKey"]["challenge"], answer["response"]["signature"],
                   answer["response"]["clientDataJSON"]):
        assert secret not in text
