"""The verification gate: a pure function from a request's session facts and path to a decision.

Nothing here reads a database, a cookie or a clock: the caller (the WSGI
middleware, the Flask extension, a Django middleware, a test) gathers the facts
into a :class:`SessionFacts` and :func:`decide` answers. The decision table:

============================================  ==========================================
facts                                          decision
============================================  ==========================================
path allow-listed (login, verify, ...)         ``pass``
not signed in                                  ``pass`` (the site's own login decides)
signed in, ``must_setup``                      ``setup``: redirect to forced setup
signed in, enrolled, verification needed,      ``verify``: redirect to the verify page
not verified this login, no trusted device
signed in, enrolled, verified or trusted       ``pass``
signed in, ``in_grace`` (required, not set     ``notice``: pass, with a "set up soon" notice
up, grace period running)
anything else (optional or not required,       ``pass``
not enrolled)
============================================  ==========================================

Allow-listed paths are matched safely: the path is normalised first (``//``
collapsed, ``.`` and ``..`` segments resolved), an entry matches the exact path
or the path below it at a ``/`` boundary (``/login`` allows ``/login`` and
``/login/inline`` but not ``/loginx``), and a path that only *normalises* into
the list does not count: ``/admin/../login`` is decided like ``/admin``, because
a router that does not resolve ``..`` would serve it from ``/admin``.
"""

from __future__ import annotations

import hmac
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from ..i18n import N_

PASS = "pass"
VERIFY = "verify"
SETUP = "setup"
NOTICE = "notice"

#: The allow-list used when none is configured (for the default ``/otp`` prefix).
DEFAULT_ALLOW: tuple[str, ...] = (
    "/login",
    "/logout",
    "/otp/verify",
    "/otp/send",
    "/otp/magic",
    "/otp/setup",
    "/otp/settings",
    "/otp/api",
    "/otp/static",
)


def default_allow(prefix: str = "/otp", *, login: str = "/login", logout: str = "/logout",
                  magic_link: str | None = None) -> tuple[str, ...]:
    """The default allow-list for views mounted under ``prefix``.

    ``magic_link`` is the magic-link landing path when it lives outside ``prefix``
    (``providers.magic_links.path``).
    """
    prefix = "/" + prefix.strip("/")
    names = ("verify", "send", "magic", "setup", "settings", "api", "static", "first-factor")
    entries = [login, logout, *(f"{prefix}/{name}" for name in names)]
    if magic_link:
        entries.append(magic_link)
    return tuple(dict.fromkeys(entries))


def _marker(value: object) -> bytes | None:
    """A session marker as bytes (``hmac.compare_digest`` takes only ASCII ``str``), or None when it is no marker."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    return value if isinstance(value, bytes) and value else None


@dataclass(frozen=True)
class SessionFacts:
    """What the gate needs to know about one request's session.

    ``signed_in``: the site's password step passed for ``member_id``.
    ``verified``: the second step passed *for this login* (a new login or another
    browser is not verified); read it from the session with
    :meth:`is_verified_login`. ``trusted_device``: the request carries a live
    trusted-device token of this member. The rest are the member's policy facts,
    as :meth:`otp_pro.OtpPro.status` reports them: ``requirement``
    (``not_required``, ``optional`` or ``required``), ``enrolled``, ``must_setup``
    (required, not set up, grace period over) and ``in_grace``.
    """

    signed_in: bool = False
    member_id: str | None = None
    verified: bool = False
    trusted_device: bool = False
    requirement: str = "not_required"
    enrolled: bool = False
    must_setup: bool = False
    in_grace: bool = False

    @classmethod
    def from_status(cls, status: Any, *, verified: bool = False, trusted_device: bool = False) -> SessionFacts:
        """Facts for a signed-in member from a :class:`~otp_pro.MemberStatus`."""
        return cls(
            signed_in=True,
            member_id=status.member_id,
            verified=verified,
            trusted_device=trusted_device,
            requirement=status.requirement,
            enrolled=status.enrolled,
            must_setup=status.must_setup,
            in_grace=status.in_grace,
        )

    @staticmethod
    def is_verified_login(verified_marker: object, login_marker: object) -> bool:
        """Whether the second step was passed for this login: the two session markers match and are real.

        ``login_marker`` is the random value the site's login view stores at each
        login; ``verified_marker`` is the value stored when the second step
        passed (a copy of the login marker at that time). Build ``verified=`` with
        this, never with ``==``: a session made by another login path (Django's
        admin login, a password reset that signs in) has neither marker, and
        ``None == None`` would let it skip the second step. Missing, empty or
        non-string markers are never verified; the comparison runs in constant time.
        """
        verified, login = _marker(verified_marker), _marker(login_marker)
        if verified is None or login is None:
            return False
        return hmac.compare_digest(verified, login)

    @property
    def verification_needed(self) -> bool:
        """Whether this member must pass the second step (enrolled under a policy that offers it)."""
        return self.enrolled and self.requirement != "not_required"


@dataclass(frozen=True)
class GateConfig:
    """Where the gate sends members and which paths it never blocks.

    ``allow`` entries are paths; each allows itself and everything below it at a
    ``/`` boundary. ``"/"`` as an entry allows only the home page itself.
    """

    verify_path: str = "/otp/verify"
    setup_path: str = "/otp/setup"
    allow: tuple[str, ...] = DEFAULT_ALLOW
    next_param: str = "next"
    _normalized: tuple[str, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        if isinstance(self.allow, str):
            raise TypeError("allow must be a sequence of paths, not one string")
        for entry in (self.verify_path, self.setup_path, *self.allow):
            if not isinstance(entry, str) or not entry.startswith("/") or "?" in entry or "#" in entry:
                raise ValueError(f"gate paths must start with '/' and hold no query or fragment, got {entry!r}")
        object.__setattr__(self, "allow", tuple(self.allow))
        object.__setattr__(self, "_normalized", tuple(normalize_path(entry) for entry in self.allow))

    @property
    def allow_list(self) -> tuple[str, ...]:
        """The allow-list entries, normalised."""
        return self._normalized


@dataclass(frozen=True)
class Decision:
    """The gate's answer. ``action`` is ``pass``, ``verify``, ``setup`` or ``notice``.

    ``location`` is where to redirect (for ``verify`` and ``setup``), carrying the
    requested path as ``?next=``; ``notice`` is the text to show for ``notice``.
    """

    action: str
    location: str | None = None
    notice: str | None = None
    reason: str = ""

    @property
    def passes(self) -> bool:
        """Whether the request goes on to the view (``pass`` and ``notice``)."""
        return self.action in (PASS, NOTICE)

    @property
    def redirects(self) -> bool:
        return self.action in (VERIFY, SETUP)


#: Translated where it is shown (``Flow.gate``), in the request's language.
GRACE_NOTICE = N_("Your account needs two-step verification soon: set it up now to keep access.")


def normalize_path(path: str) -> str:
    """``path`` with ``//`` collapsed and ``.``/``..`` segments resolved; never above ``/``.

    A trailing slash is dropped (``/login/`` -> ``/login``); an empty path is ``/``.
    """
    if not isinstance(path, str):
        raise TypeError("path must be a string")
    path = path.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/"):
        path = "/" + path
    normalized = posixpath.normpath(path)
    # normpath keeps a leading "//" (POSIX allows it to mean something else).
    while normalized.startswith("//"):
        normalized = normalized[1:]
    return normalized or "/"


def _collapse(path: str) -> str:
    """``path`` with repeated slashes collapsed and the trailing slash dropped, dots left alone."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/"):
        path = "/" + path
    while "//" in path:
        path = path.replace("//", "/")
    return path.rstrip("/") or "/"


