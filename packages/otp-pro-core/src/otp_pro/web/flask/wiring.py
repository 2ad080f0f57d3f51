"""How the extension plugs into a Flask app: its blueprint and URL rules, and what runs around every request.

Before a request: the CSRF check on a POST, then the gate (a redirect to the
verify or setup page, or a 401 for a JSON call). After it: the security
headers. A failed CSRF check or a database failure gets a page of its own
instead of a 400 or 500 from Flask (JSON on the API), linking to one of the
site's own pages.
"""

from __future__ import annotations

import logging
import os
from functools import partial
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, g, jsonify, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ...errors import StorageError
from ..gate import Decision, decide
from ..wsgi import wants_json
from .security import CsrfError, secure
from .state import G_DECISION
from .texts import CSRF_FAILED_TEXT, STORAGE_FAILED_TEXT

if TYPE_CHECKING:
    from .extension import OtpProFlask

log = logging.getLogger("otp_pro.web")

#: The blueprint of the pages and the JSON API (endpoints ``otp_pro.verify``, ``otp_pro.api_status``, ...).
BLUEPRINT = "otp_pro"
#: The endpoint of the magic-link landing, outside the blueprint at the path the payload sets.
MAGIC_LINK_ENDPOINT = "otp_pro_magic_link"
# The templates and static files sit beside this package, in ``otp_pro/web``.
_WEB_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def install(ext: OtpProFlask, app: Flask) -> None:
    """Register ``ext``'s blueprint, magic-link landing, request hooks, template context and error pages."""
    app.extensions["otp_pro"] = ext
    app.register_blueprint(_blueprint(ext))
    magic = ext.magic_link_path
    if magic:
        app.add_url_rule(magic, MAGIC_LINK_ENDPOINT, ext.magic_link_view, methods=["GET", "POST"])
    app.before_request(partial(_before_request, ext))
    app.after_request(partial(_after_request, ext))
    app.context_processor(partial(_context, ext))
    app.register_error_handler(CsrfError, partial(_csrf_failed, ext))
    app.register_error_handler(StorageError, partial(_storage_failed, ext))


def _blueprint(ext: OtpProFlask) -> Blueprint:
    bp = Blueprint(BLUEPRINT, "otp_pro.web.flask", url_prefix=ext.url_prefix, root_path=_WEB_ROOT,
                   template_folder="templates", static_folder="static", static_url_path="/static")
    bp.add_url_rule("/verify", "verify", ext.verify_view, methods=["GET", "POST"])
    bp.add_url_rule("/send", "send", ext.send_view, methods=["POST"])
    bp.add_url_rule("/setup", "setup", ext.setup_view, methods=["GET", "POST"])
    bp.add_url_rule("/setup/confirm", "setup_confirm", ext.setup_confirm_view, methods=["POST"])
    bp.add_url_rule("/settings", "settings", ext.settings_view, methods=["GET"])
    bp.add_url_rule("/settings/reauth", "reauth", ext.reauth_view, methods=["POST"])
    bp.add_url_rule("/settings/backup-codes", "backup_codes", ext.backup_codes_view, methods=["POST"])
    bp.add_url_rule("/settings/devices/<device_id>/revoke", "revoke_device", ext.revoke_view, methods=["POST"])
    bp.add_url_rule("/settings/disable", "disable", ext.disable_view, methods=["POST"])
    bp.add_url_rule("/settings/factors/<factor_id>/rename", "factor_rename", ext.factor_rename_view, methods=["POST"])
    bp.add_url_rule("/settings/factors/<factor_id>/default", "factor_default", ext.factor_default_view,
                    methods=["POST"])
    bp.add_url_rule("/settings/factors/<factor_id>/remove", "factor_remove", ext.factor_remove_view, methods=["POST"])
    bp.add_url_rule("/settings/factors/<factor_id>/reconfirm", "factor_reconfirm", ext.factor_reconfirm_view,
                    methods=["POST"])
    bp.add_url_rule("/api/status", "api_status", ext.api_status, methods=["GET"])
    bp.add_url_rule("/api/send", "api_send", ext.api_send, methods=["POST"])
    bp.add_url_rule("/api/verify", "api_verify", ext.api_verify, methods=["POST"])
    bp.add_url_rule("/api/delivery", "api_delivery", ext.api_delivery, methods=["GET"])
    bp.add_url_rule("/api/openapi.json", "api_openapi", ext.api_openapi, methods=["GET"])
    return bp


