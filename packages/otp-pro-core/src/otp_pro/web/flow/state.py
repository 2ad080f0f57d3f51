"""What the flow keeps about a login: its keys in the session and the helpers that read and change them.

The session holds the member id, a random *login id* made at each login, and
the login id the second step was passed for: a new login, another browser or a
cleared session asks again. Anything worth a session fixation is followed by a
rotation (:func:`rotate`), which asks the adapter for a new session id.
"""

from __future__ import annotations

import math
import re
import secrets
import time
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ... import i18n
from ..gate import SessionFacts

if TYPE_CHECKING:
    from .visit import Visit

# Session keys. Each starts with ``otp_pro_`` so it cannot clash with the site's own keys.
K_MEMBER = "otp_pro_member"  # the signed-in member's id
K_LOGIN = "otp_pro_login"  # the login id, new at each login
K_VERIFIED = "otp_pro_verified"  # the login id the second step was passed for
K_VERIFIED_AT = "otp_pro_verified_at"  # when this login last passed a second step (epoch seconds): step-up
K_STEP_UP = "otp_pro_step_up"  # {"login", "next"}: a fresh second step is asked for before ``next``
K_CSRF = "otp_pro_csrf"
K_BINDING = "otp_pro_binding"  # ties a sign-in link, and a setup, to the login that asked for it
K_SENT = "otp_pro_sent"  # where the last code went: {"at", "hint", "channel", "label", "challenge"[, "failed"]}
K_NEXT = "otp_pro_next"  # where to go once the second step is passed
K_REAUTH = "otp_pro_reauth"  # {"login", "until"}: password + code confirmed before changing settings
K_SETUP = "otp_pro_setup"  # the channel being set up
K_SETUP_FACTOR = "otp_pro_setup_factor"  # {"label", "reconfirm"}: the factor being added (or re-confirmed)
K_ATTEMPTS = "otp_pro_attempts"  # attempts left before a lockout, shown on the verify page
K_FLASH = "otp_pro_flash"  # [[category, text], ...]: messages for the next page shown

#: The keys a rotation in the middle of a login keeps: the login goes on, anything else is dropped.
LOGIN_KEYS = (K_MEMBER, K_LOGIN, K_BINDING, K_NEXT, K_SENT, K_FLASH, K_STEP_UP, K_VERIFIED_AT)

#: The trusted-device cookie's default name (``__Host-`` is put before it when the cookie is ``Secure``).
DEVICE_COOKIE = "otp_pro_device"

#: A sign-in link token or a binding, as the flow makes them.
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


def next_url(session: Mapping[str, Any], default: str) -> str:
    """Where this login goes once the second step is passed (``default`` when nothing safe was asked for)."""
    return safe_next(session.get(K_NEXT), default)


def rotate(v: Visit, *, keep: tuple[str, ...] = LOGIN_KEYS) -> None:
    """Start a new session holding only ``keep``: a planted session id is worth nothing afterwards."""
    data = v.session
    kept = {key: data[key] for key in keep if key in data}
    data.clear()
    data.update(kept)
    v.cycle()
    v.forget()


def restart(v: Visit) -> None:
    """Clear the whole session and rotate it (a new login, or a logout)."""
    v.session.clear()
    rotate(v, keep=())


def is_verified(session: Mapping[str, Any]) -> bool:
    """Whether this login passed the second step."""
    return SessionFacts.is_verified_login(session.get(K_VERIFIED), session.get(K_LOGIN))


def mark_verified(v: Visit, *, fresh: bool = True) -> None:
    """Record that this login passed the second step, in a rotated session.

    ``fresh``: a code, link or setup was just confirmed, and when is kept (by the core's clock) for
    step-up; a trusted device passes the gate's second step (``fresh=False``) but is no fresh one.
    """
    rotate(v)
    data = v.session
    data[K_VERIFIED] = data.get(K_LOGIN)
    if fresh:
        data[K_VERIFIED_AT] = v.core.clock().timestamp()
    else:
        data.pop(K_VERIFIED_AT, None)
    data.pop(K_ATTEMPTS, None)
    data.pop(K_STEP_UP, None)


def verified_age(session: Mapping[str, Any], now: float) -> float | None:
    """Seconds from this login's last passed second step to ``now`` (epoch seconds), or None when it has none."""
    at = session.get(K_VERIFIED_AT)
    if not is_verified(session) or not isinstance(at, (int, float)) or isinstance(at, bool):
        return None
    return max(0.0, now - float(at))


def step_up_pending(session: Mapping[str, Any]) -> bool:
    """Whether this login was asked for a fresh second step (by :meth:`Flow.step_up`) not yet passed."""
    data = session.get(K_STEP_UP)
    return isinstance(data, Mapping) and SessionFacts.is_verified_login(data.get("login"), session.get(K_LOGIN))


def binding(session: MutableMapping[str, Any]) -> str:
    """The browser binding of this login (made when missing), given to the core with each send and setup."""
    value = current_binding(session)
    if value is None:
        value = secrets.token_urlsafe(32)
        session[K_BINDING] = value
    return value


def current_binding(session: Mapping[str, Any]) -> str | None:
    """The browser binding of this login, or None when it has none (nothing is made: a check, not a send)."""
    value = session.get(K_BINDING)
    return value if isinstance(value, str) and TOKEN.match(value) else None


def last_sent(session: Mapping[str, Any]) -> dict[str, Any] | None:
    """Where the last code of this login went (see :data:`K_SENT`), or None; its ``label`` in the current language
    (the session keeps the channel's English name: the next page may be in another language)."""
    sent = session.get(K_SENT)
    if not isinstance(sent, Mapping):
        return None
    found = dict(sent)
    if isinstance(found.get("label"), str):
        found["label"] = i18n.label(found["label"])
    return found


def resend_in(session: Mapping[str, Any], cooldown_seconds: int) -> int:
    """Seconds before another code may be asked for (0: now), from the last send of this session."""
    sent = session.get(K_SENT)
    if not isinstance(sent, Mapping):
        return 0
    left = float(sent.get("at", 0)) + cooldown_seconds - time.time()
    return max(0, math.ceil(left))


def confirm_reauth(session: MutableMapping[str, Any], seconds: int) -> None:
    """Let this login change its MFA settings for ``seconds``."""
    session[K_REAUTH] = {"login": session.get(K_LOGIN), "until": time.time() + seconds}


def reauth_ok(session: Mapping[str, Any]) -> bool:
    """Whether this login confirmed password + code and the confirmation has not run out."""
    data = session.get(K_REAUTH)
    # The confirmation names the login it was made in, checked like the verified marker: never None == None.
    return isinstance(data, Mapping) and SessionFacts.is_verified_login(data.get("login"), session.get(K_LOGIN)) \
        and float(data.get("until", 0)) > time.time()


def flash(session: MutableMapping[str, Any], text: str, category: str = "info") -> None:
    """Keep ``text`` for the next page shown (``category``: ``info`` or ``error``)."""
    kept = session.get(K_FLASH)
    messages = [list(m) for m in kept] if isinstance(kept, list) else []
    messages.append([category, text])
    session[K_FLASH] = messages[-10:]


def take_flashes(session: MutableMapping[str, Any]) -> list[tuple[str, str]]:
    """The messages kept by :func:`flash`, ``(category, text)`` in order; they are shown once."""
    kept = session.pop(K_FLASH, None)
    if not isinstance(kept, list):
        return []
    return [(str(m[0]), str(m[1])) for m in kept if isinstance(m, (list, tuple)) and len(m) == 2]
