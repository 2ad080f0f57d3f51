"""The request protections of the extension: the CSRF token and the security headers."""

from __future__ import annotations

import secrets

from flask import request, session
from werkzeug.wrappers import Response

from ...errors import OtpProError
from .state import K_CSRF

#: The form field and the header that carry the session's CSRF token.
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

#: Sent with every page of the extension (and, with ``security_headers_app_wide``, every page).
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


def secure(response: Response) -> Response:
    """Add :data:`SECURITY_HEADERS` to ``response``, keeping any the view set itself."""
    for name, value in SECURITY_HEADERS:
        response.headers.setdefault(name, value)
    return response


def csrf_token() -> str:
    """The session's CSRF token, made on first use."""
    token = session.get(K_CSRF)
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session[K_CSRF] = token
    return token


def check_csrf() -> None:
    """Raise :class:`CsrfError` unless the request carries the session's token (form field or header)."""
    expected = session.get(K_CSRF)
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD) or ""
    if not isinstance(expected, str) or not expected or not isinstance(sent, str) or \
            not secrets.compare_digest(expected.encode(), sent.encode()[:200]):
        raise CsrfError("the form's security token is missing or out of date")

