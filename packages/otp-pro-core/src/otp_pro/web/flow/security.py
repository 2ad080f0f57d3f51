"""The request protections of the flow: the CSRF rule and the security headers, the same in every adapter."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, MutableMapping
from typing import Any

from ...errors import OtpProError
from .interface import Request, _Answer
from .state import K_CSRF

#: The form field and the header that carry the session's CSRF token.
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

#: Sent with every page of the flow (and, when the adapter is asked to, every page of the site).
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
    ("Pragma", "no-cache"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy",
     "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "
     "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
)


class CsrfError(OtpProError):
    """A POST without the session's CSRF token (an old page, or a forged form)."""


def secure(answer: _Answer) -> None:
    """Add :data:`SECURITY_HEADERS` to ``answer``, keeping any the handler set itself."""
    for name, value in SECURITY_HEADERS:
        if not answer.has_header(name):
            answer.headers.append((name, value))


def csrf_token(session: MutableMapping[str, Any]) -> str:
    """The session's CSRF token, made on first use."""
    token = session.get(K_CSRF)
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session[K_CSRF] = token
    return token


def csrf_ok(request: Request, session: Mapping[str, Any]) -> bool:
    """Whether ``request`` carries the session's token (``X-CSRF-Token`` header or ``csrf_token`` field).

    Compared in constant time; a session without a token accepts nothing.
    """
    expected = session.get(K_CSRF)
    sent = request.header(CSRF_HEADER) or request.form.get(CSRF_FIELD) or ""
    return isinstance(expected, str) and bool(expected) and isinstance(sent, str) and \
        secrets.compare_digest(expected.encode(), sent.encode()[:200])


def check_csrf(request: Request, session: Mapping[str, Any]) -> None:
    """Raise :class:`CsrfError` unless :func:`csrf_ok`."""
    if not csrf_ok(request, session):
        raise CsrfError("the form's security token is missing or out of date")
