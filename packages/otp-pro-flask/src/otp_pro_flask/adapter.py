"""Flask onto the flow layer: a :class:`~otp_pro.web.flow.Request` from ``flask.request``, the Flask session as
the flow's :class:`~otp_pro.web.flow.Session`, and the flow's answers as Flask responses.

One :class:`~otp_pro.web.flow.Visit` is made per request and kept in ``flask.g``,
so the gate, the view and the templates share the member and status lookups.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import current_app, g, jsonify, make_response, redirect, render_template, request, session
from werkzeug.wrappers import Response

from otp_pro.web.flow import MAX_BODY_BYTES, Answer, Cookie, Download, Json, Page, Redirect, Request, Session, Visit

if TYPE_CHECKING:
    from .extension import OtpProFlask

#: Where the request's visit is kept in ``flask.g``.
G_VISIT = "otp_pro_visit"


def flask_request() -> Request:
    """This Flask request as the flow reads it (a JSON body is read here, bounded)."""
    length = request.content_length
    body = b""
    if request.mimetype.endswith("json") and (length is None or length <= MAX_BODY_BYTES):
        # Cached: the site's own view may read the same body (the demo's AJAX login does).
        body = request.get_data(cache=True)
    return Request(
        method=request.method, path=request.path, root=request.script_root,
        args=dict(request.args.items()), form=dict(request.form.items()) if request.method == "POST" else {},
        body=body, content_length=length, headers={k.lower(): v for k, v in request.headers.items()},
        cookies=dict(request.cookies.items()), client_addr=request.remote_addr, secure=request.is_secure,
        host=request.host, query_string=request.query_string.decode("latin-1"),
    )


def _cycle() -> None:
    # A server-side session store offers ``regenerate`` (the demo's does): a new id for the same data.
    # Flask's signed-cookie session has no id to change: its content changes, and so does the cookie.
    regenerate = getattr(current_app.session_interface, "regenerate", None)
    if callable(regenerate):
        regenerate(session)


def visit(ext: OtpProFlask) -> Visit:
    """This request's visit (made on first use)."""
    found: Visit | None = g.get(G_VISIT)
    if found is None:
        found = ext.flow.visit(flask_request(), Session(session, cycle=_cycle))
        setattr(g, G_VISIT, found)
    return found


def render(template: str, context: dict[str, Any], v: Visit) -> str:
    """The flow's renderer in Flask: Flask's own Jinja2 environment, so a site's ``templates/otp_pro/*.html``
    override the core's and the templates' ``url_for`` is Flask's (the extension's context processor adds
    what every page reads)."""
    return render_template(template, **context)


def set_cookie(response: Response, cookie: Cookie) -> None:
    """Set (or, ``value`` None, delete) ``cookie`` on ``response``."""
    if cookie.value is None:
        response.delete_cookie(cookie.name, path=cookie.path, secure=cookie.secure, httponly=cookie.httponly,
                               samesite=cookie.samesite)
        return
    response.set_cookie(cookie.name, cookie.value, max_age=cookie.max_age, path=cookie.path, secure=cookie.secure,
                        httponly=cookie.httponly, samesite=cookie.samesite)


def to_response(ext: OtpProFlask, answer: Answer, v: Visit) -> Response:
    """``answer`` as a Flask response: headers and cookies included."""
    response: Response
    if isinstance(answer, Page):
        response = make_response(ext.flow.render(answer, v), answer.status)
    elif isinstance(answer, Redirect):
        response = redirect(answer.location, answer.status)
    elif isinstance(answer, Json):
        response = make_response(jsonify(answer.body), answer.status)
    elif isinstance(answer, Download):
        # A generator body: Werkzeug sends each chunk as it is made (the audit export reads rows in batches).
        response = Response((chunk.encode("utf-8") for chunk in answer.chunks), status=answer.status,
                            content_type=answer.content_type)
        response.headers["Content-Disposition"] = answer.disposition()
    else:  # pragma: no cover - the flow answers nothing else
        raise TypeError(f"not an answer of the flow: {answer!r}")
    for name, value in answer.headers:
        response.headers[name] = value
    for cookie in answer.cookies:
        set_cookie(response, cookie)
    return response
