"""A WSGI middleware that puts the verification gate in front of any WSGI application.

The integrator supplies ``facts(environ) -> SessionFacts``: read the session the
site already has (Django's ``request.session``, Beaker, a signed cookie ...),
ask :meth:`otp_pro.OtpPro.status` for the member's policy facts, and say whether
this login passed the second step with
:meth:`~otp_pro.web.gate.SessionFacts.is_verified_login`, so that a session no
login view of the site marked (both markers missing) is never verified. The
middleware calls :func:`~otp_pro.web.gate.decide` and either passes the request
on (with the decision in ``environ["otp_pro.decision"]``) or answers the
redirect itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from .gate import GateConfig, SessionFacts, decide

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ENVIRON_KEY = "otp_pro.decision"

#: Sent with every redirect the gate answers: never cached, never framed, no referrer.
REDIRECT_HEADERS: tuple[tuple[str, str], ...] = (
    ("Cache-Control", "no-store"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
)


def wants_json(environ: dict[str, Any]) -> bool:
    """Whether the request is an AJAX/JSON call that should get a JSON answer instead of a redirect."""
    accept = str(environ.get("HTTP_ACCEPT", "")).lower()
    content_type = str(environ.get("CONTENT_TYPE", "")).lower()
    requested_with = str(environ.get("HTTP_X_REQUESTED_WITH", "")).lower()
    return ("application/json" in accept and "text/html" not in accept) or content_type.startswith(
        "application/json") or requested_with == "xmlhttprequest"


class OtpProMiddleware:
    """Wrap ``app`` with the gate.

    ``facts`` reads the :class:`SessionFacts` from the WSGI environ; it should
    answer ``SessionFacts()`` (not signed in) when there is no session. A redirect
    is ``303 See Other`` to the verify or setup page (under ``SCRIPT_NAME``); a
    JSON request gets ``401`` with ``{"error": "verification_required" |
    "setup_required", "location": ...}`` instead, so an AJAX page can react.
    """

    def __init__(self, app: WSGIApp, facts: Callable[[dict[str, Any]], SessionFacts], *,
                 config: GateConfig | None = None) -> None:
        self.app = app
        self.facts = facts
        self.config = config or GateConfig()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        decision = decide(self.facts(environ), path, self.config, query=environ.get("QUERY_STRING", ""))
        environ[ENVIRON_KEY] = decision
        if decision.passes or decision.location is None:
            return self.app(environ, start_response)
        location = environ.get("SCRIPT_NAME", "").rstrip("/") + decision.location
        if wants_json(environ):
            error = "setup_required" if decision.action == "setup" else "verification_required"
            body = json.dumps({"error": error, "location": location}).encode()
            start_response("401 Unauthorized", [("Content-Type", "application/json"),
                                                 ("Content-Length", str(len(body))), *REDIRECT_HEADERS])
            return [body]
        body = b"Second step needed: " + location.encode("utf-8") + b"\n"
        start_response("303 See Other", [("Location", location), ("Content-Type", "text/plain; charset=utf-8"),
                                         ("Content-Length", str(len(body))), *REDIRECT_HEADERS])
        return [body]


__all__ = ["ENVIRON_KEY", "OtpProMiddleware", "wants_json"]
