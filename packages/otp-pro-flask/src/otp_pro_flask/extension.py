"""``OtpProFlask``, the Flask extension: its options, and the facade a site calls.

The pages, the JSON API, the login hand-off and the codes are the flow layer's
(:mod:`otp_pro.web.flow`); :mod:`.adapter` maps Flask's request, session and
responses onto it and :mod:`.wiring` mounts its routes. A site calls
``login``/``logout`` around its own password step, reads the session's state
(``current_member``, ``status``, ``is_verified``), may build its own login pages
on ``send_code``, ``verify_code`` and ``set_device_cookie``, and guards its
sensitive views with :meth:`OtpProFlask.recently_verified`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Flask
from werkzeug.wrappers import Response

from otp_pro import i18n
from otp_pro.core import OtpPro
from otp_pro.member import Member
from otp_pro.results import MemberStatus
from otp_pro.web.flow import DEVICE_COOKIE, Flow, Outcome, Visit, check_csrf, codes, first_factor, login, logout
from otp_pro.web.flow import state as flow_state
from otp_pro.web.gate import GateConfig, SessionFacts, default_allow

from . import adapter, wiring

_View = TypeVar("_View", bound=Callable[..., Any])


class OtpProFlask:
    """The Flask integration: gate, pages (blueprint ``otp_pro``), JSON endpoints, CSRF, sample templates.

    Options: ``url_prefix`` of the views (default ``/otp``); ``login_url`` and
    ``logout_url`` (the site's own, allow-listed); ``home_url`` (where to go
    after verification without ``next``); ``allow`` (the gate's allow-list,
    default :func:`~otp_pro.web.gate.default_allow`; ``extra_allow`` adds to it); ``secure_cookies`` (the
    trusted-device cookie is ``Secure``; ``False`` is honoured only for requests
    to 127.0.0.1/localhost); ``reauth_seconds`` (how long a password + code
    confirmation lets a member change MFA settings); ``csrf_app_wide`` (check the
    CSRF token on every POST of the app, not only the extension's);
    ``security_headers_app_wide``; ``gate`` (install the gate as a
    ``before_request`` hook); ``on_first_factor(member)`` (called, in the request, when a factor alone
    signed ``member`` in: "Sign in with a passkey"; the flow has signed them in already, a site with a
    login of its own, Flask-Login's ``login_user``, does it here); ``operator(member) -> bool`` (who may use
    the operator console under ``<url_prefix>/operator``: members, audit log; not mounted without it) and
    ``operator_max_age`` (seconds a second step lets an operator use it before a fresh code).
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
        on_first_factor: Callable[[Member], None] | None = None,
        operator: Callable[[Member], bool] | None = None,
        operator_max_age: int = 3600,
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
        self.on_first_factor = on_first_factor
        self.operator = operator
        self.operator_max_age = operator_max_age
        self._flow: Flow | None = None
        if app is not None:
            self.init_app(app, otp)

    # ------------------------------------------------------------ wiring

    @property
    def core(self) -> OtpPro:
        """The :class:`~otp_pro.OtpPro` instance (an error until one is given)."""
        if self.otp is None:
            raise RuntimeError("OtpProFlask has no OtpPro instance: pass it to the constructor or init_app")
        return self.otp

    @property
    def flow(self) -> Flow:
        """The :class:`~otp_pro.web.flow.Flow` behind the pages (made by :meth:`init_app`)."""
        if self._flow is None:
            raise RuntimeError("OtpProFlask is not set up yet: call init_app(app, otp)")
        return self._flow

    @property
    def gate_config(self) -> GateConfig:
        """The gate's configuration: the verify and setup pages, the allow-list."""
        return self.flow.gate_config

    @property
    def magic_link_path(self) -> str | None:
        """The magic-link landing path (``providers.magic_links.path``) when the payload is installed."""
        return self.flow.magic_link_path

    def init_app(self, app: Flask, otp: OtpPro | None = None) -> None:
        """Register the blueprint, the gate, CSRF checks and template helpers on ``app``."""
        if otp is not None:
            self.otp = otp
        allow = self._allow
        if allow is None:
            magic = self.core.payloads.get("magic_link")
            magic_path = getattr(magic, "path", None) if magic is not None else None
            allow = default_allow(self.url_prefix, login=self.login_url, logout=self.logout_url,
                                  magic_link=magic_path if isinstance(magic_path, str) else None)
            if app.static_url_path:
                allow = (*allow, app.static_url_path)
        self._flow = Flow(
            self.core, load_member=self.load_member, check_password=self.check_password,
            url_prefix=self.url_prefix, login_url=self.login_url, logout_url=self.logout_url,
            home_url=self.home_url, allow=allow, extra_allow=self._extra_allow, secure_cookies=self.secure_cookies,
            reauth_seconds=self.reauth_seconds, device_cookie=self._device_cookie, renderer=adapter.render,
            session_cookie=app.config.get("SESSION_COOKIE_NAME") or "session",
            on_first_factor=self._first_factor_signed_in, operator=self.operator,
            operator_max_age=self.operator_max_age,
        )
        wiring.install(self, app)

    def visit(self) -> Visit:
        """This request's :class:`~otp_pro.web.flow.Visit` (the flow's view of it)."""
        return adapter.visit(self)

    def language(self) -> i18n.Language:
        """The language of this request's texts, as the flow chose it (the member's ``locale``, else
        ``Accept-Language``, else ``default_locale``): wrap a view's own texts in ``with i18n.using(...)``."""
        return self.flow.language(self.visit())

    # ------------------------------------------------------------- CSRF

    def csrf_token(self) -> str:
        """The session's CSRF token (made on first use); put it in every form as ``csrf_token``."""
        return self.visit().csrf_token()

    def check_csrf(self) -> None:
        """Raise :class:`~otp_pro.web.flow.CsrfError` unless the request carries the session's token."""
        v = self.visit()
        check_csrf(v.request, v.session)

    # ----------------------------------------------------------- session

    def current_member(self) -> Member | None:
        """The signed-in member of this request (password step passed), or None."""
        return self.visit().member()

    def status(self) -> MemberStatus | None:
        """The signed-in member's :class:`~otp_pro.MemberStatus` (once per request)."""
        return self.visit().status()

    def is_verified(self) -> bool:
        """Whether this login passed the second step (in this session)."""
        return self.visit().is_verified()

    def device_cookie_name(self) -> str:
        """The trusted-device cookie's name: ``__Host-`` before it when the cookie is ``Secure``."""
        return self.visit().device_cookie_name()

    def is_trusted_device(self) -> bool:
        """Whether the request carries a trusted-device cookie of the signed-in member."""
        return self.visit().is_trusted_device()

    def facts(self) -> SessionFacts:
        """The gate's facts for this request."""
        return self.visit().facts()

    def login(self, member: Member, *, next: str | None = None, send: bool = True) -> str:
        """Sign ``member`` in after the site's password check; answer the address to redirect to.

        Rotates the session and starts a new login (so a new second step). A
        trusted-device cookie of this member skips the step. When the member must
        verify and their channel delivers codes, the first code is sent now
        (``send=False`` leaves that to the verify page's button).
        """
        return login(self.visit(), member, next=next, send=send)

    def logout(self) -> None:
        """End the login: the whole session is cleared and rotated."""
        logout(self.visit())

    def first_factor_options(self) -> list[dict[str, Any]]:
        """The login page's "Sign in with a passkey" buttons (:meth:`Flow.first_factor_options`)."""
        return self.flow.first_factor_options()

    def sign_in_first_factor(self, channel: str, answer: str, *, next: str | None = None
                             ) -> tuple[Outcome, Member | None]:
        """For a login view of the site's own: judge a first factor's ``answer`` (a passkey's, to this session's
        challenge from ``api_first_factor``) and sign the member it proves in; the member, or None and why."""
        return first_factor.sign_in(self.visit(), channel, answer, next=next)

    def _first_factor_signed_in(self, v: Visit, member: Member) -> None:
        if self.on_first_factor is not None:
            self.on_first_factor(member)

    # ------------------------------------------------------ the operations

    def resend_in(self) -> int:
        """Seconds before another code may be asked for (0: now), from the last send of this session."""
        return self.visit().resend_in()

    def send_code(self, channel: str | None = None) -> Outcome:
        """Send a code (or link) to the signed-in member; the masked recipient is kept for the pages."""
        return codes.send_code(self.visit(), channel)

    def verify_code(self, code: object, *, trust_device: bool = False) -> tuple[Outcome, str | None]:
        """Check what the member typed; on success the session is verified (and rotated).

        Returns the outcome and, when ``trust_device`` was asked and allowed, the
        trusted-device token to set as a cookie (see :meth:`set_device_cookie`).
        """
        return codes.verify_code(self.visit(), code, trust_device=trust_device)

    def set_device_cookie(self, response: Response, token: str) -> None:
        """Set the trusted-device cookie: ``Secure`` (see ``secure_cookies``), ``HttpOnly``, ``SameSite=Lax``."""
        adapter.set_cookie(response, self.visit().device_cookie(token))

    def reauth_ok(self) -> bool:
        """Whether this login confirmed password + code within ``reauth_seconds``."""
        return self.visit().reauth_ok()

    def verify_context_sent(self) -> dict[str, Any] | None:
        """Where the last code of this login went: ``{"hint", "channel", "label", "at"}``, or None; ``label`` in
        :meth:`language`."""
        with i18n.using(self.language()):
            return flow_state.last_sent(self.visit().session)

    def delivery(self) -> dict[str, Any] | None:
        """The delivery of this login's last code, for the verify page and ``/api/delivery``.

        ``{"status", "label", "hint", "error_code", "done", "message", "fallback"}``; ``status`` is
        ``sending`` (queued or being sent), ``sent``, ``failed`` or ``replaced``. None before any send.
        """
        return codes.delivery(self.visit())

    # ------------------------------------------------------------ step-up

    def recently_verified(self, max_age: int = 300) -> Callable[[_View], _View]:
        """A view decorator: the view runs only when this login passed a second step within ``max_age`` seconds.

        Otherwise the member is sent to the verify page for a fresh code (a trusted device does not skip
        it) and brought back to the view's address once it is passed; signed out, to the login page. An
        AJAX call gets ``401 {"error": "verification_required", "location"}``::

            @app.post("/account/delete")
            @otp_web.recently_verified(max_age=300)
            def delete_account(): ...
        """

        def decorate(view: _View) -> _View:
            @functools.wraps(view)
            def guarded(*args: Any, **kwargs: Any) -> Any:
                v = self.visit()
                answer = self.flow.step_up(v, max_age)
                if answer is not None:
                    return adapter.to_response(self, answer, v)
                return view(*args, **kwargs)

            return cast(_View, guarded)

        return decorate
