"""The flow's pages and JSON API as a Starlette ``Router``, and one visit per request from the scope.

Every route of :attr:`Flow.routes <otp_pro.web.flow.Flow.routes>` is the same endpoint: the request's
visit (made by :class:`~.middleware.OtpProMiddleware`), :meth:`Flow.dispatch
<otp_pro.web.flow.Flow.dispatch>` in a worker thread (CSRF, the handler, failure pages, security headers),
and the answer as a response. The router's paths are relative to the flow's ``url_prefix``, where
:meth:`OtpProStarlette.install <otp_pro_starlette.OtpProStarlette.install>` mounts it; the flow's static
files are under ``/static`` in it. A route outside the prefix (the magic-link landing, at the path the
payload sets) is a route of its own (:func:`outside_routes`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable

from starlette.requests import Request as StarletteRequest
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

import otp_pro.web
from otp_pro.web.flow import Flow, Visit
from otp_pro.web.flow import Route as FlowRoute

from .adapter import SCOPE_VISIT, mark_changed, run, snapshot, to_response

# The templates and static files sit beside the flow layer, in the core's ``otp_pro/web``.
STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(otp_pro.web.__file__)), "static")
#: The route name of the magic-link landing, outside the router at the path the payload sets.
MAGIC_LINK_NAME = "otp_pro_magic_link"
_PARAM = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)>")


def visit_of(scope: Scope) -> Visit:
    """The request's visit, made by the middleware."""
    found = scope.get(SCOPE_VISIT)
    if not isinstance(found, Visit):
        raise RuntimeError("otp_pro_starlette's routes and dependencies need its middleware: call "
                           "otp_web.install(app)")
    return found


def starlette_path(path: str) -> str:
    """A flow path (parameters written ``<name>``) in Starlette's syntax (``{name}``: one segment, a string)."""
    return _PARAM.sub(r"{\1}", path)


def endpoint(flow: Flow, route: FlowRoute) -> Callable[[StarletteRequest], Awaitable[Response]]:
    """The endpoint of one of the flow's routes."""

    async def answer(request: StarletteRequest) -> Response:
        v = visit_of(request.scope)
        params = {name: str(value) for name, value in request.path_params.items()}
        before = snapshot(v.session)
        result = await run(flow.dispatch, route, v, **params)  # a send or a check: the loop goes on meanwhile
        mark_changed(v.session, before)
        return await to_response(flow, result, v)

    answer.__name__ = f"otp_pro_{route.name}"
    return answer


def router(flow: Flow) -> Router:
    """The flow's prefixed routes and its static files, with paths relative to ``flow.url_prefix``."""
    routes: list[BaseRoute] = [
        Route(starlette_path(r.path), endpoint(flow, r), methods=list(r.methods), name=r.name)
        for r in flow.routes if r.prefixed
    ]
    routes.append(Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"))
    return Router(routes=routes)


def outside_routes(flow: Flow) -> list[BaseRoute]:
    """The flow's routes outside its prefix (the magic-link landing), as routes of the site's app."""
    return [Route(starlette_path(r.path), endpoint(flow, r), methods=list(r.methods), name=MAGIC_LINK_NAME)
            for r in flow.routes if not r.prefixed]
