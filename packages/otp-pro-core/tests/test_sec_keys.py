"""Key rotation: ``otp-pro keys rotate`` re-encrypts the TOTP seeds under the new ``secret_key``.

After the rotation the old key can be dropped from ``previous_secret_keys`` and
authenticator apps keep working. Trusted devices and backup codes are keyed
hashes of a token or code the site never keeps: they cannot be re-hashed, so they
keep working while the old key stays listed and stop working once it is removed
(the documented behaviour, docs/security.md); new ones are made with the new key.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from click.testing import CliRunner
from core_support import SECRET_KEY, base_settings
from sqlalchemy import select

from otp_pro import Member, OtpPro
from otp_pro.cli import cli, main
from otp_pro.crypto import KeyRing
from otp_pro.errors import ConfigurationError
from otp_pro.secret import Secret
from otp_pro.storage.schema import factors, members
from otp_pro.testing import Clock, enrol, settings_toml

NEW_KEY = "the-new-secret-key-" + "n" * 32
TOTP_MEMBER = Member("t1", email="tina@example.com")
CODE_MEMBER = Member("c1", email="carl@example.com")
PENDING_MEMBER = Member("p1", email="pat@example.com")


def _settings(url: str, key: str, previous: list[str]) -> dict[str, Any]:
    return base_settings(url, secret_key=key, previous_secret_keys=previous, channels=["outbox:code", "totp"],
                         default_channel="outbox:code")


def _sealed(conn: Any) -> dict[str, tuple[str | None, str | None, str | None]]:
    """Each member's sealed secrets as stored: (a factor's seed, a factor's confirmed address, a pending setup's
    seed)."""
    out: dict[str, tuple[str | None, str | None, str | None]] = {
        r.member_id: (None, None, r.pending_secret) for r in conn.execute(select(members))}
    for factor in conn.execute(select(factors)):
        _seed, _address, pending = out[factor.member_id]
        out[factor.member_id] = (factor.secret, factor.recipient, pending)
    return out


def _config(folder: Path, url: str, key: str, previous: list[str]) -> Path:
    path = folder / f"otp-pro-{len(list(folder.glob('otp-pro-*.toml')))}.toml"
    path.write_text(settings_toml(_settings(url, key, previous)))
    return path


@pytest.fixture
def before(backend: str, clock: Clock) -> Iterator[dict[str, Any]]:
    """Members set up under the old key: TOTP, a code channel with backup codes, a pending TOTP setup, devices."""
    otp = OtpPro(_settings(backend, SECRET_KEY, []), clock=clock)
    info = otp.begin_setup(TOTP_MEMBER, "totp")
    assert info.secret is not None
    app = pyotp.TOTP(info.secret)
    totp_backup = otp.complete_setup(TOTP_MEMBER, app.at(clock()))
    code_backup = enrol(otp, CODE_MEMBER)
    pending = otp.begin_setup(PENDING_MEMBER, "totp")
    assert pending.secret is not None
    device = otp.trust_device(TOTP_MEMBER, label="Laptop")
    with otp.db.read() as conn:
        stored = _sealed(conn)
    otp.close()
    yield {"url": backend, "app": app, "pending_app": pyotp.TOTP(pending.secret), "totp_backup": totp_backup,
           "code_backup": code_backup, "device": device, "stored": stored}


def test_keys_rotate_then_drop_the_old_key(before: dict[str, Any], tmp_path: Path, clock: Clock) -> None:
    url = before["url"]
    rotated_config = _config(tmp_path, url, NEW_KEY, [SECRET_KEY])
    result = CliRunner().invoke(cli, ["--config", str(rotated_config), "keys", "rotate", "--actor", "ops-ann"])
    assert result.exit_code == 0, result.output
    # t1's seed, the code member's confirmed address, p1's pending seed.
    assert "re-encrypted 3 stored secrets" in result.output
    assert "keep the old key in previous_secret_keys: 2 member(s) have backup codes made with it" in result.output
    assert "live trusted devices last until" in result.output

    both = OtpPro(_settings(url, NEW_KEY, [SECRET_KEY]), clock=clock)
    try:
        [event] = both.events(kinds=["keys_rotated"])
        assert event.actor == "ops-ann" and event.details["seeds"] == 3 and event.member_id is None
        # The stored seeds changed and open with the new key alone.
        new_only_ring = KeyRing([Secret(NEW_KEY)])
        with both.db.read() as conn:
            rows = _sealed(conn)
        t1_seed, p1_pending = rows["t1"][0], rows["p1"][2]
        assert t1_seed is not None and t1_seed != before["stored"]["t1"][0]
        assert new_only_ring.decrypt(t1_seed) == before["app"].secret
        assert p1_pending is not None and p1_pending != before["stored"]["p1"][2]
        assert new_only_ring.decrypt(p1_pending) == before["pending_app"].secret
        code_address = rows[CODE_MEMBER.id][1]
        assert code_address is not None and code_address != before["stored"][CODE_MEMBER.id][1]
        with pytest.raises(ConfigurationError):  # the old key alone no longer opens them
            KeyRing([Secret(SECRET_KEY)]).decrypt(t1_seed)
        # With the old key still listed, everything made before the rotation works.
        assert both.is_trusted(TOTP_MEMBER, before["device"])
        assert both.verify(CODE_MEMBER, before["code_backup"][0]).ok
        new_device = both.trust_device(CODE_MEMBER, label="Phone")
        new_backup = both.regenerate_backup_codes(TOTP_MEMBER)
    finally:
        both.close()

    clock.advance(30)
    new_only = OtpPro(_settings(url, NEW_KEY, []), clock=clock)
    try:
        # TOTP seeds, live and pending, survive the removal of the old key.
        assert new_only.verify(TOTP_MEMBER, before["app"].at(clock())).ok
        assert new_only.complete_setup(PENDING_MEMBER, before["pending_app"].at(clock()))
        # Made after the rotation: keyed with the new key, so they keep working.
        assert new_only.is_trusted(CODE_MEMBER, new_device)
        assert new_only.verify(TOTP_MEMBER, new_backup[0]).ok
        # The code member's factor still matches their address: its keyed hash was made again.
        assert new_only.send_challenge(CODE_MEMBER).channel == "outbox:code"
        # Made before: the documented price of dropping the old key early.
        assert not new_only.is_trusted(TOTP_MEMBER, before["device"])
        refused = new_only.verify(CODE_MEMBER, before["code_backup"][1])
        assert not refused.ok and refused.reason == "invalid"
    finally:
        new_only.close()
    # A second run is harmless: the seeds are re-encrypted again, still under the current key.
    again = CliRunner().invoke(cli, ["--config", str(_config(tmp_path, url, NEW_KEY, [SECRET_KEY])),
                                     "keys", "rotate", "--actor", "ops-ann"])
    assert again.exit_code == 0 and "re-encrypted 3 stored secrets" in again.output


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_keys_rotate_refuses_when_the_old_key_was_dropped_first(
    before: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = before["url"]
    other = "some-other-previous-key-" + "o" * 32
    code, out, err = _main(capsys, "--config", str(_config(tmp_path, url, NEW_KEY, [other])), "keys", "rotate",
                           "--actor", "ops")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("otp-pro: configuration error: a stored secret (an authenticator seed or a confirmed "
                          "address) cannot be decrypted with secret_key or previous_secret_keys")
    for secret in (SECRET_KEY, NEW_KEY, other):
        assert secret not in err
    # All or nothing: no seed was rewritten and no rotation was recorded.
    old = OtpPro(_settings(url, SECRET_KEY, []))
    try:
        with old.db.read() as conn:
            stored = _sealed(conn)
        assert stored == before["stored"]
        assert old.events(kinds=["keys_rotated"]) == []
    finally:
        old.close()


def test_keys_rotate_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/otp.sqlite3"
    code, _, err = _main(capsys, "--config", str(_config(tmp_path, url, NEW_KEY, [])), "keys", "rotate")
    assert code == 2 and err == ("otp-pro: previous_secret_keys is empty: set the new secret_key and list the old "
                                 "key in previous_secret_keys, then run this again\n")
    code, _, err = _main(capsys, "--config", str(tmp_path / "missing.toml"), "keys", "rotate")
    assert code == 2 and err.count("\n") == 1 and "no settings file at" in err
    code, _, err = _main(capsys, "--config", str(_config(tmp_path, url, NEW_KEY, ["too-short"])), "keys", "rotate")
    assert code == 2 and err.count("\n") == 1 and "previous_secret_keys" in err and "too-short" not in err
    code, _, err = _main(capsys, "--config", str(_config(tmp_path, url, NEW_KEY, [SECRET_KEY])), "keys", "spin")
    assert code == 2 and err.count("\n") == 1 and "No such command 'spin'" in err


def test_keys_rotate_with_nothing_to_rotate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/otp.sqlite3"
    config = str(_config(tmp_path, url, NEW_KEY, [SECRET_KEY]))
    # An empty site: `db upgrade` makes the database (commands other than init and db upgrade do not).
    assert CliRunner().invoke(cli, ["--config", config, "db", "upgrade"]).exit_code == 0
    result = CliRunner().invoke(cli, ["--config", config, "keys", "rotate", "--actor", "ops"])
    assert result.exit_code == 0, result.output
    assert result.output == ("re-encrypted 0 stored secrets (authenticator seeds, confirmed addresses, setups in "
                             "progress) with the current secret_key\n"
                             "no trusted device or backup code needs the old key: it can be removed from "
                             "previous_secret_keys\n")
