"""How the extension plugs into a Flask app: a blueprint mounting the flow's routes, and what runs around
every request.

Before a request: the CSRF check on a POST of the site's own views (with
``csrf_app_wide``; the flow checks its own routes), then the gate (a redirect to
the verify or setup page, or a 401 for a JSON call). After it: the security
headers, app-wide when asked. A failed CSRF check or a database failure gets
the flow's failure page instead of a 400 or 500 from Flask (JSON on the API).
"""

from __future__ import annotations

import os
from functools import partial
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, g, get_flashed_messages, request
from werkzeug.wrappers import Response

import otp_pro.web
from otp_pro import i18n
from otp_pro.errors import StorageError
from otp_pro.web.flow import SECURITY_HEADERS, CsrfError, Route
from otp_pro.web.flow import state as flow_state
from otp_pro.web.flow.texts import CSRF_FAILED_TEXT

from .adapter import to_response, visit

if TYPE_CHECKING:
    from .extension import OtpProFlask

#: The blueprint of the pages and the JSON API (endpoints ``otp_pro.verify``, ``otp_pro.api_status``, ...).
BLUEPRINT = "otp_pro"
#: The endpoint of the magic-link landing, outside the blueprint at the path the payload sets.
MAGIC_LINK_ENDPOINT = "otp_pro_magic_link"
# The templates and static files sit beside the flow layer, in the core's ``otp_pro/web``.
_WEB_ROOT = os.path.dirname(os.path.abspath(otp_pro.web.__file__))
#: Where the messages of the current request are kept once read (a page may ask twice).
G_FLASHES = "otp_pro_flashes"


def install(ext: OtpProFlask, app: Flask) -> None:
    """Register ``ext``'s blueprint, magic-link landing, request hooks, template context and error pages."""
    app.extensions["otp_pro"] = ext
    bp = Blueprint(BLUEPRINT, __name__, url_prefix=ext.flow.url_prefix or None, root_path=_WEB_ROOT,
                   template_folder="templates", static_folder="static", static_url_path="/static")
    for route in ext.flow.routes:
        view = partial(_view, ext, route)
        if route.prefixed:
            bp.add_url_rule(route.path, route.name, view, methods=list(route.methods))
        else:
            app.add_url_rule(route.path, MAGIC_LINK_ENDPOINT, view, methods=list(route.methods))
    app.register_blueprint(bp)
    app.before_request(partial(_before_request, ext))
    app.after_request(partial(_after_request, ext))
    app.context_processor(partial(_context, ext))
    app.register_error_handler(CsrfError, partial(_csrf_failed, ext))
    app.register_error_handler(StorageError, partial(_storage_failed, ext))


def _view(ext: OtpProFlask, route: Route, **params: Any) -> Response:
    v = visit(ext)
    return to_response(ext, ext.flow.dispatch(route, v, **{k: str(p) for k, p in params.items()}), v)


def own_request() -> bool:
    """Whether this request is for one of the extension's own pages or endpoints."""
    return request.blueprint == BLUEPRINT or request.endpoint == MAGIC_LINK_ENDPOINT


def _before_request(ext: OtpProFlask) -> Response | None:
    if request.method == "POST" and ext.csrf_app_wide and not own_request():
        ext.check_csrf()  # the flow checks its own routes when it dispatches them
    if not ext.gate_enabled:
        return None
    v = visit(ext)
    answer = ext.flow.gate(v)
    return to_response(ext, answer, v) if answer is not None else None


def _after_request(ext: OtpProFlask, response: Response) -> Response:
    if ext.security_headers_app_wide or own_request():
        for name, value in SECURITY_HEADERS:
            response.headers.setdefault(name, value)
    return response


def _flashes(ext: OtpProFlask, with_categories: bool = False, category_filter: Any = ()) -> list[Any]:
    """``get_flashed_messages`` for the templates: the flow's messages and the site's own Flask ones."""
    found: list[tuple[str, str]] | None = g.get(G_FLASHES)
    if found is None:
        found = [*flow_state.take_flashes(visit(ext).session), *get_flashed_messages(with_categories=True)]
        setattr(g, G_FLASHES, found)
    chosen = [m for m in found if not category_filter or m[0] in category_filter]
    return list(chosen) if with_categories else [text for _, text in chosen]


def _context(ext: OtpProFlask) -> dict[str, Any]:
    v = visit(ext)
    return {
        "otp_pro": ext,
        "csrf_token": ext.csrf_token,
        "otp_pro_notice": v.notice,
        "otp_pro_member": v.member(),
        "site_name": ext.core.settings.site_name,
        "get_flashed_messages": partial(_flashes, ext),
        # _, ngettext, format_date, otp_pro_lang: in the language the flow chooses for this request, so the
        # site's own templates (render_template in its views) follow the member and Accept-Language too.
        **i18n.template_helpers(ext.flow.language(v)),
    }


def _csrf_failed(ext: OtpProFlask, error: CsrfError) -> Response:
    v = visit(ext)
    return to_response(ext, ext.flow.failure(v, 400, "csrf", CSRF_FAILED_TEXT, route=_route(ext)), v)


def _storage_failed(ext: OtpProFlask, error: StorageError) -> Response:
    v = visit(ext)
    return to_response(ext, ext.flow.storage_failed(v, error, route=_route(ext)), v)


def _route(ext: OtpProFlask) -> Route | None:
    """The flow's route of this request, or None for a view of the site's own."""
    endpoint = request.endpoint or ""
    if endpoint == MAGIC_LINK_ENDPOINT:
        return ext.flow.route("magic_link")
    if request.blueprint == BLUEPRINT:
        return ext.flow.route(endpoint.removeprefix(f"{BLUEPRINT}."))
    return None
