"""TOTP through the public API: RFC 6238 Appendix B vectors, replay, window, algorithms,
seed encryption and key rotation."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

import pyotp
import pytest
from core_support import SECRET_KEY, base_settings

from otp_pro import Member, OtpPro, SetupError
from otp_pro.storage.schema import factors
from otp_pro.testing import enrol

# RFC 6238 Appendix B: seeds are the ASCII strings below; 8-digit codes at these Unix times.
SEEDS = {
    "SHA1": b"12345678901234567890",
    "SHA256": b"12345678901234567890123456789012",
    "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
VECTORS = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize("algorithm", ["SHA1", "SHA256", "SHA512"])
def test_rfc6238_appendix_b_vectors_through_setup_and_verify(make_otp, clock, algorithm):
    column = {"SHA1": 1, "SHA256": 2, "SHA512": 3}[algorithm]
    otp = make_otp(totp={"digits": 8, "period": 30, "algorithm": algorithm})
    member = Member(id=f"rfc-{algorithm}", email="rfc@example.com")
    seed = base64.b32encode(SEEDS[algorithm]).decode()
    first_time, *rest = VECTORS
    clock.now = datetime.fromtimestamp(first_time[0], timezone.utc)
    otp.begin_setup(member, "totp", seed=seed)
    otp.complete_setup(member, first_time[column])
    for row in rest:
        clock.now = datetime.fromtimestamp(row[0], timezone.utc)
        result = otp.verify(member, row[column])
        assert result.ok and result.method == "totp", (algorithm, row[0])


def test_totp_code_cannot_be_replayed_even_in_the_window(otp, member, clock):
    info = otp.begin_setup(member, "totp")
    app = pyotp.TOTP(info.secret)
    otp.complete_setup(member, app.at(clock()))
    clock.advance(30)
    code = app.at(clock())
    assert otp.verify(member, code).ok
    assert not otp.verify(member, code).ok
    clock.advance(15)  # same code still inside the ±1 step window
    assert not otp.verify(member, code).ok
    # An older step than the last used one is refused too.
    clock.advance(30)
    older = app.at(clock(), counter_offset=-1)
    assert otp.verify(member, app.at(clock())).ok
    assert not otp.verify(member, older).ok


def test_totp_window(otp, member, clock):
    info = otp.begin_setup(member, "totp")
    app = pyotp.TOTP(info.secret)
    otp.complete_setup(member, app.at(clock()))
    clock.advance(300)
    assert otp.verify(member, app.at(clock(), counter_offset=1)).ok  # phone a bit fast
    clock.advance(300)
    assert not otp.verify(member, app.at(clock(), counter_offset=2)).ok  # too far


def test_totp_setup_needs_the_right_code_and_gives_uri_and_qr(otp, member, clock):
    info = otp.begin_setup(member, "totp")
    assert info.provisioning_uri.startswith("otpauth://totp/Example:ann%40example.com?")
    assert "issuer=Example" in info.provisioning_uri
    assert info.qr_svg.startswith("<svg") and "</svg>" in info.qr_svg
    assert info.secret not in repr(info)
    wrong = pyotp.TOTP(pyotp.random_base32()).at(clock())
    from otp_pro import InvalidCode

    with pytest.raises(InvalidCode):
        otp.complete_setup(member, wrong)
    assert not otp.status(member).enrolled
    otp.complete_setup(member, pyotp.TOTP(info.secret).at(clock()))
    assert otp.status(member).channel == "totp"


def test_imported_seed_is_checked(otp, member):
    with pytest.raises(SetupError):
        otp.begin_setup(member, "totp", seed="not base32!")
    with pytest.raises(SetupError):
        otp.begin_setup(member, "totp", seed="JBSWY3DPEHPK3PXP")  # 80 bits
    with pytest.raises(SetupError):
        otp.begin_setup(member, "outbox:code", seed="JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")


def test_seed_is_encrypted_and_key_rotation_keeps_members_working(backend, clock, member):
    first = OtpPro(base_settings(backend), clock=clock)
    info = first.begin_setup(member, "totp")
    app = pyotp.TOTP(info.secret)
    first.complete_setup(member, app.at(clock()))
    token = first.trust_device(member, label="laptop")
    codes = first.regenerate_backup_codes(member)
    with first.db.read() as conn:
        stored = conn.execute(factors.select()).first().secret
    assert info.secret not in stored and base64.b32decode(info.secret) not in stored.encode()
    first.close()

    new_key = "rotated-key-" + "y" * 40
    rotated = OtpPro(base_settings(backend, secret_key=new_key, previous_secret_keys=[SECRET_KEY]), clock=clock)
    clock.advance(30)
    assert rotated.verify(member, app.at(clock())).ok  # old seed decrypts with the previous key
    assert rotated.is_trusted(member, token)  # device hashed with the previous key
    assert rotated.verify(member, codes[0]).ok  # backup codes remember their key
    assert rotated.rotate_keys(actor="ops") == 1
    rotated.close()

    # After re-encryption the old key is no longer needed for the seed.
    only_new = OtpPro(base_settings(backend, secret_key=new_key), clock=clock)
    clock.advance(30)
    assert only_new.verify(member, app.at(clock())).ok
    assert not only_new.is_trusted(member, token)  # devices made under the old key need it
    only_new.close()


def test_totp_member_also_accepts_backup_codes(otp, member, clock):
    codes = enrol(otp, member, "totp")
    assert otp.verify(member, codes[3]).method == "backup_code"
