"""What the extension keeps about a login: its keys in the Flask session and the helpers that read and change them.

The session holds the member id, a random *login id* made at each login, and
the login id the second step was passed for: a new login, another browser or a
cleared session asks again. Anything worth a session fixation is followed by a
rotation (:func:`rotate`).
"""

from __future__ import annotations

import math
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any, TypedDict
from urllib.parse import urlsplit

from flask import current_app, g, request, session

from ..gate import SessionFacts

# Session keys. Each starts with ``otp_pro_`` so it cannot clash with the site's own keys.
K_MEMBER = "otp_pro_member"  # the signed-in member's id
K_LOGIN = "otp_pro_login"  # the login id, new at each login
K_VERIFIED = "otp_pro_verified"  # the login id the second step was passed for
K_CSRF = "otp_pro_csrf"
K_BINDING = "otp_pro_binding"  # ties a sign-in link, and a setup, to the login that asked for it
K_SENT = "otp_pro_sent"  # where the last code went: {"at", "hint", "channel", "label", "challenge"[, "failed"]}
K_NEXT = "otp_pro_next"  # where to go once the second step is passed
K_REAUTH = "otp_pro_reauth"  # {"login", "until"}: password + code confirmed before changing settings
K_SETUP = "otp_pro_setup"  # the channel being set up
K_SETUP_FACTOR = "otp_pro_setup_factor"  # {"label", "reconfirm"}: the factor being added (or re-confirmed)
K_ATTEMPTS = "otp_pro_attempts"  # attempts left before a lockout, shown on the verify page

#: The keys a rotation in the middle of a login keeps: the login goes on, anything else is dropped.
LOGIN_KEYS = (K_MEMBER, K_LOGIN, K_BINDING, K_NEXT, K_SENT)

# Per-request cache in ``flask.g``: the member and its status are looked up once per request.
G_MEMBER = "otp_pro_member_obj"
G_STATUS = "otp_pro_status"
G_DECISION = "otp_pro_decision"

#: The trusted-device cookie's default name (``__Host-`` is put before it when the cookie is ``Secure``).
DEVICE_COOKIE = "otp_pro_device"

#: A sign-in link token or a binding, as this extension makes them.
TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,512}$")
#: Form fields are cut to this length before they reach the core.
MAX_FIELD = 256


def safe_next(value: object, default: str = "/") -> str:
    """``value`` when it is a path on this site (``/x``, not ``//evil`` or ``https://evil``), else ``default``."""
    if not isinstance(value, str) or not value or len(value) > 2000:
        return default
    if not value.startswith("/") or value.startswith("//") or "\\" in value or any(ord(c) < 32 for c in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def next_url(default: str) -> str:
    """Where this login goes once the second step is passed (``default`` when nothing safe was asked for)."""
    return safe_next(session.get(K_NEXT), default)


def form_field(name: str) -> str:
    """A form field of the request, cut to :data:`MAX_FIELD` characters ("" when missing)."""
    value = request.form.get(name, "")
    return value[:MAX_FIELD] if isinstance(value, str) else ""


class Client(TypedDict):
    """The request's address and user agent, passed to the core as keywords."""

    ip: str | None
    user_agent: str | None


def client() -> Client:
    """The request's address and user agent, as the core records them in the audit trail."""
    return {"ip": request.remote_addr, "user_agent": (request.user_agent.string or "")[:300] or None}


def device_label() -> str:
    """The label of a trusted device: the browser's user agent."""
    agent = request.user_agent.string or "browser"
    return agent[:120]


def rotate(*, keep: tuple[str, ...] = LOGIN_KEYS) -> None:
    """Start a new session holding only ``keep``: a planted session id is worth nothing afterwards."""
    kept = {key: session[key] for key in keep if key in session}
    session.clear()
    session.update(kept)
    regenerate = getattr(current_app.session_interface, "regenerate", None)
    if callable(regenerate):
        regenerate(session)
    for key in (G_MEMBER, G_STATUS):
        g.pop(key, None)


def restart() -> None:
    """Clear the whole session and rotate it (a new login, or a logout)."""
    session.clear()
    rotate(keep=())


def is_verified() -> bool:
    """Whether this login passed the second step."""
    return SessionFacts.is_verified_login(session.get(K_VERIFIED), session.get(K_LOGIN))


def mark_verified() -> None:
    """Record that this login passed the second step, in a rotated session."""
    rotate()
    session[K_VERIFIED] = session.get(K_LOGIN)
    session.pop(K_ATTEMPTS, None)


def binding() -> str:
    """The browser binding of this login (made when missing), given to the core with each send and setup."""
    value = current_binding()
    if value is None:
        value = secrets.token_urlsafe(32)
        session[K_BINDING] = value
    return value


def current_binding() -> str | None:
    """The browser binding of this login, or None when it has none (nothing is made: a check, not a send)."""
    value = session.get(K_BINDING)
    return value if isinstance(value, str) and TOKEN.match(value) else None


def last_sent() -> dict[str, Any] | None:
    """Where the last code of this login went (see :data:`K_SENT`), or None."""
    sent = session.get(K_SENT)
    return dict(sent) if isinstance(sent, Mapping) else None


def resend_in(cooldown_seconds: int) -> int:
    """Seconds before another code may be asked for (0: now), from the last send of this session."""
    sent = session.get(K_SENT)
    if not isinstance(sent, Mapping):
        return 0
    left = float(sent.get("at", 0)) + cooldown_seconds - time.time()
    return max(0, math.ceil(left))


def confirm_reauth(seconds: int) -> None:
    """Let this login change its MFA settings for ``seconds``."""
    session[K_REAUTH] = {"login": session.get(K_LOGIN), "until": time.time() + seconds}


def reauth_ok() -> bool:
    """Whether this login confirmed password + code and the confirmation has not run out."""
    data = session.get(K_REAUTH)
    # The confirmation names the login it was made in, checked like the verified marker: never None == None.
    return isinstance(data, Mapping) and SessionFacts.is_verified_login(data.get("login"), session.get(K_LOGIN)) \
        and float(data.get("until", 0)) > time.time()
