"""``OtpProStarlette``: the options of one site, and the facade its own views call (all of it async).

The pages, the JSON API, the login hand-off and the codes are the flow layer's
(:mod:`otp_pro.web.flow`); :mod:`.adapter` maps ASGI onto it, :mod:`.middleware` gates every request,
:mod:`.routing` mounts the flow's routes and :mod:`.dependencies` guards the site's own endpoints.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import Any

from starlette.requests import HTTPConnection
from starlette.routing import Mount, Router

from otp_pro.core import OtpPro
from otp_pro.member import Member
from otp_pro.results import MemberStatus
from otp_pro.web.flow import (
    DEVICE_COOKIE,
    Flow,
    Outcome,
    Route,
    Visit,
    codes,
    first_factor_html,
    login,
    logout,
    sign_in_first_factor,
)

from . import routing
from .adapter import mark_changed, run, snapshot
from .dependencies import SecondStepRequired, second_step_required
from .middleware import OtpProMiddleware

#: The largest urlencoded form of the site's own views read for its ``csrf_token`` field (a larger one
#: carries the token in the ``X-CSRF-Token`` header).
CSRF_FORM_LIMIT = 1024 * 1024


class OtpProStarlette:
    """otp-pro in a Starlette or FastAPI app: the gate, the pages and JSON API, CSRF, step-up.

    ``load_member(member_id) -> Member | None`` rebuilds the member of a session;
    ``check_password(member, password) -> bool`` is asked before a change of MFA settings (with a fresh
    code as well). Both are called in worker threads: they may block. The other options are the flow's
    (:class:`~otp_pro.web.flow.Flow`): ``url_prefix`` (default ``/otp``), ``login_url``, ``logout_url``,
    ``home_url``, ``allow``/``extra_allow`` (the gate's allow-list; add the site's own static files
    there), ``secure_cookies``, ``reauth_seconds``, ``device_cookie``, ``session_cookie``; and the
    adapter's: ``csrf_app_wide`` (check the CSRF token on every POST, PUT, PATCH and DELETE of the app,
    not only the flow's), ``csrf_exempt`` (paths, and the paths below them, that it skips: an API with
    bearer tokens), ``gate`` (gate every HTTP request); ``on_first_factor(member)`` (called, in a worker
    thread, when a factor alone signed ``member`` in: "Sign in with a passkey". The flow's session is
    signed in already, second step passed; a site that keeps a login of its own records it here);
    ``operator(member) -> bool`` (who may use the operator console under ``<url_prefix>/operator``; not
    mounted without it; called in a worker thread) and ``operator_max_age`` (seconds a second step lets an
    operator use it before a fresh code).
    """

    def __init__(
        self,
        otp: OtpPro,
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
        device_cookie: str = DEVICE_COOKIE,
        session_cookie: str = "session",
        csrf_app_wide: bool = True,
        csrf_exempt: tuple[str, ...] = (),
        csrf_form_limit: int = CSRF_FORM_LIMIT,
        gate: bool = True,
        on_first_factor: Callable[[Member], None] | None = None,
        operator: Callable[[Member], bool] | None = None,
        operator_max_age: int = 3600,
    ) -> None:
        if not url_prefix.strip("/"):
            raise ValueError("url_prefix must name a path under the site (such as /otp): the flow's routes are "
                             "mounted there")
        self.flow = Flow(otp, load_member=load_member, check_password=check_password, url_prefix=url_prefix,
                         login_url=login_url, logout_url=logout_url, home_url=home_url, allow=allow,
                         extra_allow=extra_allow, secure_cookies=secure_cookies, reauth_seconds=reauth_seconds,
                         device_cookie=device_cookie, session_cookie=session_cookie,
                         on_first_factor=(lambda _v, member: on_first_factor(member)) if on_first_factor else None,
                         operator=operator, operator_max_age=operator_max_age)
        self.csrf_app_wide = csrf_app_wide
        self.csrf_exempt = tuple(csrf_exempt)
        self.csrf_form_limit = csrf_form_limit
        self.gate_enabled = gate
        self.router: Router = routing.router(self.flow)

    @property
    def core(self) -> OtpPro:
        """The :class:`~otp_pro.OtpPro` instance."""
        return self.flow.core

    # ------------------------------------------------------------ wiring

    def install(self, app: Any) -> None:
        """Mount the flow's routes at ``url_prefix``, add the middleware and the guards' exception handler.

        ``app`` is a Starlette or FastAPI application. Add the session middleware after this call, so that
        it wraps the gate (Starlette runs the middleware added last first).
        """
        app.add_middleware(OtpProMiddleware, web=self)
        # At the front: a catch-all route of the site must not shadow the flow's pages.
        app.router.routes[0:0] = [Mount(self.flow.url_prefix, app=self.router, name="otp_pro"),
                                  *routing.outside_routes(self.flow)]
        app.add_exception_handler(SecondStepRequired, second_step_required)

    def owns(self, path: str) -> bool:
        """Whether ``path`` (under the site root) is one of the flow's pages, endpoints or static files."""
        prefix = self.flow.url_prefix
        return path == prefix or path.startswith(prefix + "/") or self.route_at(path) is not None

    def route_at(self, path: str) -> Route | None:
        """The flow's route outside the prefix at ``path`` (the magic-link landing), or None."""
        return next((r for r in self.flow.routes if not r.prefixed and r.path.rstrip("/") == path.rstrip("/")),
                    None)

    def checks_csrf(self, path: str) -> bool:
        """Whether a POST of the site's own view at ``path`` must carry the session's CSRF token."""
        if not self.csrf_app_wide:
            return False
        # Normalised first: "/api/../login" is not exempt because it starts with an exempt "/api".
        clean = posixpath.normpath("/" + path.lstrip("/"))
        return not any(clean == p.rstrip("/") or clean.startswith(p.rstrip("/") + "/") for p in self.csrf_exempt)

    # ------------------------------------------------------- per request

    def visit(self, request: HTTPConnection) -> Visit:
        """This request's :class:`~otp_pro.web.flow.Visit` (the flow's view of it, made by the middleware)."""
        return routing.visit_of(request.scope)

    def csrf_token(self, request: HTTPConnection) -> str:
        """The session's CSRF token (made on first use): put it in the site's forms as ``csrf_token``, or send
        it as the ``X-CSRF-Token`` header."""
        v = self.visit(request)
        before = snapshot(v.session)
        token = v.csrf_token()
        mark_changed(v.session, before)
        return token

    def is_verified(self, request: HTTPConnection) -> bool:
        """Whether this login passed the second step (in this session)."""
        return self.visit(request).is_verified()

    async def current_member(self, request: HTTPConnection) -> Member | None:
        """The signed-in member of this request (password step passed), or None."""
        return await run(self.visit(request).member)

    async def status(self, request: HTTPConnection) -> MemberStatus | None:
        """The signed-in member's :class:`~otp_pro.MemberStatus`."""
        return await run(self.visit(request).status)

    async def login(self, request: HTTPConnection, member: Member, *, next: str | None = None,
                    send: bool = True) -> str:
        """Sign ``member`` in after the site's password check; answer the address to redirect to (with 303).

        Clears and rotates the session and starts a new login (so a new second step). A trusted-device
        cookie of this member skips the step. When the member must verify and their channel delivers
        codes, the first code is sent now, in a worker thread (``send=False`` leaves it to the verify
        page's button). Where to go: the verify page, forced setup, or ``next`` (a local path only).
        """
        return await self._call(request, login, member, next=next, send=send)

    async def logout(self, request: HTTPConnection) -> None:
        """End the login: the whole session is cleared and rotated."""
        await self._call(request, logout)

    async def first_factor_html(self, request: HTTPConnection, *, next: str | None = None) -> str:
        """The "Sign in with a passkey" buttons for the site's login page (HTML, with their script): empty when
        no factor signs members in on its own. They post to the flow, which signs the member in and calls
        ``on_first_factor``; a refusal comes back to ``login_url`` with the reason shown above the buttons."""
        return str(await self._call(request, first_factor_html, next=next))

    async def sign_in_first_factor(self, request: HTTPConnection, channel: str, answer: str, *,
                                   next: str | None = None) -> tuple[Outcome, Member | None]:
        """For a login view of the site's own: judge a first factor's ``answer`` (to this session's challenge
        from ``api_first_factor``) and sign the member it proves in; the member, or None and why."""
        return await self._call(request, sign_in_first_factor, channel, answer, next=next)

    async def send_code(self, request: HTTPConnection, channel: str | None = None) -> Outcome:
        """Send a code (or link) to the signed-in member, for a site's own login page."""
        return await self._call(request, codes.send_code, channel)

    async def verify_code(self, request: HTTPConnection, code: object, *,
                          trust_device: bool = False) -> tuple[Outcome, str | None]:
        """Check what the member typed; on success the session is verified (and rotated).

        Returns the outcome and, when ``trust_device`` was asked and allowed, the trusted-device token
        (set it with ``response.set_cookie`` as :meth:`Visit.device_cookie <otp_pro.web.flow.Visit.device_cookie>`
        describes).
        """
        return await self._call(request, codes.verify_code, code, trust_device=trust_device)

    async def _call(self, request: HTTPConnection, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        v = self.visit(request)
        before = snapshot(v.session)
        try:
            return await run(func, v, *args, **kwargs)
        finally:
            mark_changed(v.session, before)