def _own_request() -> bool:
    """Whether this request is for one of the extension's own pages or endpoints."""
    return request.blueprint == BLUEPRINT or request.endpoint == MAGIC_LINK_ENDPOINT


def _before_request(ext: OtpProFlask) -> Response | None:
    if request.method == "POST" and (ext.csrf_app_wide or _own_request()):
        ext.check_csrf()
    if not ext.gate_enabled:
        return None
    decision = decide(ext.facts(), request.path, ext.gate_config, query=request.query_string.decode("latin-1"))
    setattr(g, G_DECISION, decision)
    if decision.redirects and decision.location:
        location = request.script_root + decision.location
        if wants_json(request.environ):
            error = "setup_required" if decision.action == "setup" else "verification_required"
            return secure(make_response(jsonify(error=error, location=location), 401))
        return secure(redirect(location, 303))
    return None


def _after_request(ext: OtpProFlask, response: Response) -> Response:
    if ext.security_headers_app_wide or _own_request():
        secure(response)
    return response


def _context(ext: OtpProFlask) -> dict[str, Any]:
    decision: Decision | None = g.get(G_DECISION)
    return {
        "otp_pro": ext,
        "csrf_token": ext.csrf_token,
        "otp_pro_notice": decision.notice if decision is not None else None,
        "otp_pro_member": ext.current_member(),
        "site_name": ext.core.settings.site_name,
    }


#: The page behind each of the extension's endpoints: where a failure page links back to.
_PAGE_OF_ENDPOINT = {
    "verify": "verify", "send": "verify", "setup": "setup", "setup_confirm": "setup", "settings": "settings",
    "reauth": "settings", "backup_codes": "settings", "revoke_device": "settings", "disable": "settings",
    "factor_rename": "settings", "factor_default": "settings", "factor_remove": "settings",
    "factor_reconfirm": "settings",
}


def _back_link(ext: OtpProFlask) -> str:
    """Where a failure page links: the extension's page behind the request's endpoint, else the site's home.

    Always one of the site's own known pages, never a path taken from the request: a path such as
    ``/\\evil.example`` is a link to another site for a browser that reads the backslash as a slash.
    """
    endpoint = request.endpoint or ""
    if request.path == ext.login_url:  # the site's login form, under csrf_app_wide
        return ext.login_url
    if endpoint == MAGIC_LINK_ENDPOINT:
        return url_for(f"{BLUEPRINT}.verify")
    page = _PAGE_OF_ENDPOINT.get(endpoint.removeprefix(f"{BLUEPRINT}."))
    if page is not None and request.blueprint == BLUEPRINT:
        return url_for(f"{BLUEPRINT}.{page}")
    return ext.home_url


def _is_api() -> bool:
    """Whether the request is for one of the JSON endpoints, which answer JSON whatever the client accepts."""
    return request.blueprint == BLUEPRINT and (request.endpoint or "").startswith(f"{BLUEPRINT}.api_")


def _failure_page(ext: OtpProFlask, status: int, error: str, message: str) -> Response:
    """A refusal of the whole request: JSON for the API or an AJAX call, else a message page linking back."""
    if _is_api() or wants_json(request.environ):
        return secure(make_response(jsonify(ok=False, error=error, message=message), status))
    return secure(make_response(render_template("otp_pro/message.html", title="Please try again",
                                                message=message, link=_back_link(ext)), status))


def _csrf_failed(ext: OtpProFlask, error: CsrfError) -> Response:
    return _failure_page(ext, 400, "csrf", CSRF_FAILED_TEXT)


def _storage_failed(ext: OtpProFlask, error: StorageError) -> Response:
    # The database failed mid-request: its transaction was rolled back, so nothing changed
    # (a code typed is still unused). A page that says so, never a 500 with a traceback.
    # The path is logged as its repr: a CR or LF in it cannot start a forged log line.
    log.warning("otp-pro: %s %r failed: %s", request.method, request.path, error)
    return _failure_page(ext, 503, "unavailable", STORAGE_FAILED_TEXT)
