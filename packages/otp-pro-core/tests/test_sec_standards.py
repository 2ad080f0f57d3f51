"""The numeric promises of NIST SP 800-63B and OWASP ASVS 4.0.3 that docs/security.md maps to the code.

Each test names the requirement it holds; the behaviour (single use, lockout,
replay) is tested where the feature lives (test_verification.py, test_totp.py,
test_concurrency.py): this file pins the numbers a refactor could quietly change.
"""

from __future__ import annotations

import base64
import math
import random
import secrets
from collections.abc import Callable
from typing import Any

import pyotp
import pytest
from sqlalchemy import select

from otp_pro import ConfigurationError, Member, OtpPro, Settings, crypto, totp
from otp_pro.storage.schema import members
from otp_pro.testing import enrol


def test_secrets_come_from_the_operating_system_csprng(monkeypatch: pytest.MonkeyPatch) -> None:
    """SP 800-63B 5.1.2.1, 5.1.3.2 (approved random bit generator); ASVS 2.7.6, V6.3.1."""
    def forbidden(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the random module's Mersenne Twister was used for a secret")

    for name in ("random", "randint", "randrange", "choice", "choices", "getrandbits"):
        monkeypatch.setattr(random, name, forbidden)
    used: list[str] = []
    for name in ("randbelow", "choice", "token_urlsafe", "token_bytes"):
        real = getattr(secrets, name)

        def spy(*args: Any, _real: Callable[..., Any] = real, _name: str = name) -> Any:
            used.append(_name)
            return _real(*args)

        monkeypatch.setattr(secrets, name, spy)
    code, backup, token = crypto.new_code(6), crypto.new_backup_code(), crypto.new_token()
    assert len(code) == 6 and code.isdigit() and len(backup) == 11 and len(token) >= 43
    assert {"randbelow", "choice", "token_urlsafe"} <= set(used)
    # pyotp draws seeds from secrets.SystemRandom (os.urandom), never from the random module's generator.
    assert isinstance(pyotp.random_base32.__globals__["random"], secrets.SystemRandom)
    assert len(base64.b32decode(totp.new_seed())) * 8 == 160


def test_one_time_codes_have_about_20_bits_and_cannot_be_configured_shorter(tmp_path: Any) -> None:
    """SP 800-63B 5.1.3.2 ("at least 20 bits"; NIST counts 6 digits, 19.93 bits, as meeting it); ASVS 2.7.6."""
    assert math.log2(10**6) > 19.9
    base = {"secret_key": "k" * 40, "database_url": f"sqlite:///{tmp_path}/x.sqlite3"}
    assert Settings.from_mapping(base).code_length == 6
    with pytest.raises(ConfigurationError, match="code_length"):
        Settings.from_mapping({**base, "code_length": 5})
    # Uniform over the whole range, leading zeros kept: 3,000 codes of 6 digits use every first digit.
    assert {crypto.new_code(6)[0] for _ in range(3000)} == set("0123456789")


def test_out_of_band_codes_expire_after_10_minutes_by_default(make_otp: Callable[..., OtpPro],
                                                             member: Member) -> None:
    """SP 800-63B 5.1.3.2 (invalid if not completed within 10 minutes); ASVS 2.7.2."""
    otp = make_otp()
    assert otp.settings.code_ttl_seconds == 600
    enrol(otp, member)
    challenge = otp.send_challenge(member)
    assert (challenge.expires_at - challenge.created_at).total_seconds() == 600


def test_backup_codes_entropy_salt_and_kdf(make_otp: Callable[..., OtpPro], member: Member) -> None:
    """SP 800-63B 5.1.2.1 (20 bits), 5.1.2.2 (salted KDF, salt of 32 bits or more); ASVS 2.6.2, 2.6.3."""
    bits = crypto.BACKUP_CODE_LENGTH * math.log2(len(crypto.BACKUP_ALPHABET))
    assert bits > 49  # well over 20; under 64, so the lockout applies to them too (5.2.2)
    otp = make_otp()
    other = Member("43", email="bob@example.com", name="Bob")
    enrol(otp, member)
    enrol(otp, other)
    with otp.db.read() as conn:
        salts = [row.backup_salt for row in conn.execute(select(members.c.backup_salt))]
    assert len(salts) == 2 and len(set(salts)) == 2  # one random salt per set
    assert all(len(bytes.fromhex(s)) * 8 >= 128 for s in salts)
    assert (crypto.SCRYPT_N, crypto.SCRYPT_R) == (2**14, 8)  # scrypt: a memory-hard password-hashing KDF


def test_totp_seeds_and_steps_meet_the_otp_device_rules(tmp_path: Any) -> None:
    """SP 800-63B 5.1.4.1 (key of 112 bits or more, nonce changes at least every 2 minutes); ASVS 2.8.1, 2.8.3."""
    assert len(base64.b32decode(totp.new_seed())) * 8 >= 112
    from otp_pro.errors import SetupError

    with pytest.raises(SetupError, match="128"):
        totp.check_seed(base64.b32encode(secrets.token_bytes(10)).decode())  # an 80-bit seed is refused
    base = {"secret_key": "k" * 40, "database_url": f"sqlite:///{tmp_path}/x.sqlite3"}
    assert Settings.from_mapping({**base, "totp": {"period": 120}}).totp.period == 120
    with pytest.raises(ConfigurationError, match=r"totp\.period"):
        Settings.from_mapping({**base, "totp": {"period": 121}})
    with pytest.raises(ConfigurationError, match=r"totp\.algorithm"):
        Settings.from_mapping({**base, "totp": {"algorithm": "MD5"}})


def test_backup_code_comparison_runs_over_every_stored_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    """ASVS V6.2.8 (constant time, no short-circuit): a match at the first place costs as much as none."""
    import hmac

    calls: list[int] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    stored = [secrets.token_bytes(32) for _ in range(10)]
    for candidate, expected in ((stored[0], 0), (stored[9], 9), (secrets.token_bytes(32), -1)):
        calls.clear()
        assert crypto.constant_time_in(candidate, stored) == expected
        assert len(calls) == 10


def test_smtp_starttls_verifies_the_server_certificate(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """ASVS V2.7.4 (secure channel to the out-of-band authenticator): STARTTLS is verified, never downgraded."""
    import ssl

    from aiosmtpd.controller import Controller

    from otp_pro.errors import DeliveryError
    from otp_pro.testing import Mailbox, free_port, self_signed_certificate

    cert, key = self_signed_certificate(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), tls_context=server_context,
                            require_starttls=True)
    controller.start()
    try:
        settings = {"secret_key": "k" * 40, "database_url": f"sqlite:///{tmp_path}/x.sqlite3", "site_name": "Example",
                    "channels": ["email:code"], "resend_cooldown_seconds": 0,
                    "providers": {"email": {"smtp_host": "127.0.0.1", "smtp_port": controller.port,
                                            "smtp_starttls": True, "from_address": "otp@example.com"}}}
        ann = Member("1", email="ann@example.com", name="Ann")
        # A certificate the client does not trust: the send fails; nothing goes out in clear.
        with OtpPro(settings, entry_points=False) as otp, pytest.raises(DeliveryError) as info:
            otp.begin_setup(ann, "email:code")
        assert "TLS certificate that does not verify" in str(info.value) and mailbox.messages == []
        # Trusted (as a real server's certificate is): the code arrives over TLS.
        monkeypatch.setenv("SSL_CERT_FILE", cert)
        with OtpPro(settings, entry_points=False) as otp:
            otp.begin_setup(ann, "email:code")
        [mail] = mailbox.messages
        assert mail["To"] == "ann@example.com"
    finally:
        controller.stop()
