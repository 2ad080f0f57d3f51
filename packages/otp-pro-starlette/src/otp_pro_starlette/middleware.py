"""``OtpProMiddleware``: the gate in front of every HTTP route of the app, the CSRF rule, one visit per request.

A pure ASGI middleware (not Starlette's ``BaseHTTPMiddleware``: nothing is buffered, and streaming
responses and background tasks of the site's views are untouched). Per HTTP request it:

1. reads what the flow needs of the body: for the flow's own routes a JSON body (at most
   :data:`~otp_pro.web.flow.MAX_BODY_BYTES` + 1 bytes) or an urlencoded form (at most
   :data:`~.adapter.MAX_FORM_BYTES`, else a 413); for a POST (PUT, PATCH, DELETE) of the site's own views,
   an urlencoded form up to ``csrf_form_limit`` bytes to find its ``csrf_token`` field. Whatever was read
   is replayed to the app, so a view reads the whole body as usual;
2. makes the request's :class:`~otp_pro.web.flow.Visit` and keeps it in the scope (the routes, the
   dependencies and the facade's methods share its member and status lookups);
3. refuses a POST of the site's own views without the session's CSRF token (the flow's rule, header
   ``X-CSRF-Token`` or form field ``csrf_token``; ``csrf_app_wide=False`` or ``csrf_exempt`` paths skip it;
   the flow checks its own routes when it dispatches them);
4. asks the flow's gate (:meth:`otp_pro.web.flow.Flow.gate`), in a worker thread, for a signed-in session:
   a ``303`` to the verify or setup page, or for an AJAX/JSON request ``401`` with
   ``{"error": "verification_required" | "setup_required", "location"}``, the body of every adapter.
   A visitor who is not signed in passes without a thread or a database query.

A WebSocket handshake of a signed-in session the gate would send away is refused (closed before it is
accepted: a ``403``), since a handshake cannot follow a redirect.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from otp_pro.errors import StorageError
from otp_pro.web.flow import CSRF_FIELD, MAX_BODY_BYTES, Answer, csrf_ok
from otp_pro.web.flow.state import K_MEMBER
from otp_pro.web.flow.texts import CSRF_FAILED_TEXT, TOO_LARGE_TEXT

from .adapter import (
    MAX_FORM_BYTES,
    SCOPE_VISIT,
    SCOPE_WEB,
    content_type,
    flow_request,
    flow_session,
    is_json_type,
    mark_changed,
    parse_form,
    read_body,
    run,
    site_path,
    snapshot,
    to_response,
)

if TYPE_CHECKING:
    from .extension import OtpProStarlette

#: Methods that change nothing, so carry no CSRF token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
FORM_TYPE = "application/x-www-form-urlencoded"


class OtpProMiddleware:
    """The gate, the CSRF rule and the request's visit (see the module docstring). Added by
    :meth:`OtpProStarlette.install <otp_pro_starlette.OtpProStarlette.install>`; a session middleware wraps it."""

    def __init__(self, app: ASGIApp, web: OtpProStarlette) -> None:
        self.app = app
        self.web = web

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        web, flow = self.web, self.web.flow
        session = flow_session(scope)
        path = site_path(scope)[1]
        own = web.owns(path)
        unsafe = str(scope.get("method", "GET")).upper() not in SAFE_METHODS
        kind = content_type(scope)
        body, form, too_large = b"", {}, False
        if unsafe and own and (is_json_type(kind) or kind == FORM_TYPE):
            read = await read_body(receive, MAX_BODY_BYTES if is_json_type(kind) else MAX_FORM_BYTES)
            receive = read.replay(receive)
            if is_json_type(kind):
                body = read.data  # the flow answers a body over its limit with a 413 itself
            elif read.too_large:
                too_large = True
            else:
                form = parse_form(read.data)
        elif unsafe and not own and web.checks_csrf(path) and kind == FORM_TYPE:
            read = await read_body(receive, web.csrf_form_limit)
            receive = read.replay(receive)
            if not read.too_large:  # a larger form carries its token in the X-CSRF-Token header
                # Only the token is kept: the site's own fields (a password on its login form) are the view's.
                token = parse_form(read.data).get(CSRF_FIELD)
                form = {CSRF_FIELD: token} if token is not None else {}
        v = flow.visit(flow_request(scope, body=body, form=form), session)
        scope[SCOPE_VISIT] = v
        scope[SCOPE_WEB] = web
        answer: Answer | None = None
        if too_large:
            answer = flow.failure(v, 413, "too_large", TOO_LARGE_TEXT, route=web.route_at(path))
        elif unsafe and not own and web.checks_csrf(path) and not csrf_ok(v.request, v.session):
            answer = flow.failure(v, 400, "csrf", CSRF_FAILED_TEXT)
        elif web.gate_enabled and session.data.get(K_MEMBER):
            before = snapshot(v.session)
            try:
                answer = await run(flow.gate, v)
            except StorageError as error:
                answer = flow.storage_failed(v, error)
            mark_changed(v.session, before)
        if answer is not None:
            response = await to_response(flow, answer, v)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket of a signed-in session that the gate would send away is refused before it opens.

        A handshake cannot follow a redirect: closing before ``accept`` makes the server answer ``403``.
        """
        flow = self.web.flow
        session = flow_session(scope)
        v = flow.visit(flow_request(scope), session)
        scope[SCOPE_VISIT] = v
        scope[SCOPE_WEB] = self.web
        if self.web.gate_enabled and session.data.get(K_MEMBER):
            before = snapshot(v.session)
            try:
                refused = await run(flow.gate, v) is not None
            except StorageError:
                refused = True  # not known to be verified: not let in
            mark_changed(v.session, before)
            if refused:
                await send({"type": "websocket.close", "code": 1008})
                return
        await self.app(scope, receive, send)
