"""``OtpProFlask``: the gate, views, JSON endpoints and sample templates for a Flask application.

Install with the ``flask`` extra (``pip install 'otp-pro-core[flask]'``)::

    from otp_pro.web.flask import OtpProFlask

    otp_web = OtpProFlask(app, otp, load_member=load_member, check_password=check_password)

    @app.post("/login")
    def login():
        user = ...  # the site's own password check
        return redirect(otp_web.login(member_for(user), next=request.args.get("next")))

``load_member(member_id) -> Member | None`` rebuilds the member of a session;
``check_password(member, password) -> bool`` is asked before any change of MFA
settings (with a fresh one-time code as well). ``login(member)`` rotates the
session (no session fixation), sends the first code when the member's channel
delivers one, and answers where to send the browser next: the verify page, the
forced setup page or ``next``. ``logout()`` clears the session.

The session holds the member id, a random *login id* made at each ``login()``,
and the login id the second step was passed for: a new login, another browser
or a cleared session asks again. Use a server-side session store (the demo site
has a small one) so that ``logout()`` really ends a session everywhere.
"""

from __future__ import annotations

import hmac
import logging
import math
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response

from ..core import HARD_LOCK, TOTP, OtpPro
from ..errors import (
    ChannelUnavailable,
    DeliveryError,
    InvalidCode,
    LockedOut,
    NotEnrolled,
    NotFound,
    OtpProError,
    PolicyError,
    SetupError,
    StorageError,
    ThrottledError,
)
from ..member import Member
from ..results import Challenge, MemberStatus, VerifyResult
from ..settings import is_loopback_host
from .gate import Decision, GateConfig, SessionFacts, decide, default_allow
from .wsgi import wants_json

log = logging.getLogger("otp_pro.web")

# Session keys. Everything lives under one prefix so ``logout()`` can remove exactly ours.
K_MEMBER = "otp_pro_member"
K_LOGIN = "otp_pro_login"
K_VERIFIED = "otp_pro_verified"
K_CSRF = "otp_pro_csrf"
K_BINDING = "otp_pro_binding"
K_SENT = "otp_pro_sent"
K_NEXT = "otp_pro_next"
K_REAUTH = "otp_pro_reauth"
K_SETUP = "otp_pro_setup"
K_ATTEMPTS = "otp_pro_attempts"

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
DEVICE_COOKIE = "otp_pro_device"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,512}$")
_MAX_FIELD = 256

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

REASON_TEXT = {
    "invalid": "That code is not correct.",
    "expired": "That code has expired: ask for a new one.",
    "malformed": "Enter the code as digits (or a backup code as letters and digits).",
    "not_enrolled": "Two-step verification is not set up for this account.",
    "unknown": "This sign-in link is not valid: it may come from an old message. Ask for a new one.",
    "used": "This sign-in link was already used. Each link works once.",
    "replaced": "A newer sign-in link was sent: only the newest one works.",
    "wrong_browser": "Open the link in the browser you are signing in with.",
}
#: Shown (HTTP 503) when the database failed during a request; the operation was rolled back.
STORAGE_FAILED_TEXT = ("Something went wrong on our side and nothing was changed (a code you entered is still "
                       "unused). Try again in a moment.")


class CsrfError(OtpProError):
    """A POST without the session's CSRF token (an old page, or a forged form)."""


