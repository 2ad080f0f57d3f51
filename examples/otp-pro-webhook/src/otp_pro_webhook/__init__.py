"""otp-pro-webhook: a transport that POSTs one-time codes and sign-in links, HMAC-signed, to an HTTPS endpoint."""

from __future__ import annotations

from importlib import metadata as _metadata

from .signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify
from .transport import WebhookMessage, WebhookTransport

try:
    __version__ = _metadata.version("otp-pro-webhook")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookMessage",
    "WebhookTransport",
    "__version__",
    "sign",
    "verify",
]
