"""``Flow``: the pages and the JSON API of the second step, once, for every adapter.

A site (through its adapter) makes one :class:`Flow` with the options every
adapter shares, mounts :attr:`Flow.routes`, and per request makes a
:class:`~.visit.Visit` and calls :meth:`Flow.dispatch` (a route of the flow),
:meth:`Flow.gate` (any other request) or :meth:`Flow.step_up` (a view of the
site's own that needs a recent second step). See :mod:`.interface`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from ... import i18n
from ...core import OtpPro
from ...errors import StorageError
from ...member import Member
from ..gate import GateConfig, decide, default_allow, is_allowed
from . import ceremonies, state
from . import routes as route_table
from .interface import Answer, Json, Page, Redirect, Renderer, Request, Route, Session
from .render import default_renderer
from .security import CsrfError, csrf_ok, secure
from .texts import CSRF_FAILED_TEXT, STORAGE_FAILED_TEXT
from .visit import Visit

log = logging.getLogger("otp_pro.web")


class Flow:
    """The flow layer of one site.

    Options: ``load_member(member_id) -> Member | None`` rebuilds the member of a session;
    ``check_password(member, password) -> bool`` is asked before a change of MFA settings (with a fresh
    code as well). ``url_prefix`` of the routes (default ``/otp``); ``login_url`` and ``logout_url`` (the
    site's own, allow-listed); ``home_url`` (where to go after verification without ``next``); ``allow``
    (the gate's allow-list, default :func:`~otp_pro.web.gate.default_allow`; ``extra_allow`` adds to it);
    ``secure_cookies`` (the trusted-device cookie is ``Secure``; ``False`` is honoured only for requests to
    127.0.0.1/localhost); ``reauth_seconds`` (how long a password + code confirmation lets a member change
    MFA settings); ``device_cookie`` (the trusted-device cookie's name); ``static_url`` (where the flow's
    static files are served, default ``<url_prefix>/static``); ``renderer`` (turns a :class:`Page` into
    HTML, default the core's Jinja2 environment over ``otp_pro/web/templates``); ``session_cookie`` (the
    name of the site's session cookie, as the OpenAPI document names it); ``on_first_factor(visit, member)``
    (called when a factor alone signed ``member`` in, a passkey without a password, after the flow's own login:
    a site with a login of its own signs the member in there too); ``operator(member) -> bool`` (who may use
    the operator console: its routes are mounted only when given, see :mod:`.operator`) and
    ``operator_max_age`` (how many seconds a second step lets an operator use the console before a fresh one).
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
        device_cookie: str = state.DEVICE_COOKIE,
        static_url: str | None = None,
        renderer: Renderer | None = None,
        session_cookie: str = "session",
        on_first_factor: Callable[[Visit, Member], None] | None = None,
        operator: Callable[[Member], bool] | None = None,
        operator_max_age: int = 3600,
    ) -> None:
        self.core = otp
        self.load_member = load_member
        self.check_password = check_password
        self.url_prefix = "/" + url_prefix.strip("/") if url_prefix.strip("/") else ""
        self.login_url = login_url
        self.logout_url = logout_url
        self.home_url = home_url
        self.secure_cookies = secure_cookies
        self.reauth_seconds = reauth_seconds
        self.device_cookie = device_cookie
        self.static_url = static_url if static_url is not None else f"{self.url_prefix}/static"
        self.renderer: Renderer = renderer or default_renderer()
        self.session_cookie = session_cookie
        self.on_first_factor = on_first_factor
        self.operator = operator
        self.operator_max_age = operator_max_age
        self.routes: tuple[Route, ...] = route_table.routes(self.magic_link_path, operator=operator is not None)
        self._by_name = {route.name: route for route in self.routes}
        if allow is None:
            allow = default_allow(self.url_prefix or "/", login=login_url, logout=logout_url,
                                  magic_link=self.magic_link_path)
        # The languages pages are offered in, lower-cased name -> name: shipped catalogs and the site's own.
        self.locales = i18n.CORE.offered(otp.settings.locale_dirs)
        self.gate_config = GateConfig(verify_path=f"{self.url_prefix}/verify", setup_path=f"{self.url_prefix}/setup",
                                      allow=(*allow, *extra_allow))

    @property
    def magic_link_path(self) -> str | None:
        """The magic-link landing path (``providers.magic_links.path``) when the payload is installed."""
        payload = self.core.payloads.get("magic_link")
        path = getattr(payload, "path", None) if payload is not None else None
        return path if isinstance(path, str) else None

    def first_factor_options(self) -> list[dict[str, Any]]:
        """The login page's "Sign in with a passkey" buttons: ``{"channel", "input", "label"}`` of each channel
        that signs members in on its own on this site (none unless a factor type's settings turn it on)."""
        core = self.core
        return [{"channel": name, "input": ceremonies.input_kind(core, name),
                 "label": i18n.label(core.channels[name].label)} for name in core.first_factor_channels()]

    # ------------------------------------------------------------ requests

    def visit(self, request: Request, session: Session) -> Visit:
        """The flow's view of one request (make one per request)."""
        return Visit(self, request, session)

    def route(self, name: str) -> Route:
        """The route called ``name`` (``verify``, ``api_status``, ...)."""
        return self._by_name[name]

    def full_path(self, route: Route) -> str:
        """``route``'s path on the site, prefix included (parameters still written ``<name>``)."""
        return f"{self.url_prefix}{route.path}" if route.prefixed else route.path

    def url(self, name: str, /, *, root: str = "", **params: Any) -> str:
        """The address of route ``name`` (``static``: ``filename``): path parameters filled, the rest a query."""
        if name == "static":
            return f"{root}{self.static_url}/{quote(str(params.pop('filename', '')))}"
        path = self.full_path(self.route(name))
        for key in list(params):
            marker = f"<{key}>"
            if marker in path:
                path = path.replace(marker, quote(str(params.pop(key)), safe=""))
        query = {k: str(v) for k, v in params.items() if v is not None}
        return root + path + (f"?{urlencode(query, quote_via=quote)}" if query else "")

    def language(self, v: Visit) -> i18n.Language:
        """The language of ``v``'s pages: the member's ``locale``, else the best of the request's
        ``Accept-Language``, else ``default_locale``; only a language with a catalog is chosen."""
        if v.language is None:
            try:
                member = v.member()
            except StorageError:  # the page that says so is still written in the browser's language
                member = None
            locale = i18n.for_request(member.locale if member else None, v.request.header("accept-language"),
                                      self.locales, self.core.settings.default_locale)
            v.language = i18n.Language(locale, self.core.settings.locale_dirs)
        return v.language

    def dispatch(self, route: Route, v: Visit, **params: str) -> Answer:
        """Answer ``route`` for ``v``: its guard, the CSRF check on a POST, the handler, failure pages, security
        headers.

        A POST without the session's token gets a 400 page (JSON on the API), a database failure a 503
        (nothing was changed: its transaction was rolled back), never a 500. Texts are in :meth:`language`.
        """
        with i18n.using(self.language(v)):
            return self._dispatch(route, v, **params)

    def _dispatch(self, route: Route, v: Visit, **params: str) -> Answer:
        answer: Answer
        try:
            refused = route.guard(v) if route.guard is not None else None
            if refused is not None:
                answer = refused
            else:
                if route.csrf and v.request.method == "POST" and not csrf_ok(v.request, v.session):
                    raise CsrfError("the form's security token is missing or out of date")
                answer = route.handler(v, **params)
        except CsrfError:
            answer = self.failure(v, 400, "csrf", CSRF_FAILED_TEXT, route=route)
        except StorageError as error:
            answer = self.storage_failed(v, error, route=route)
        answer.cookies.extend(v.cookies)
        v.cookies.clear()
        secure(answer)
        return answer

    def storage_failed(self, v: Visit, error: StorageError, *, route: Route | None = None) -> Answer:
        """The 503 answer to a request whose database work failed (logged with the path as its repr)."""
        # The path is logged as its repr: a CR or LF in it cannot start a forged log line.
        log.warning("otp-pro: %s %r failed: %s", v.request.method, v.request.path, error)
        return self.failure(v, 503, "unavailable", STORAGE_FAILED_TEXT, route=route)

    def failure(self, v: Visit, status: int, error: str, message: str, *, route: Route | None = None) -> Answer:
        """A refusal of the whole request: JSON for the API or an AJAX call, else a message page linking back.

        The link is always one of the site's own known pages, never a path taken from the request: a path
        such as ``/\\evil.example`` is a link to another site for a browser that reads the backslash as a slash.
        """
        answer: Answer
        with i18n.using(self.language(v)):
            # An adapter passes the English text (CSRF_FAILED_TEXT): it is translated here.
            message, title = i18n.gettext(message), i18n.gettext("Please try again")
        if (route is not None and route.api) or v.request.wants_json:
            answer = Json(body={"ok": False, "error": error, "message": message}, status=status)
        else:
            answer = Page(template="otp_pro/message.html", status=status,
                          context={"title": title, "message": message, "link": self._back_link(v, route)})
        secure(answer)
        return answer

    def _back_link(self, v: Visit, route: Route | None) -> str:
        if route is None:
            return self.login_url if v.request.path == self.login_url else self.home_url
        if not route.prefixed:  # the magic-link landing
            return v.url("verify")
        if route.name == "first_factor":  # a sign-in without a password goes back to the site's login page
            return self.login_url
        page = route_table.PAGE_OF_ROUTE.get(route.name)
        return v.url(page) if page is not None else self.home_url

    # ------------------------------------------------------- around the site

    def gate(self, v: Visit) -> Answer | None:
        """None when the request may go on; else the redirect to verify or setup (a 401 JSON for an AJAX call).

        The JSON body is ``{"error": "verification_required" | "setup_required", "location"}`` in every
        adapter. The decision's notice (grace period) is kept on ``v.notice`` for the base template.
        """
        if is_allowed(v.request.path, self.gate_config):
            return None  # decided by the path alone: the member's standing is not read
        decision = decide(v.facts(), v.request.path, self.gate_config, query=v.request.query_string)
        if decision.notice:
            with i18n.using(self.language(v)):
                v.notice = i18n.gettext(decision.notice)
        if not (decision.redirects and decision.location):
            return None
        location = v.request.root + decision.location
        answer: Answer
        if v.request.wants_json:
            error = "setup_required" if decision.action == "setup" else "verification_required"
            answer = Json(body={"error": error, "location": location}, status=401)
        else:
            answer = Redirect(location=location)
        secure(answer)
        return answer

    def step_up(self, v: Visit, max_age: int, *, next: str | None = None) -> Answer | None:
        """None when this login passed a second step within ``max_age`` seconds; else where to send it.

        The answer sends the member to the verify page (a fresh code, even on a trusted device) and back
        to ``next`` (default: this request's path and query) once passed; a member who has no second step
        yet is sent to set one up, a member signed out to the site's login. A member whose policy offers
        no second step (``not_required``) passes: there is nothing to step up to. An AJAX call gets
        ``401 {"error": "verification_required", "location"}``.
        """
        status = v.status()
        if status is None:
            return self._away(v, v.login_redirect())
        if status.requirement == "not_required" and not status.enrolled:
            return None
        age = state.verified_age(v.session, self.core.clock().timestamp())
        if age is not None and age <= max_age:
            return None
        here = v.request.root + v.request.path + (f"?{v.request.query_string}" if v.request.query_string else "")
        target = state.safe_next(next if next is not None else here, self.home_url)
        v.session[state.K_NEXT] = target
        if not status.enrolled:
            return self._away(v, v.url("setup"), error="setup_required")
        v.session[state.K_STEP_UP] = {"login": v.session.get(state.K_LOGIN), "next": target}
        return self._away(v, v.url("verify"))

    def _away(self, v: Visit, location: str, *, error: str = "verification_required") -> Answer:
        answer: Answer = Json(body={"error": error, "location": location}, status=401) if v.request.wants_json \
            else Redirect(location=location)
        secure(answer)
        return answer

    # ------------------------------------------------------------- pages

    def render(self, page: Page, v: Visit) -> str:
        """``page`` as HTML, through the renderer (the default one adds :meth:`template_context`), in
        :meth:`language`."""
        with i18n.using(self.language(v)):
            return self.renderer(page.template, page.context, v)

    def template_context(self, v: Visit) -> dict[str, Any]:
        """What every template of the core reads besides its page's context (``csrf_token``, ``url_for``, ...).

        An adapter with a renderer of its own provides these its own way (Flask: a context processor and
        Flask's ``url_for``; Django: a context processor and ``{% url %}``).
        """
        return {
            "otp_pro": self,
            "csrf_token": v.csrf_token,
            "otp_pro_notice": v.notice,
            "otp_pro_member": v.member(),
            "site_name": self.core.settings.site_name,
            "request": v.request,
            "url_for": lambda name, **params: self.template_url(v, name, **params),
            "get_flashed_messages": lambda with_categories=False: _flashes(v, with_categories),
            **i18n.template_helpers(),
        }

    def template_url(self, v: Visit, endpoint: str, **params: Any) -> str:
        """``url_for`` in the core's templates: ``otp_pro.<route>`` and ``otp_pro.static``."""
        name = endpoint.removeprefix("otp_pro.")
        if name != "static" and name not in self._by_name:
            raise LookupError(f"no otp-pro page called {endpoint!r}")
        return self.url(name, root=v.request.root, **params)


def _flashes(v: Visit, with_categories: bool) -> list[Any]:
    messages = state.take_flashes(v.session)
    return list(messages) if with_categories else [text for _, text in messages]
