"""TOTP (RFC 6238) with pyotp: seeds, matching with the step that matched, provisioning URI and QR."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from datetime import datetime

import pyotp

from .settings import TotpSettings

_STEP = struct.Struct(">Q")
_WORD = struct.Struct(">I")
_DIGESTS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}
# RFC 4226 recommends at least 128 bits; 160 (32 base32 chars) matches SHA1's block.
SEED_BASE32_LENGTH = 32


def new_seed() -> str:
    """A fresh base32 seed (160 bits from :mod:`secrets`)."""
    return pyotp.random_base32(SEED_BASE32_LENGTH)


def check_seed(seed: str) -> str:
    """Validate an imported base32 seed (at least 128 bits); return it normalised."""
    import base64
    import binascii

    from .errors import SetupError

    if not isinstance(seed, str):
        raise SetupError("a TOTP seed must be a base32 string")
    cleaned = seed.replace(" ", "").replace("-", "").upper().rstrip("=")
    try:
        raw = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except (binascii.Error, ValueError):
        raise SetupError("the TOTP seed is not valid base32") from None
    if len(raw) < 16:
        raise SetupError(f"the TOTP seed has {len(raw) * 8} bits; at least 128 are needed")
    return cleaned


def _totp(seed: str, cfg: TotpSettings) -> pyotp.TOTP:
    return pyotp.TOTP(seed, digits=cfg.digits, digest=_DIGESTS[cfg.algorithm], interval=cfg.period)


def step_at(when: datetime, cfg: TotpSettings) -> int:
    """The time-step counter at ``when``."""
    return int(when.timestamp()) // cfg.period


def code_at_step(seed: str, step: int, cfg: TotpSettings) -> str:
    """The code for counter ``step``."""
    return _totp(seed, cfg).generate_otp(step)


def match(seed: str, code: str, when: datetime, cfg: TotpSettings, *, after_step: int | None) -> int | None:
    """The time step ``code`` is valid for within ``valid_window`` of ``when``, or None.

    Steps at or before ``after_step`` (already used) never match, so a code cannot
    be replayed. Every candidate is compared in constant time.
    """
    if len(code) != cfg.digits or not code.isdigit():
        return None
    now_step = step_at(when, cfg)
    # The seed is decoded once (pyotp decodes it again for every candidate step); same RFC 4226 truncation.
    key = base64.b32decode(seed + "=" * (-len(seed) % 8), casefold=True)
    digest = _DIGESTS[cfg.algorithm]
    modulo = 10 ** cfg.digits
    typed = code.encode()
    found: int | None = None
    for step in range(now_step - cfg.valid_window, now_step + cfg.valid_window + 1):
        if after_step is not None and step <= after_step:
            continue
        mac = hmac.new(key, _STEP.pack(step), digest).digest()
        offset = mac[-1] & 0x0F
        value = (_WORD.unpack_from(mac, offset)[0] & 0x7FFFFFFF) % modulo
        if hmac.compare_digest(f"{value:0{cfg.digits}d}".encode(), typed) and found is None:
            found = step
    return found


def provisioning_uri(seed: str, account: str, issuer: str, cfg: TotpSettings) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app scans."""
    return _totp(seed, cfg).provisioning_uri(name=account, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """The URI as an SVG QR code (segno), sized for a settings page."""
    import segno  # only setup pages draw QR codes: keep it out of every start-up

    return segno.make(uri, error="m").svg_inline(scale=5, title="Authenticator app QR code")
