"""Same-browser binding: a random per-browser cookie whose keyed hash the core stores with the link.

When ``providers.magic_links.same_browser`` is on, the page that asks for a link
calls :func:`ensure_binding` with the request's ``Cookie`` header, sets the
returned ``Set-Cookie`` header when there is one, and passes the value as
``binding=`` to ``send_challenge``. The POST from the confirmation page then
carries the cookie back (``SameSite=Lax`` lets it through for a same-site form)
and :func:`otp_pro_magic_links.consume` hands it to ``verify_token``.
"""

from __future__ import annotations

import re
import secrets
from http.cookies import CookieError, SimpleCookie

#: ``__Host-`` makes browsers insist on ``Secure``, ``Path=/`` and no ``Domain``:
#: a sibling subdomain cannot plant or overwrite it.
COOKIE_NAME = "__Host-otp_pro_magic_link"
#: One year: the cookie identifies a browser, not a link, so it may outlive many links.
COOKIE_MAX_AGE = 365 * 24 * 3600
_VALUE = re.compile(r"^[A-Za-z0-9_-]{32,128}$")


def new_binding() -> str:
    """A fresh binding value: 256 bits from :mod:`secrets`, URL- and cookie-safe."""
    return secrets.token_urlsafe(32)


def binding_cookie(value: str, *, name: str = COOKIE_NAME, max_age: int = COOKIE_MAX_AGE, secure: bool = True) -> str:
    """The ``Set-Cookie`` header value for ``value``: ``HttpOnly; Secure; SameSite=Lax; Path=/``.

    ``secure=False`` is only for plain-http development servers; it cannot be
    combined with the ``__Host-`` name prefix (browsers would drop the cookie).
    """
    if not _VALUE.match(value):
        raise ValueError("a binding value must come from new_binding()")
    if not secure and name.startswith(("__Host-", "__Secure-")):
        raise ValueError(f"a cookie named {name!r} must be Secure")
    parts = [f"{name}={value}", "Path=/", f"Max-Age={int(max_age)}", "HttpOnly", "SameSite=Lax"]
    if secure:
        parts.insert(3, "Secure")
    return "; ".join(parts)


def read_binding(cookie_header: str | None, *, name: str = COOKIE_NAME) -> str | None:
    """The binding value in a request's ``Cookie`` header, or None (absent or not well formed)."""
    if not cookie_header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(cookie_header)
    except CookieError:
        return None
    morsel = jar.get(name)
    if morsel is None or not _VALUE.match(morsel.value):
        return None
    return morsel.value


def ensure_binding(
    cookie_header: str | None, *, name: str = COOKIE_NAME, secure: bool = True
) -> tuple[str, str | None]:
    """The browser's binding value and, when a new one was made, the ``Set-Cookie`` header to send.

    Reusing an existing cookie keeps a member's earlier tab working for the
    newest link; a fresh value is made only for a browser that has none.
    """
    value = read_binding(cookie_header, name=name)
    if value is not None:
        return value, None
    value = new_binding()
    return value, binding_cookie(value, name=name, secure=secure)