def _under(path: str, entries: Iterable[str]) -> bool:
    for entry in entries:
        if entry == "/":
            if path == "/":
                return True
        elif path == entry or path.startswith(entry + "/"):
            return True
    return False


def is_allowed(path: str, config: GateConfig | None = None) -> bool:
    """Whether ``path`` is on the allow-list, matched as the module docstring explains."""
    entries = (config or DEFAULT_CONFIG).allow_list
    normalized = normalize_path(path)
    if not _under(normalized, entries):
        return False
    # Dot segments: the path as sent must be under the same list too, so "/admin/../login" is not allowed.
    raw = _collapse(path)
    return raw == normalized or _under(raw, entries)


def _redirect(target: str, path: str, query: str, config: GateConfig) -> str:
    back = normalize_path(path)
    # The trailing slash stays: Django's URLs end in one, and without APPEND_SLASH "/admin" is a 404.
    if path.split("?", 1)[0].endswith("/") and back != "/":
        back += "/"
    if query:
        back = f"{back}?{query}"
    if back in ("/", ""):
        return target
    return f"{target}?{urlencode({config.next_param: back}, quote_via=quote)}"


def decide(facts: SessionFacts, path: str, config: GateConfig | None = None, *, query: str = "") -> Decision:
    """The gate's decision for a request to ``path`` (``query`` is kept in the ``next`` address)."""
    config = config or DEFAULT_CONFIG
    if is_allowed(path, config):
        return Decision(PASS, reason="allow-listed")
    if not facts.signed_in or not facts.member_id:
        return Decision(PASS, reason="not signed in")
    if facts.must_setup:
        return Decision(SETUP, location=_redirect(config.setup_path, path, query, config),
                        reason="second factor required and not set up")
    if facts.verification_needed:
        if facts.verified:
            return Decision(PASS, reason="verified this login")
        if facts.trusted_device:
            return Decision(PASS, reason="trusted device")
        return Decision(VERIFY, location=_redirect(config.verify_path, path, query, config),
                        reason="second step not passed this login")
    if facts.in_grace:
        return Decision(NOTICE, notice=GRACE_NOTICE, reason="grace period")
    return Decision(PASS, reason="no second step needed")


DEFAULT_CONFIG = GateConfig()

__all__ = [
    "DEFAULT_ALLOW",
    "DEFAULT_CONFIG",
    "GRACE_NOTICE",
    "NOTICE",
    "PASS",
    "SETUP",
    "VERIFY",
    "Decision",
    "GateConfig",
    "SessionFacts",
    "decide",
    "default_allow",
    "is_allowed",
    "normalize_path",
]
