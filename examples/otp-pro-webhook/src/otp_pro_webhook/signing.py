"""The request signature: HMAC-SHA256 over ``<timestamp>.<body>``, for the sender and for receivers.

The sender puts the Unix time in ``X-OTP-Pro-Timestamp`` and
``sha256=<hex digest>`` in ``X-OTP-Pro-Signature``. A receiver recomputes the
digest over the raw body bytes with the shared secret, compares in constant
time, and refuses timestamps too far from its own clock (a replayed request).
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-OTP-Pro-Timestamp"
SIGNATURE_HEADER = "X-OTP-Pro-Signature"
SCHEME = "sha256="


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The value of ``X-OTP-Pro-Signature`` for ``body`` sent at ``timestamp`` (Unix seconds)."""
    digest = hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return SCHEME + digest.hexdigest()


def verify(secret: str, timestamp: str | None, body: bytes, signature: str | None, *, tolerance_seconds: int = 300,
           now: float | None = None) -> bool:
    """Whether a received request is authentic and fresh: for the receiving side of the webhook."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)
