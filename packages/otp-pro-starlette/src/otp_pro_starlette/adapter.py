"""ASGI onto the flow layer: a :class:`~otp_pro.web.flow.Request` from an ASGI scope and a bounded body, the
scope's session as the flow's :class:`~otp_pro.web.flow.Session`, the flow's answers as Starlette responses,
and the one way core calls are made: in anyio's worker threads.

The core is synchronous (SQLAlchemy sessions, smtplib, the Twilio client). Every call into it, whether the
gate, a route's handler, a page's rendering (its context loads the member) or the login hand-off, goes
through :func:`run`, so a slow SMTP or SMS send holds one worker thread and never the event loop: the
other requests of the same process are answered meanwhile.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import anyio.to_thread
from starlette.requests import cookie_parser
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.types import Message, Receive, Scope

from otp_pro.web.flow import Answer, Cookie, Download, Flow, Json, Page, Redirect, Request, Session, Visit

T = TypeVar("T")

#: The largest form body the flow reads. Its forms hold a few short fields (a code, a token, a label,
#: a password), so this is ample; a larger one is refused with a 413 before it is parsed.
MAX_FORM_BYTES = 64 * 1024
#: Most fields a form body may have (the flow's forms have at most five).
MAX_FORM_FIELDS = 100
#: Where this request's :class:`~otp_pro.web.flow.Visit` is kept in the ASGI scope.
SCOPE_VISIT = "otp_pro.visit"
#: Where the :class:`~otp_pro_starlette.OtpProStarlette` serving this request is kept in the ASGI scope.
SCOPE_WEB = "otp_pro.web"


async def run(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``func(*args, **kwargs)`` in one of anyio's worker threads: the event loop goes on meanwhile."""
    return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs))


# ------------------------------------------------------------------ bodies


class Body:
    """What was read of a request's body: ``data`` (at most ``limit`` + 1 bytes) and whether it was all read.

    Everything read is handed on to the site's app by :meth:`replay`, so a view behind the middleware
    reads the whole body as if nothing had touched it.
    """

    def __init__(self, chunks: list[bytes], complete: bool, limit: int) -> None:
        self._read = b"".join(chunks)
        self.complete = complete
        self.limit = limit
        self.data = self._read[:limit + 1]

    @property
    def too_large(self) -> bool:
        """Whether the body is larger than the limit it was read with."""
        return len(self._read) > self.limit

    def replay(self, receive: Receive) -> Receive:
        """A ``receive`` that gives what was read first, then whatever is left of the body."""
        pending = [self._read]

        async def replayed() -> Message:
            if pending:
                return {"type": "http.request", "body": pending.pop(), "more_body": not self.complete}
            return await receive()

        return replayed


async def read_body(receive: Receive, limit: int) -> Body:
    """Read the body until it ends or passes ``limit`` bytes (the rest stays unread, for :meth:`Body.replay`)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: what came is all there is
            return Body(chunks, True, limit)
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return Body(chunks, True, limit)
        if size > limit:
            return Body(chunks, False, limit)


def content_type(scope: Scope) -> str:
    """The request's ``Content-Type``, lower-cased, without parameters."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-type":
            return str(value.decode("latin-1").split(";", 1)[0].strip().lower())
    return ""


def is_json_type(kind: str) -> bool:
    """Whether ``kind`` declares JSON (``application/json`` or ``application/*+json``), as the flow reads it."""
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def parse_form(raw: bytes) -> dict[str, str]:
    """An urlencoded form body as its first value per name; an unreadable one as no fields at all.

    No fields is what a forged or mangled form gets anyway: the flow then refuses it for its missing CSRF
    token (a 400 page), never a 500.
    """
    try:
        pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="replace",
                          max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        return {}
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


# ----------------------------------------------------------------- request


def site_path(scope: Scope) -> tuple[str, str]:
    """``(root, path)``: where the site is mounted (the ASGI ``root_path``) and the path under it."""
    root = str(scope.get("root_path", "") or "")
    path = str(scope.get("path", "") or "/")
    if root and (path == root or path.startswith(root + "/")):
        path = path[len(root):] or "/"
    return root, path


