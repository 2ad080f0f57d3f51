"""Nothing secret is stored in clear: the database after a full run holds no code, backup code, token or seed."""

from __future__ import annotations

import base64
import re
import sqlite3
from pathlib import Path

import pyotp
from core_support import base_settings
from sqlalchemy import text

from otp_pro import Member, OtpPro
from otp_pro.storage.schema import metadata
from otp_pro.testing import outbox_code


def _full_run(otp: OtpPro, clock) -> list[str]:
    """Exercise every kind of secret; return each secret value that was handed out."""
    secrets_seen: list[str] = []
    ann = Member(id="ann", email="ann@example.com")
    otp.begin_setup(ann, "outbox:code")
    secrets_seen.append(outbox_code(otp))
    backup = otp.complete_setup(ann, secrets_seen[-1])
    secrets_seen += backup
    for _ in range(3):
        clock.advance(31)
        otp.send_challenge(ann)
        secrets_seen.append(outbox_code(otp))
    otp.verify(ann, secrets_seen[-1])
    otp.verify(ann, backup[0])
    secrets_seen += otp.regenerate_backup_codes(ann)
    secrets_seen.append(otp.trust_device(ann, label="laptop"))
    bob = Member(id="bob", email="bob@example.com")
    info = otp.begin_setup(bob, "totp")
    assert info.secret is not None
    secrets_seen.append(info.secret)
    otp.complete_setup(bob, pyotp.TOTP(info.secret).at(clock()))
    secrets_seen.append(otp.trust_device(bob, label="phone"))
    return secrets_seen


def _forms(secret: str) -> list[bytes]:
    """The clear forms a secret could be stored in."""
    out = {secret, secret.replace("-", ""), secret.upper(), secret.replace("-", "").upper()}
    found = [s.encode() for s in out]
    if re.fullmatch(r"[A-Z2-7]+=*", secret) and len(secret) >= 16:
        found.append(base64.b32decode(secret + "=" * (-len(secret) % 8)))
    return found


def test_sqlite_file_holds_no_secret_in_clear(tmp_path, clock):
    db_file = tmp_path / "otp.sqlite3"
    otp = OtpPro(base_settings(f"sqlite:///{db_file}"), clock=clock)
    handed_out = _full_run(otp, clock)
    otp.close()
    conn = sqlite3.connect(db_file)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    raw = b"".join(p.read_bytes() for p in Path(tmp_path).glob("otp.sqlite3*"))
    assert len(raw) > 10_000
    for secret in handed_out:
        for form in _forms(secret):
            assert form not in raw, f"a secret of length {len(secret)} is stored in clear"


def test_postgresql_rows_hold_no_secret_in_clear(backend, clock):
    otp = OtpPro(base_settings(backend), clock=clock)
    handed_out = _full_run(otp, clock)
    with otp.db.read() as conn:
        dump = "\n".join(
            str(tuple(row)) for table in metadata.sorted_tables for row in conn.execute(table.select())
        )
        if otp.db.is_postgresql:
            dump += str(conn.execute(text("SELECT * FROM otp_pro_alembic_version")).all())
    otp.close()
    assert "ann" in dump  # the dump really has the rows
    for secret in handed_out:
        for form in _forms(secret):
            assert form.decode("latin-1") not in dump
