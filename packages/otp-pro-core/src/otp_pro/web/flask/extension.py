"""``OtpProFlask``, the Flask extension: its options, the login it keeps, and the facade a site calls.

:mod:`.wiring` plugs it into the app (blueprint, request hooks, error pages);
its view and API methods hand over to :mod:`.views` and :mod:`.api`, its
operations on codes to :mod:`.codes`. A site calls ``login``/``logout`` around
its own password step, reads the session's state (``current_member``,
``status``, ``is_verified``) and may build its own login pages on
``send_code``, ``verify_code`` and ``set_device_cookie``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from flask import Flask, g, request, session, url_for
from werkzeug.wrappers import Response

from ...core import TOTP, OtpPro
from ...member import Member
from ...results import MemberStatus
from ...settings import is_loopback_host
from ..gate import GateConfig, SessionFacts, default_allow
from . import api, codes, security, settings_views, setup_views, state, views, wiring
from .outcome import Outcome
from .state import DEVICE_COOKIE, G_MEMBER, G_STATUS, K_BINDING, K_LOGIN, K_MEMBER, K_NEXT, safe_next


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
        """The :class:`~otp_pro.OtpPro` instance (an error until one is given)."""
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
        wiring.install(self, app)

    # ------------------------------------------------------------- CSRF

    def csrf_token(self) -> str:
        """The session's CSRF token (made on first use); put it in every form as ``csrf_token``."""
        return security.csrf_token()

    def check_csrf(self) -> None:
        """Raise :class:`CsrfError` unless the request carries the session's token (form field or header)."""
        security.check_csrf()

    # ----------------------------------------------------------- session

    def current_member(self) -> Member | None:
        """The signed-in member of this request (password step passed), or None."""
        if G_MEMBER in g:
            member: Member | None = g.get(G_MEMBER)
            return member
        member_id = session.get(K_MEMBER)
        member = self.load_member(member_id) if isinstance(member_id, str) and member_id else None
        setattr(g, G_MEMBER, member)
        return member

    def status(self) -> MemberStatus | None:
        """The signed-in member's :class:`~otp_pro.MemberStatus` (once per request)."""
        if G_STATUS in g:
            cached: MemberStatus | None = g.get(G_STATUS)
            return cached
        member = self.current_member()
        status = self.core.status(member) if member is not None else None
        setattr(g, G_STATUS, status)
        return status

    def is_verified(self) -> bool:
        """Whether this login passed the second step (in this session)."""
        return state.is_verified()

    def device_cookie_name(self) -> str:
        """The trusted-device cookie's name: ``__Host-`` before it when the cookie is ``Secure``."""
        return f"__Host-{self._device_cookie}" if self._cookie_secure() else self._device_cookie

    def _cookie_secure(self) -> bool:
        # Off only for plain-http development on the loopback interface.
        return self.secure_cookies or not is_loopback_host(request.host)

    def is_trusted_device(self) -> bool:
        """Whether the request carries a trusted-device cookie of the signed-in member."""
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

    def login(self, member: Member, *, next: str | None = None, send: bool = True) -> str:
        """Sign ``member`` in after the site's password check; answer the address to redirect to.

        Rotates the session and starts a new login (so a new second step). A
        trusted-device cookie of this member skips the step. When the member must
        verify and their channel delivers codes, the first code is sent now
        (``send=False`` leaves that to the verify page's button).
        """
        state.restart()
        session[K_MEMBER] = member.id
        session[K_LOGIN] = secrets.token_urlsafe(24)
        session[K_BINDING] = secrets.token_urlsafe(32)
        target = safe_next(next, self.home_url)
        session[K_NEXT] = target
        setattr(g, G_MEMBER, member)
        status = self.status()
        assert status is not None
        if status.must_setup:
            return url_for("otp_pro.setup")
        if not status.verification_needed:
            return target
        if self.is_trusted_device():
            state.mark_verified()
            return target
        if send and status.channel and status.channel != TOTP:
            self.send_code()
        return url_for("otp_pro.verify")

    def logout(self) -> None:
        """End the login: the whole session is cleared and rotated."""
        state.restart()

    # ------------------------------------------------------ the operations

    def resend_in(self) -> int:
        """Seconds before another code may be asked for (0: now), from the last send of this session."""
        return state.resend_in(self.core.settings.resend_cooldown_seconds)

    def send_code(self, channel: str | None = None) -> Outcome:
        """Send a code (or link) to the signed-in member; the masked recipient is kept for the pages."""
        return codes.send_code(self, channel)

    def verify_code(self, code: object, *, trust_device: bool = False) -> tuple[Outcome, str | None]:
        """Check what the member typed; on success the session is verified (and rotated).

        Returns the outcome and, when ``trust_device`` was asked and allowed, the
        trusted-device token to set as a cookie (see :meth:`set_device_cookie`).
        """
        return codes.verify_code(self, code, trust_device=trust_device)

    def set_device_cookie(self, response: Response, token: str) -> None:
        """Set the trusted-device cookie: ``Secure`` (see ``secure_cookies``), ``HttpOnly``, ``SameSite=Lax``."""
        days = self.core.settings.trusted_device_days
        response.set_cookie(self.device_cookie_name(), token, max_age=days * 86400, path="/",
                            secure=self._cookie_secure(), httponly=True, samesite="Lax")

    def reauth_ok(self) -> bool:
        """Whether this login confirmed password + code within ``reauth_seconds``."""
        return state.reauth_ok()

    def verify_context_sent(self) -> dict[str, Any] | None:
        """Where the last code of this login went: ``{"hint", "channel", "label", "at"}``, or None."""
        return state.last_sent()

    def delivery(self) -> dict[str, Any] | None:
        """The delivery of this login's last code, for the verify page and ``/api/delivery``.

        ``{"status", "label", "hint", "error_code", "done", "message", "fallback"}``; ``status`` is
        ``sending`` (queued or being sent), ``sent``, ``failed`` or ``replaced``. None before any send.
        """
        return codes.delivery(self)

    # -------------------------------------------------------------- views

    def verify_view(self) -> Response:
        """``GET``: the code form. ``POST``: check the code (``code``, ``trust_device``)."""
        return views.verify(self)

    def send_view(self) -> Response:
        """``POST``: send (or resend) a code, optionally on ``channel``; back to ``next`` or the verify page."""
        return views.send(self)

    def setup_view(self) -> Response:
        """``GET``: choose a channel. ``POST`` (``channel``): start setting it up (QR code, or a code sent)."""
        return setup_views.setup(self)

    def setup_confirm_view(self) -> Response:
        """``POST`` (``code``): finish the setup; the backup codes are shown on this one page, once."""
        return setup_views.setup_confirm(self)

    def settings_view(self) -> Response:
        """The settings page: factors, backup codes, trusted devices, disable; changes need a confirmation."""
        return settings_views.settings(self)

    def reauth_view(self) -> Response:
        """``POST`` (``password``, ``code``): confirm the member before a change of MFA settings."""
        return settings_views.reauth(self)

    def backup_codes_view(self) -> Response:
        """``POST``: a new set of backup codes (the old ones stop working), shown once."""
        return settings_views.backup_codes(self)

    def revoke_view(self, device_id: str) -> Response:
        """``POST``: revoke one trusted device of the member."""
        return settings_views.revoke(self, device_id)

    def disable_view(self) -> Response:
        """``POST``: switch two-step verification off, when the policy allows it."""
        return settings_views.disable(self)

    def factor_rename_view(self, factor_id: str) -> Response:
        """``POST`` (``label``): give one of the member's factors a name."""
        return settings_views.factor_rename(self, factor_id)

    def factor_default_view(self, factor_id: str) -> Response:
        """``POST``: make one of the member's factors the default (needs a fresh confirmation)."""
        return settings_views.factor_default(self, factor_id)

    def factor_remove_view(self, factor_id: str) -> Response:
        """``POST``: remove one of the member's factors (needs a fresh confirmation)."""
        return settings_views.factor_remove(self, factor_id)

    def factor_reconfirm_view(self, factor_id: str) -> Response:
        """``POST``: confirm a delivered factor at the member's current address (needs a fresh confirmation)."""
        return settings_views.factor_reconfirm(self, factor_id)

    def magic_link_view(self) -> Response:
        """The magic-link landing: ``GET`` shows a button and never consumes; ``POST`` verifies the token."""
        return views.magic_link(self)

    # ------------------------------------------------------------- JSON

    def api_status(self) -> Response:
        """``GET``: where this session stands (for AJAX pages), with the CSRF token to send back."""
        return api.status(self)

    def api_send(self) -> Response:
        """``POST`` ``{"channel": optional}``: send a code; ``{"ok", "message", "retry_after"}``."""
        return api.send(self)

    def api_delivery(self) -> Response:
        """``GET``: the delivery of this login's last code, polled by the verify page.

        ``{"ok": true, "status": "sending"|"sent"|"failed"|"replaced", "done", "message", "error_code",
        "fallback": [{"channel", "label"}]}``; ``{"ok": false, "error": "signed_out"|"nothing_sent"}`` otherwise.
        """
        return api.delivery(self)

    def api_verify(self) -> Response:
        """``POST`` ``{"code": "...", "trust_device": false}``: ``{"ok": true, "location"}`` or the refusal."""
        return api.verify(self)

    def api_openapi(self) -> Response:
        """``GET``: the OpenAPI document of the JSON endpoints (``<url_prefix>/api/openapi.json``)."""
        return api.openapi_document(self)