def flow_request(scope: Scope, *, body: bytes = b"", form: Mapping[str, str] | None = None) -> Request:
    """The ASGI request ``scope`` as the flow reads it, with the body and form the caller read."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        # Repeated headers are joined as HTTP allows (RFC 9110 5.3), cookies with "; " as browsers send them.
        headers[name] = f"{headers[name]}{'; ' if name == 'cookie' else ', '}{value}" if name in headers else value
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    args: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True, errors="replace"):
        args.setdefault(name, value)
    length = headers.get("content-length", "")
    client = scope.get("client")
    root, path = site_path(scope)
    return Request(
        method=str(scope.get("method", "GET")).upper(), path=path, root=root, args=args, form=dict(form or {}),
        body=body, content_length=int(length) if length.isascii() and length.isdigit() else None,
        headers=headers, cookies=cookie_parser(headers.get("cookie", "")),
        client_addr=str(client[0]) if client else None, secure=scope.get("scheme") in ("https", "wss"),
        host=headers.get("host", ""), query_string=query,
    )


# ----------------------------------------------------------------- session


def flow_session(scope: Scope) -> Session:
    """The scope's session (Starlette's ``SessionMiddleware`` or :class:`~.sessions.ServerSessionMiddleware`).

    ``cycle`` is the session's own ``regenerate()`` when it has one (a server-side session gets a new id);
    a signed-cookie session has no id to change: its content changes, and so does the cookie.
    """
    if "session" not in scope:
        raise RuntimeError(
            "otp_pro_starlette needs a session: add Starlette's SessionMiddleware (or "
            "otp_pro_starlette.ServerSessionMiddleware) after otp_web.install(app), so that it wraps it")
    data: MutableMapping[str, Any] = scope["session"]
    regenerate = getattr(data, "regenerate", None)
    return Session(data, cycle=regenerate if callable(regenerate) else (lambda: None))


def snapshot(session: Mapping[str, Any]) -> str:
    """The session's content as text, to tell afterwards whether a core call changed it."""
    return json.dumps(dict(session), sort_keys=True, default=str)


def mark_changed(session: Mapping[str, Any], before: str) -> None:
    """Tell a session that tracks writes (Starlette's) that it changed, when it did.

    Starlette's session notices ``session[key] = ...`` but not a change inside a stored dict or list; the
    comparison catches both, so the cookie is always written when the flow changed anything.
    """
    mark = getattr(session, "mark_modified", None)
    if callable(mark) and snapshot(session) != before:
        mark()


# --------------------------------------------------------------- responses


def set_cookie(response: Response, cookie: Cookie) -> None:
    """Set (or, ``value`` None, delete) ``cookie`` on ``response``."""
    samesite: Any = cookie.samesite.lower()
    if cookie.value is None:
        response.delete_cookie(cookie.name, path=cookie.path, secure=cookie.secure, httponly=cookie.httponly,
                               samesite=samesite)
        return
    response.set_cookie(cookie.name, cookie.value, max_age=cookie.max_age, path=cookie.path, secure=cookie.secure,
                        httponly=cookie.httponly, samesite=samesite)


async def to_response(flow: Flow, answer: Answer, v: Visit) -> Response:
    """``answer`` as a Starlette response (a page is rendered in a worker thread), headers and cookies included."""
    response: Response
    if isinstance(answer, Page):
        before = snapshot(v.session)
        html = await run(flow.render, answer, v)  # the context reads the member and may make the CSRF token
        mark_changed(v.session, before)
        response = HTMLResponse(html, status_code=answer.status)
    elif isinstance(answer, Redirect):
        response = RedirectResponse(answer.location, status_code=answer.status)
    elif isinstance(answer, Json):
        response = JSONResponse(answer.body, status_code=answer.status)
    elif isinstance(answer, Download):
        # A plain iterator: Starlette takes each chunk in a worker thread (the rows are read as it goes).
        response = StreamingResponse((chunk.encode("utf-8") for chunk in answer.chunks),
                                     status_code=answer.status, media_type=answer.content_type)
        response.headers["Content-Disposition"] = answer.disposition()
    else:  # pragma: no cover - the flow answers nothing else
        raise TypeError(f"not an answer of the flow: {answer!r}")
    for name, value in answer.headers:
        response.headers[name] = value
    for cookie in [*answer.cookies, *v.cookies]:
        set_cookie(response, cookie)
    v.cookies.clear()
    return response