@dataclass(frozen=True)
class Outcome:
    """What a verification step ended with: for a page (``message``, ``status``) or JSON (``as_json``)."""

    ok: bool
    message: str
    status: int = 200
    result: VerifyResult | None = None
    location: str | None = None
    error: str | None = None
    attempts_remaining: int | None = None
    locked_minutes: int | None = None
    retry_after: int | None = None
    #: After a failed delivery: the channels to fall back to, ``[{"channel", "label"}]`` in policy order.
    fallback: tuple[Mapping[str, str], ...] | None = None
    #: The delivery's status after a send: ``sent``, or ``queued`` with a task-queue dispatcher.
    delivery: str | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"ok": self.ok, "message": self.message}
        for key in ("location", "error", "attempts_remaining", "locked_minutes", "retry_after", "delivery"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.fallback is not None:
            data["fallback"] = [dict(item) for item in self.fallback]
        return data


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


def lock_minutes(locked_until: datetime | None, now: datetime) -> int | None:
    """Whole minutes (rounded up) left of a lockout; None for no lockout."""
    if locked_until is None:
        return None
    if locked_until >= HARD_LOCK:
        return -1
    return max(1, math.ceil((locked_until - now).total_seconds() / 60))


def _form(name: str) -> str:
    value = request.form.get(name, "")
    return value[:_MAX_FIELD] if isinstance(value, str) else ""


class OtpProFlask:
    """The Flask integration: gate, views (blueprint ``otp_pro``), JSON endpoints, CSRF, sample templates.

    Options: ``url_prefix`` of the views (default ``/otp``); ``login_url`` and
    ``logout_url`` (the site's own, allow-listed); ``home_url`` (where to go
    after verification without ``next``); ``allow`` (the gate's allow-list,
    default :func:`~otp_pro.web.gate.default_allow`; ``extra_allow`` adds to it); ``secure_cookies`` (the
    trusted-device cookie is ``Secure``; ``False`` is honoured only for requests
    to 127.0.0.1/localhost); ``reauth_seconds`` (how long a password + code
    confirmation lets a member change MFA settings); ``csrf_app_wide`` (check the
    CSRF token on every POST of the app, not only the extension's);
    ``security_headers_app_wide``; ``gate`` (install the gate as a
    ``before_request`` hook).
    """

    def __init__(
        self,
        app: Flask | None = None,
        otp: OtpPro | None = None,
        *,
        load_member: Callable[[str], Member | None],
        check_password: Callable[[Member, str], bool],
        url_prefix: str = "/otp",
        login_url: str = "/login",
        logout_url: str = "/logout",
        home_url: str = "/",
        allow: tuple[str, ...] | None = None,
        extra_allow: tuple[str, ...] = (),
        secure_cookies: bool = True,
        reauth_seconds: int = 300,
        csrf_app_wide: bool = True,
        security_headers_app_wide: bool = False,
        gate: bool = True,
        device_cookie: str = DEVICE_COOKIE,
    ) -> None:
        self.otp = otp
        self.load_member = load_member
        self.check_password = check_password
        self.url_prefix = "/" + url_prefix.strip("/")
        self.login_url = login_url
        self.logout_url = logout_url
        self.home_url = home_url
        self._allow = allow
        self._extra_allow = tuple(extra_allow)
        self.secure_cookies = secure_cookies
        self.reauth_seconds = reauth_seconds
        self.csrf_app_wide = csrf_app_wide
        self.security_headers_app_wide = security_headers_app_wide
        self.gate_enabled = gate
        self._device_cookie = device_cookie
        self.gate_config = GateConfig()
        if app is not None:
            self.init_app(app, otp)

    # ------------------------------------------------------------ wiring

    @property
    def magic_link_path(self) -> str | None:
        """The magic-link landing path (``providers.magic_links.path``) when the payload is installed."""
        payload = self.core.payloads.get("magic_link")
        path = getattr(payload, "path", None) if payload is not None else None
        return path if isinstance(path, str) else None

    @property
    def core(self) -> OtpPro:
        if self.otp is None:
            raise RuntimeError("OtpProFlask has no OtpPro instance: pass it to the constructor or init_app")
        return self.otp

    def init_app(self, app: Flask, otp: OtpPro | None = None) -> None:
        """Register the blueprint, the gate, CSRF checks and template helpers on ``app``."""
        if otp is not None:
            self.otp = otp
        allow = self._allow
        if allow is None:
            allow = default_allow(self.url_prefix, login=self.login_url, logout=self.logout_url,
                                  magic_link=self.magic_link_path)
            if app.static_url_path:
                allow = (*allow, app.static_url_path)
        self.gate_config = GateConfig(verify_path=f"{self.url_prefix}/verify", setup_path=f"{self.url_prefix}/setup",
                                      allow=(*allow, *self._extra_allow))
        app.extensions["otp_pro"] = self
        app.register_blueprint(self._blueprint())
        magic = self.magic_link_path
        if magic:
            app.add_url_rule(magic, "otp_pro_magic_link", self.magic_link_view, methods=["GET", "POST"])
        app.before_request(self._before_request)
        app.after_request(self._after_request)
        app.context_processor(self._context)
        app.register_error_handler(CsrfError, self._csrf_failed)
        app.register_error_handler(StorageError, self._storage_failed)

    def _blueprint(self) -> Blueprint:
        bp = Blueprint("otp_pro", __name__, url_prefix=self.url_prefix, template_folder="templates",
                       static_folder="static", static_url_path="/static")
        bp.add_url_rule("/verify", "verify", self.verify_view, methods=["GET", "POST"])
        bp.add_url_rule("/send", "send", self.send_view, methods=["POST"])
        bp.add_url_rule("/setup", "setup", self.setup_view, methods=["GET", "POST"])
        bp.add_url_rule("/setup/confirm", "setup_confirm", self.setup_confirm_view, methods=["POST"])
        bp.add_url_rule("/settings", "settings", self.settings_view, methods=["GET"])
        bp.add_url_rule("/settings/reauth", "reauth", self.reauth_view, methods=["POST"])
        bp.add_url_rule("/settings/backup-codes", "backup_codes", self.backup_codes_view, methods=["POST"])
        bp.add_url_rule("/settings/devices/<device_id>/revoke", "revoke_device", self.revoke_view, methods=["POST"])
        bp.add_url_rule("/settings/disable", "disable", self.disable_view, methods=["POST"])
        bp.add_url_rule("/api/status", "api_status", self.api_status, methods=["GET"])
        bp.add_url_rule("/api/send", "api_send", self.api_send, methods=["POST"])
        bp.add_url_rule("/api/verify", "api_verify", self.api_verify, methods=["POST"])
        bp.add_url_rule("/api/delivery", "api_delivery", self.api_delivery, methods=["GET"])
        return bp

    # ------------------------------------------------------- request hooks

    def _before_request(self) -> Response | None:
        if request.method == "POST" and (self.csrf_app_wide or (request.blueprint == "otp_pro")
                                         or request.endpoint == "otp_pro_magic_link"):
            self.check_csrf()
        if not self.gate_enabled:
            return None
        decision = decide(self.facts(), request.path, self.gate_config,
                          query=request.query_string.decode("latin-1"))
        g.otp_pro_decision = decision
        if decision.redirects and decision.location:
            location = request.script_root + decision.location
            if wants_json(request.environ):
                error = "setup_required" if decision.action == "setup" else "verification_required"
                return self._secure(make_response(jsonify(error=error, location=location), 401))
            return self._secure(redirect(location, 303))
        return None

    def _after_request(self, response: Response) -> Response:
        if self.security_headers_app_wide or request.blueprint == "otp_pro" or \
                request.endpoint == "otp_pro_magic_link":
            self._secure(response)
        return response

    @staticmethod
    def _secure(response: Response) -> Response:
        for name, value in SECURITY_HEADERS:
            response.headers.setdefault(name, value)
        return response

    def _context(self) -> dict[str, Any]:
        decision: Decision | None = g.get("otp_pro_decision")
        return {
            "otp_pro": self,
            "csrf_token": self.csrf_token,
            "otp_pro_notice": decision.notice if decision is not None else None,
            "otp_pro_member": self.current_member(),
            "site_name": self.core.settings.site_name,
        }

    # ------------------------------------------------------------- CSRF

    def csrf_token(self) -> str:
        """The session's CSRF token (made on first use); put it in every form as ``csrf_token``."""
        token = session.get(K_CSRF)
        if not isinstance(token, str) or len(token) < 32:
            token = secrets.token_urlsafe(32)
            session[K_CSRF] = token
        return token

    def check_csrf(self) -> None:
        """Raise :class:`CsrfError` unless the request carries the session's token (form field or header)."""
        expected = session.get(K_CSRF)
        sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD) or ""
        if not isinstance(expected, str) or not expected or not isinstance(sent, str) or \
                not secrets.compare_digest(expected.encode(), sent.encode()[:200]):
            raise CsrfError("the form's security token is missing or out of date")

    def _csrf_failed(self, error: CsrfError) -> Response:
        message = "This form has expired or did not come from this site. Reload the page and try again."
        if wants_json(request.environ):
            return self._secure(make_response(jsonify(ok=False, error="csrf", message=message), 400))
        return self._secure(make_response(render_template("otp_pro/message.html", title="Please try again",
                                                          message=message, link=request.path), 400))

    def _storage_failed(self, error: StorageError) -> Response:
        # The database failed mid-request: its transaction was rolled back, so nothing changed
        # (a code typed is still unused). A page that says so, never a 500 with a traceback.
        log.warning("otp-pro: %s %s failed: %s", request.method, request.path, error)
        message = STORAGE_FAILED_TEXT
        if wants_json(request.environ):
            return self._secure(make_response(jsonify(ok=False, error="unavailable", message=message), 503))
        return self._secure(make_response(render_template("otp_pro/message.html", title="Please try again",
                                                          message=message, link=request.path), 503))

    # ----------------------------------------------------------- session

    def current_member(self) -> Member | None:
        """The signed-in member of this request (password step passed), or None."""
        if "otp_pro_member_obj" in g:
            return g.otp_pro_member_obj
        member_id = session.get(K_MEMBER)
        member = self.load_member(member_id) if isinstance(member_id, str) and member_id else None
        g.otp_pro_member_obj = member
        return member

    def status(self) -> MemberStatus | None:
        """The signed-in member's :class:`~otp_pro.MemberStatus` (once per request)."""
        if "otp_pro_status" in g:
            return g.otp_pro_status
        member = self.current_member()
        status = self.core.status(member) if member is not None else None
        g.otp_pro_status = status
        return status

    def is_verified(self) -> bool:
        """Whether this login passed the second step (in this session)."""
        login = session.get(K_LOGIN)
        verified = session.get(K_VERIFIED)
        return isinstance(login, str) and isinstance(verified, str) and hmac.compare_digest(login, verified)

    def device_cookie_name(self) -> str:
        return f"__Host-{self._device_cookie}" if self._cookie_secure() else self._device_cookie

    def _cookie_secure(self) -> bool:
        # Off only for plain-http development on the loopback interface.
        return self.secure_cookies or not is_loopback_host(request.host)

    def is_trusted_device(self) -> bool:
        member = self.current_member()
        token = request.cookies.get(self.device_cookie_name())
        return member is not None and bool(token) and self.core.is_trusted(member, token)

    def facts(self) -> SessionFacts:
        """The gate's facts for this request."""
        status = self.status()
        if status is None:
            return SessionFacts()
        verified = self.is_verified()
        trusted = not verified and status.verification_needed and self.is_trusted_device()
        return SessionFacts.from_status(status, verified=verified, trusted_device=trusted)

    def _rotate(self, *, keep: tuple[str, ...] = (K_MEMBER, K_LOGIN, K_BINDING, K_NEXT, K_SENT)) -> None:
        """Start a new session holding only ``keep``: a planted session id is worth nothing afterwards."""
        kept = {key: session[key] for key in keep if key in session}
        session.clear()
        session.update(kept)
        regenerate = getattr(current_app.session_interface, "regenerate", None)
        if callable(regenerate):
            regenerate(session)
        for key in ("otp_pro_member_obj", "otp_pro_status"):
            g.pop(key, None)

    def login(self, member: Member, *, next: str | None = None, send: bool = True) -> str:
        """Sign ``member`` in after the site's password check; answer the address to redirect to.

        Rotates the session and starts a new login (so a new second step). A
        trusted-device cookie of this member skips the step. When the member must
        verify and their channel delivers codes, the first code is sent now
        (``send=False`` leaves that to the verify page's button).
        """
        session.clear()
        self._rotate(keep=())
        session[K_MEMBER] = member.id
        session[K_LOGIN] = secrets.token_urlsafe(24)
        session[K_BINDING] = secrets.token_urlsafe(32)
        target = safe_next(next, self.home_url)
        session[K_NEXT] = target
        g.otp_pro_member_obj = member
        status = self.status()
        assert status is not None
        if status.must_setup:
            return url_for("otp_pro.setup")
        if not status.verification_needed:
            return target
        if self.is_trusted_device():
            self._mark_verified()
            return target
        if send and status.channel and status.channel != TOTP:
            self.send_code()
        return url_for("otp_pro.verify")

    def logout(self) -> None:
        """End the login: the whole session is cleared and rotated."""
        session.clear()
        self._rotate(keep=())

    def _mark_verified(self) -> None:
        self._rotate()
        session[K_VERIFIED] = session.get(K_LOGIN)
        session.pop(K_ATTEMPTS, None)

    def _binding(self) -> str:
        value = session.get(K_BINDING)
        if not isinstance(value, str) or not _TOKEN.match(value):
            value = secrets.token_urlsafe(32)
            session[K_BINDING] = value
        return value

    def _client(self) -> dict[str, str | None]:
        return {"ip": request.remote_addr, "user_agent": (request.user_agent.string or "")[:300] or None}

    # ------------------------------------------------------ the operations

    def resend_in(self) -> int:
        """Seconds before another code may be asked for (0: now), from the last send of this session."""
        sent = session.get(K_SENT)
        if not isinstance(sent, Mapping):
            return 0
        cooldown = self.core.settings.resend_cooldown_seconds
        left = float(sent.get("at", 0)) + cooldown - time.time()
        return max(0, math.ceil(left))

    def send_code(self, channel: str | None = None) -> Outcome:
        """Send a code (or link) to the signed-in member; the masked recipient is kept for the pages."""
        member = self.current_member()
        if member is None:
            return Outcome(False, "Sign in first.", 401, error="signed_out")
        if channel is not None and (channel not in self.core.channels or len(channel) > 100):
            return Outcome(False, "That delivery channel is not available.", 400, error="channel")
        try:
            challenge: Challenge = self.core.send_challenge(member, channel=channel or None, binding=self._binding(),
                                                            **self._client())
        except ThrottledError as exc:
            return Outcome(False, f"Please wait {exc.retry_after} seconds before asking for another code."
                           if exc.limit == "cooldown" else f"Too many codes were sent recently. Try again in "
                           f"{max(1, math.ceil(exc.retry_after / 60))} minutes.", 429, error="throttled",
                           retry_after=exc.retry_after)
        except LockedOut as exc:
            minutes = lock_minutes(exc.locked_until, self.core.clock())
            return Outcome(False, self._locked_text(minutes), 429, error="locked", locked_minutes=minutes)
        except (ChannelUnavailable, NotEnrolled, PolicyError) as exc:
            reason = getattr(exc, "reason", None)
            return Outcome(False, f"That delivery channel cannot be used: {reason or exc}.", 400, error="channel")
        except DeliveryError as exc:
            return self._delivery_failed(member, exc, channel)
        label = self.core.channels[challenge.channel].label
        session[K_SENT] = {"at": time.time(), "hint": challenge.recipient_hint, "channel": challenge.channel,
                           "label": label, "challenge": challenge.id}
        what = "a sign-in link" if challenge.channel.endswith(":magic_link") else "a code"
        if challenge.status == "queued":
            return Outcome(True, f"Sending {what} by {label} to {challenge.recipient_hint}...",
                           retry_after=self.core.settings.resend_cooldown_seconds, delivery="queued")
        return Outcome(True, f"We sent {what} by {label} to {challenge.recipient_hint}.",
                       retry_after=self.core.settings.resend_cooldown_seconds, delivery="sent")

    def _fallback_options(self, member: Member, failed_channel: str | None) -> tuple[dict[str, str], ...]:
        return tuple({"channel": name, "label": self.core.channels[name].label}
                     for name in self.core.fallback_channels(member, failed_channel))

    def _delivery_failed(self, member: Member, exc: DeliveryError, channel: str | None) -> Outcome:
        """The send failed: remember it for the verify page and offer the member's other channels."""
        status = self.status()
        failed = channel or (status.channel if status is not None else None) or ""
        label = self.core.channels[failed].label if failed in self.core.channels else "this method"
        session[K_SENT] = {"at": 0, "hint": None, "channel": failed, "label": label,
                           "challenge": exc.challenge_id, "failed": True}
        options = self._fallback_options(member, failed)
        text = f"The code could not be sent by {label}."
        text += (" Try another method: " + ", ".join(o["label"] for o in options) + "." if options
                 else " Try again in a moment, or use a backup code.")
        return Outcome(False, text, 502, error="delivery", fallback=options)

    def _locked_text(self, minutes: int | None) -> str:
        if minutes == -1:
            return "Sign-in is blocked after too many failed attempts. Contact support to unlock your account."
        return f"Too many failed attempts. Try again in {minutes or 1} minute{'s' if minutes != 1 else ''}."

    def _result_outcome(self, result: VerifyResult) -> Outcome:
        if result.reason == "locked":
            minutes = lock_minutes(result.locked_until, self.core.clock())
            return Outcome(False, self._locked_text(minutes), 429, result, error="locked", locked_minutes=minutes,
                           attempts_remaining=0)
        text = REASON_TEXT.get(result.reason or "", "That code cannot be used.")
        if result.attempts_remaining is not None:
            left = result.attempts_remaining
            text += f" {left} attempt{'s' if left != 1 else ''} left before a lockout."
            session[K_ATTEMPTS] = left
        status = 400 if result.reason == "malformed" else 200
        return Outcome(False, text, status, result, error=result.reason or "invalid",
                       attempts_remaining=result.attempts_remaining)

    def verify_code(self, code: object, *, trust_device: bool = False) -> tuple[Outcome, str | None]:
        """Check what the member typed; on success the session is verified (and rotated).

        Returns the outcome and, when ``trust_device`` was asked and allowed, the
        trusted-device token to set as a cookie (see :meth:`set_device_cookie`).
        """
        member = self.current_member()
        if member is None:
            return Outcome(False, "Your sign-in has expired: sign in again.", 401, error="signed_out"), None
        if not isinstance(code, str) or not code.strip():
            return Outcome(False, "Enter the code you received (or a backup code).", 400, error="empty"), None
        result = self.core.verify(member, code[:_MAX_FIELD], **self._client())
        if not result.ok:
            return self._result_outcome(result), None
        self._mark_verified()
        token = None
        if trust_device and self.core.settings.trusted_device_days > 0:
            token = self.core.trust_device(member, label=self._device_label(), **self._client())
        message = "Verified."
        if result.method == "backup_code" and result.backup_codes_remaining is not None:
            message = f"Signed in with a backup code. {result.backup_codes_remaining} backup codes left."
            flash(message, "info")
        location = safe_next(session.get(K_NEXT), self.home_url)
        return Outcome(True, message, 200, result, location=location), token

    def _device_label(self) -> str:
        agent = request.user_agent.string or "browser"
        return agent[:120]

    def set_device_cookie(self, response: Response, token: str) -> None:
        """Set the trusted-device cookie: ``Secure`` (see ``secure_cookies``), ``HttpOnly``, ``SameSite=Lax``."""
        days = self.core.settings.trusted_device_days
        response.set_cookie(self.device_cookie_name(), token, max_age=days * 86400, path="/",
                            secure=self._cookie_secure(), httponly=True, samesite="Lax")

    def reauth_ok(self) -> bool:
        """Whether this login confirmed password + code within ``reauth_seconds``."""
        data = session.get(K_REAUTH)
        return isinstance(data, Mapping) and data.get("login") == session.get(K_LOGIN) and \
            float(data.get("until", 0)) > time.time()

    # ----------------------------------------------------------- helpers

    def _page(self, template: str, http_status: int = 200, /, **context: Any) -> Response:
        return make_response(render_template(template, **context), http_status)

    def _need_member(self) -> Member | Response:
        member = self.current_member()
        if member is None:
            flash("Sign in first.", "error")
            return redirect(f"{self.login_url}?next={request.path}", 303)
        return member

    def verify_context_sent(self) -> dict[str, Any] | None:
        """Where the last code of this login went: ``{"hint", "channel", "label", "at"}``, or None."""
        sent = session.get(K_SENT)
        return dict(sent) if isinstance(sent, Mapping) else None

    def delivery(self) -> dict[str, Any] | None:
        """The delivery of this login's last code, for the verify page and ``/api/delivery``.

        ``{"status", "label", "hint", "error_code", "done", "message", "fallback"}``; ``status`` is
        ``sending`` (queued or being sent), ``sent``, ``failed`` or ``replaced``. None before any send.
        """
        member = self.current_member()
        sent = self.verify_context_sent()
        if member is None or sent is None:
            return None
        challenge_id = sent.get("challenge")
        found = self.core.delivery_status(member, challenge_id) if isinstance(challenge_id, int) else None
        error_code: str | None
        if found is None:
            if not sent.get("failed"):
                return None
            state, error_code, done = "failed", "delivery", True
            fallback = self._fallback_options(member, str(sent.get("channel") or ""))
        else:
            state = "sending" if found.status in ("queued", "sending") else found.status
            error_code, done = found.error_code, found.done
            fallback = tuple({"channel": name, "label": self.core.channels[name].label}
                             for name in found.fallback_channels)
        label = str(sent.get("label") or "")
        messages = {
            "sending": f"Sending your code by {label}...",
            "sent": f"Sent by {label} to {sent.get('hint')}.",
            "failed": f"The code could not be sent by {label}: try another method.",
            "replaced": "A newer code was asked for: use the newest one.",
        }
        return {"status": state, "label": label, "hint": sent.get("hint"), "error_code": error_code, "done": done,
                "message": messages.get(state, ""), "fallback": [dict(item) for item in fallback]}

    def _verify_context(self, status: MemberStatus) -> dict[str, Any]:
        sent = session.get(K_SENT) if isinstance(session.get(K_SENT), Mapping) else None
        channel = status.channel or ""
        delivery = self.delivery()
        others = [(name, self.core.channels[name].label) for name in status.channels
                  if name != TOTP and name != (sent or {}).get("channel", channel)]
        if delivery is not None and delivery["status"] == "failed":
            # After a failed delivery: the fallback channels, in policy order (availability checked).
            others = [(item["channel"], item["label"]) for item in delivery["fallback"]]
        return {
            "delivery": delivery,
            "status": status,
            "channel": channel,
            "channel_label": self.core.channels[channel].label if channel in self.core.channels else channel,
            "is_totp": channel == TOTP,
            "is_link": bool(sent and str(sent.get("channel", "")).endswith(":magic_link")),
            "sent": sent,
            "resend_in": self.resend_in(),
            "locked_minutes": lock_minutes(status.locked_until, self.core.clock()),
            "attempts_remaining": session.get(K_ATTEMPTS),
            "other_channels": others,
            "trust_days": self.core.settings.trusted_device_days,
            "code_length": self.core.settings.code_length,
            "next": safe_next(session.get(K_NEXT), self.home_url),
        }

    # -------------------------------------------------------------- views

    def verify_view(self) -> Response:
        """``GET``: the code form. ``POST``: check the code (``code``, ``trust_device``)."""
        member = self._need_member()
        if isinstance(member, Response):
            return member
        status = self.status()
        assert status is not None
        if request.args.get("next"):
            session[K_NEXT] = safe_next(request.args.get("next"), self.home_url)
        if status.must_setup:
            return redirect(url_for("otp_pro.setup"), 303)
        if self.is_verified() or not status.verification_needed:
            return redirect(safe_next(session.get(K_NEXT), self.home_url), 303)
        if request.method == "GET":
            return self._page("otp_pro/verify.html", **self._verify_context(status))
        outcome, token = self.verify_code(request.form.get("code", ""), trust_device=bool(request.form.get("trust")))
        if outcome.ok:
            response = redirect(outcome.location or self.home_url, 303)
            if token:
                self.set_device_cookie(response, token)
            return response
        g.pop("otp_pro_status", None)
        status = self.status()
        assert status is not None
        return self._page("otp_pro/verify.html", outcome.status, error=outcome.message,
                          **self._verify_context(status))

    def send_view(self) -> Response:
        """``POST``: send (or resend) a code, optionally on ``channel``; back to ``next`` or the verify page."""
        member = self._need_member()
        if isinstance(member, Response):
            return member
        outcome = self.send_code(_form("channel") or None)
        flash(outcome.message, "info" if outcome.ok else "error")
        back = safe_next(_form("next"), url_for("otp_pro.verify"))
        return redirect(back, 303)

    def _setup_allowed(self, status: MemberStatus) -> Response | None:
        if status.requirement == "not_required":
            flash("Two-step verification is not offered for your account.", "error")
            return redirect(self.home_url, 303)
        if status.enrolled and status.verification_needed and not self.is_verified():
            return redirect(url_for("otp_pro.verify"), 303)
        if status.enrolled and not self.reauth_ok():
            flash("Confirm your password and a code to change your sign-in method.", "error")
            return redirect(url_for("otp_pro.settings"), 303)
        return None

    def _choose(self, status: MemberStatus, http_status: int = 200, error: str | None = None) -> Response:
        options = [(name, self.core.channels[name].label) for name in status.channels]
        return self._page("otp_pro/setup_choose.html", http_status, status=status, options=options,
                          unavailable=[(self.core.channels[n].label, why) for n, why in status.unavailable.items()
                                       if n in self.core.channels], error=error)

    def setup_view(self) -> Response:
        """``GET``: choose a channel. ``POST`` (``channel``): start setting it up (QR code, or a code sent)."""
        member = self._need_member()
        if isinstance(member, Response):
            return member
        status = self.status()
        assert status is not None
        refused = self._setup_allowed(status)
        if refused is not None:
            return refused
        if request.method == "GET":
            return self._choose(status)
        channel = _form("channel")
        if channel not in status.channels:
            return self._choose(status, 400, "Choose one of the methods listed.")
        try:
            info = self.core.begin_setup(member, channel, binding=self._binding(), **self._client())
        except LockedOut as exc:
            return self._choose(status, 429, self._locked_text(lock_minutes(exc.locked_until, self.core.clock())))
        except ThrottledError as exc:
            return self._choose(status, 429, f"Please wait {exc.retry_after} seconds before asking for another "
                                "code.")
        except (ChannelUnavailable, PolicyError, SetupError) as exc:
            return self._choose(status, 400, f"That method cannot be set up: {getattr(exc, 'reason', None) or exc}.")
        except DeliveryError:
            return self._choose(status, 502, "The code could not be sent just now. Try again in a moment.")
        session[K_SETUP] = channel
        label = self.core.channels[channel].label
        if info.challenge is not None:
            session[K_SENT] = {"at": time.time(), "hint": info.challenge.recipient_hint, "channel": channel,
                               "label": label}
        return self._page("otp_pro/setup_confirm.html", info=info, channel=channel, label=label,
                          is_link=channel.endswith(":magic_link"), code_length=self.core.settings.code_length,
                          hint=info.challenge.recipient_hint if info.challenge else None)

    def setup_confirm_view(self) -> Response:
        """``POST`` (``code``): finish the setup; the backup codes are shown on this one page, once."""
        member = self._need_member()
        if isinstance(member, Response):
            return member
        channel = session.get(K_SETUP) if isinstance(session.get(K_SETUP), str) else None
        label = self.core.channels[channel].label if channel in self.core.channels else ""
        code = request.form.get("code", "")
        common = {"info": None, "channel": channel, "label": label, "code_length": self.core.settings.code_length,
                  "is_link": False, "hint": (session.get(K_SENT) or {}).get("hint")}
        if not isinstance(code, str) or not code.strip():
            return self._page("otp_pro/setup_confirm.html", 400, error="Enter the code to confirm.", **common)
        try:
            codes = self.core.complete_setup(member, code[:_MAX_FIELD], **self._client())
        except InvalidCode as exc:
            result = exc.result if isinstance(exc.result, VerifyResult) else VerifyResult(False, reason="invalid")
            outcome = self._result_outcome(result)
            return self._page("otp_pro/setup_confirm.html", outcome.status, error=outcome.message, **common)
        except LockedOut as exc:
            minutes = lock_minutes(exc.locked_until, self.core.clock())
            return self._page("otp_pro/setup_confirm.html", 429, error=self._locked_text(minutes), **common)
        except SetupError as exc:
            flash(f"{str(exc).capitalize()}.", "error")
            return redirect(url_for("otp_pro.setup"), 303)
        return self._setup_done(codes)

    def _setup_done(self, codes: list[str] | tuple[str, ...]) -> Response:
        session.pop(K_SETUP, None)
        self._mark_verified()
        return self._page("otp_pro/backup_codes.html", codes=list(codes), fresh_setup=True,
                          next=safe_next(session.get(K_NEXT), self.home_url))

    def _settings_guard(self) -> Member | Response:
        member = self._need_member()
        if isinstance(member, Response):
            return member
        status = self.status()
        assert status is not None
        if status.must_setup:
            return redirect(url_for("otp_pro.setup"), 303)
        if status.verification_needed and not self.is_verified() and not self.is_trusted_device():
            return redirect(url_for("otp_pro.verify", next=url_for("otp_pro.settings")), 303)
        return member

    def settings_view(self) -> Response:
        """The settings page: method, backup codes, trusted devices, disable; changes need a confirmation."""
        member = self._settings_guard()
        if isinstance(member, Response):
            return member
        status = self.status()
        assert status is not None
        channel = status.channel or ""
        return self._page(
            "otp_pro/settings.html", status=status, channel=channel,
            channel_label=self.core.channels[channel].label if channel in self.core.channels else "",
            devices=self.core.trusted_devices(member) if status.enrolled else [],
            reauth=self.reauth_ok(), is_totp=channel == TOTP, sent=session.get(K_SENT),
            resend_in=self.resend_in(), code_length=self.core.settings.code_length,
            locked_minutes=lock_minutes(status.locked_until, self.core.clock()),
        )

    def reauth_view(self) -> Response:
        """``POST`` (``password``, ``code``): confirm the member before a change of MFA settings."""
        member = self._settings_guard()
        if isinstance(member, Response):
            return member
        status = self.status()
        assert status is not None
        password, code = request.form.get("password", ""), request.form.get("code", "")
        if not password or not isinstance(password, str):
            flash("Enter your current password.", "error")
            return redirect(url_for("otp_pro.settings"), 303)
        if not self.check_password(member, password[:1024]):
            flash("That password is not correct.", "error")
            return redirect(url_for("otp_pro.settings"), 303)
        if status.enrolled:
            if not isinstance(code, str) or not code.strip():
                flash("Enter a fresh one-time code as well.", "error")
                return redirect(url_for("otp_pro.settings"), 303)
            result = self.core.verify(member, code[:_MAX_FIELD], **self._client())
            if not result.ok:
                flash(self._result_outcome(result).message, "error")
                return redirect(url_for("otp_pro.settings"), 303)
        session[K_REAUTH] = {"login": session.get(K_LOGIN), "until": time.time() + self.reauth_seconds}
        flash(f"Confirmed: you can change your settings for the next {max(1, self.reauth_seconds // 60)} minutes.",
              "info")
        return redirect(url_for("otp_pro.settings"), 303)

    def _change_guard(self) -> Member | Response:
        member = self._settings_guard()
        if isinstance(member, Response):
            return member
        if not self.reauth_ok():
            flash("Confirm your password and a fresh code first.", "error")
            return redirect(url_for("otp_pro.settings"), 303)
        return member

    def backup_codes_view(self) -> Response:
        """``POST``: a new set of backup codes (the old ones stop working), shown once."""
        member = self._change_guard()
        if isinstance(member, Response):
            return member
        try:
            codes = self.core.regenerate_backup_codes(member, actor=member.id, **self._client())
        except NotEnrolled:
            flash("Set up two-step verification first.", "error")
            return redirect(url_for("otp_pro.settings"), 303)
        return self._page("otp_pro/backup_codes.html", codes=codes, fresh_setup=False,
                          next=url_for("otp_pro.settings"))

    def revoke_view(self, device_id: str) -> Response:
        """``POST``: revoke one trusted device of the member."""
        member = self._change_guard()
        if isinstance(member, Response):
            return member
        try:
            self.core.revoke_device(member, int(device_id) if device_id.isdigit() else -1, actor=member.id,
                                    **self._client())
        except NotFound:
            flash("That device is not in your list (it may have expired already).", "error")
        else:
            flash("The device was removed: it will be asked for a code at the next sign-in.", "info")
        return redirect(url_for("otp_pro.settings"), 303)

    def disable_view(self) -> Response:
        """``POST``: switch two-step verification off, when the policy allows it."""
        member = self._change_guard()
        if isinstance(member, Response):
            return member
        try:
            self.core.disable(member, actor=member.id, ip=request.remote_addr,
                              user_agent=self._client()["user_agent"])
        except PolicyError:
            flash("Two-step verification is required for your account and cannot be switched off.", "error")
        else:
            flash("Two-step verification is off. Your backup codes and trusted devices were removed.", "info")
        return redirect(url_for("otp_pro.settings"), 303)

    def magic_link_view(self) -> Response:
        """The magic-link landing: ``GET`` shows a button and never consumes; ``POST`` verifies the token."""
        site = self.core.settings.site_name
        if request.method == "GET":
            token = request.args.get("token", "")
            if not _TOKEN.match(token):
                return self._secure(self._page("otp_pro/message.html", 400, title="This sign-in link is incomplete",
                                               message="The link may have been cut in two by your mail program. "
                                               "Ask for a new link.", link=self.login_url))
            return self._secure(self._page("otp_pro/magic_link.html", token=token, site=site))
        token = _form("token")
        if not _TOKEN.match(token):
            return self._secure(self._page("otp_pro/message.html", 400, title="This sign-in link is incomplete",
                                           message="Ask for a new link.", link=self.login_url))
        binding = session.get(K_BINDING) if isinstance(session.get(K_BINDING), str) else None
        result = self.core.verify_token("magic_link", token, binding=binding, **self._client())
        if not result.ok:
            outcome = self._result_outcome(result)
            code = {"locked": 429, "wrong_browser": 403, "unknown": 404}.get(result.reason or "", 410)
            return self._secure(self._page("otp_pro/message.html", code, title="This sign-in link cannot be used",
                                           message=outcome.message, link=self.login_url))
        member = self.current_member()
        if member is None or member.id != result.member_id:
            # Only reachable without a binding: the password step of this browser named someone else.
            return self._secure(self._page("otp_pro/message.html", 403, title="Sign in first",
                                           message="Open the link in the browser where you entered your password.",
                                           link=self.login_url))
        if result.backup_codes:
            return self._secure(self._setup_done(result.backup_codes))
        self._mark_verified()
        return self._secure(redirect(safe_next(session.get(K_NEXT), self.home_url), 303))

    # ------------------------------------------------------------- JSON

    def _json(self, data: Mapping[str, Any], status: int = 200) -> Response:
        return self._secure(make_response(jsonify(dict(data)), status))

    def _json_body(self) -> Mapping[str, Any] | None:
        data = request.get_json(silent=True)
        return data if isinstance(data, Mapping) else None

    def api_status(self) -> Response:
        """``GET``: where this session stands (for AJAX pages), with the CSRF token to send back."""
        status = self.status()
        base: dict[str, Any] = {"csrf_token": self.csrf_token(), "signed_in": status is not None}
        if status is None:
            return self._json(base)
        sent = self.verify_context_sent() or {}
        base.update(
            verified=self.is_verified(), verification_needed=status.verification_needed,
            must_setup=status.must_setup, in_grace=status.in_grace, channel=status.channel,
            recipient_hint=sent.get("hint"), sent_channel=sent.get("channel"), resend_in=self.resend_in(),
            locked_minutes=lock_minutes(status.locked_until, self.core.clock()),
            next=safe_next(session.get(K_NEXT), self.home_url),
        )
        return self._json(base)

    def api_send(self) -> Response:
        """``POST`` ``{"channel": optional}``: send a code; ``{"ok", "message", "retry_after"}``."""
        data = self._json_body()
        if data is None:
            return self._json({"ok": False, "error": "bad_request", "message": "Send a JSON object."}, 400)
        channel = data.get("channel")
        if channel is not None and not isinstance(channel, str):
            return self._json({"ok": False, "error": "bad_request", "message": "channel must be a string."}, 400)
        outcome = self.send_code(channel or None)
        payload = outcome.as_json()
        if outcome.ok:
            sent = self.verify_context_sent() or {}
            payload.update(recipient_hint=sent.get("hint"), channel=sent.get("channel"))
        return self._json(payload, outcome.status)

    def api_delivery(self) -> Response:
        """``GET``: the delivery of this login's last code, polled by the verify page.

        ``{"ok": true, "status": "sending"|"sent"|"failed"|"replaced", "done", "message", "error_code",
        "fallback": [{"channel", "label"}]}``; ``{"ok": false, "error": "signed_out"|"nothing_sent"}`` otherwise.
        """
        if self.current_member() is None:
            return self._json({"ok": False, "error": "signed_out", "message": "Sign in first."}, 401)
        try:
            delivery = self.delivery()
        except OtpProError:  # a database hiccup: the page keeps polling
            log.warning("otp-pro delivery status could not be read")
            return self._json({"ok": False, "error": "unavailable", "message": "Try again in a moment."}, 503)
        if delivery is None:
            return self._json({"ok": False, "error": "nothing_sent", "message": "No code was sent yet."}, 404)
        return self._json({"ok": True, **delivery})

    def api_verify(self) -> Response:
        """``POST`` ``{"code": "...", "trust_device": false}``: ``{"ok": true, "location"}`` or the refusal."""
        data = self._json_body()
        if data is None:
            return self._json({"ok": False, "error": "bad_request", "message": "Send a JSON object."}, 400)
        code = data.get("code")
        if not isinstance(code, str):
            return self._json({"ok": False, "error": "empty", "message": "Enter the code you received."}, 400)
        if self.current_member() is not None and self.is_verified():
            return self._json({"ok": True, "message": "Already verified.",
                               "location": safe_next(session.get(K_NEXT), self.home_url)})
        outcome, token = self.verify_code(code, trust_device=data.get("trust_device") is True)
        response = self._json(outcome.as_json(), outcome.status)
        if token:
            self.set_device_cookie(response, token)
        return response


__all__ = ["CSRF_FIELD", "CSRF_HEADER", "SECURITY_HEADERS", "CsrfError", "OtpProFlask", "Outcome", "safe_next"]
