"""The contract between the flow layer and a web framework: a request, a session, responses and routes as plain data.

An adapter (``otp_pro_flask``, ``otp_pro_django``, ``otp_pro_starlette``) does four things and nothing else:

1. **Mount the routes.** :attr:`Flow.routes <otp_pro.web.flow.Flow.routes>` is a tuple of :class:`Route`;
   mount each one with a loop (its ``path`` is under the flow's ``url_prefix`` unless ``prefixed`` is false,
   path parameters are written ``<name>``, which Flask's and Django's ``path()`` read as they are). The
   view of every route is the same few lines::

       request = Request(method=..., path=..., args=..., form=..., body=..., headers=..., cookies=...,
                         client_addr=..., secure=..., host=..., root=...)
       visit = flow.visit(request, Session(framework_session, cycle=framework_rotates_the_session_id))
       answer = flow.dispatch(route, visit, **path_params)   # CSRF, the handler, failure pages, headers
       return to_framework_response(answer)                    # Page -> flow.render(answer, visit)

2. **Fill a** :class:`Request` from the framework's request (a dataclass, no callbacks): the body is read
   by the adapter, at most :data:`MAX_BODY_BYTES` + 1 bytes (so an oversized body is recognised and
   refused with a 413 without being read whole); :meth:`Request.json_object` parses it or raises
   :class:`~otp_pro.web.flow.inputs.InputError`, which the API answers with a 400.

3. **Supply a** :class:`Session`: the framework's session as a ``MutableMapping`` plus ``cycle`` (give the
   session a new id and keep its data: Flask's ``session_interface.regenerate`` when it has one, Django's
   ``request.session.cycle_key``). The flow clears the mapping itself and calls ``cycle`` at every login,
   at every passed second step and at logout, so a planted session id is worth nothing afterwards.

4. **Turn a** :data:`Answer` **into the framework's response**: a :class:`Page` through
   :meth:`Flow.render <otp_pro.web.flow.Flow.render>` (the core's Jinja2 templates; an adapter may pass its
   own ``renderer`` so pages extend the site's base template), a :class:`Redirect` as a redirect, a
   :class:`Json` as a JSON body; then every ``headers`` pair and every :class:`Cookie` (``value`` None:
   delete it).

Around the site's own views an adapter asks the flow, per request, :meth:`Flow.gate
<otp_pro.web.flow.Flow.gate>` (None to pass on, else the redirect or the 401 JSON answer) and, for a
decorated view, :meth:`Flow.step_up <otp_pro.web.flow.Flow.step_up>`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .inputs import MAX_JSON_BYTES, InputError, parse_json_object

if TYPE_CHECKING:
    from .visit import Visit

#: The largest body the flow reads: an adapter reads at most this many bytes + 1 into :attr:`Request.body`.
MAX_BODY_BYTES = MAX_JSON_BYTES


def _empty() -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class Request:
    """One HTTP request as the flow reads it. Adapters fill it; every field is plain data.

    ``path`` is the path under the site root (without ``root``); ``root`` is where the site is mounted
    (WSGI ``SCRIPT_NAME``, "" at the top) and is put before every address the flow answers. ``args`` and
    ``form`` hold the first value of each name; ``headers`` are keyed by lower-case name. ``body`` is the
    raw body (at most :data:`MAX_BODY_BYTES` + 1 bytes, "" when the adapter did not read it: a form POST).
    ``content_length`` is the declared length, when there is one. ``secure``: the request came over
    HTTPS; ``host``: the ``Host`` header (the trusted-device cookie may drop ``Secure`` only on loopback).
    """

    method: str
    path: str
    args: Mapping[str, str] = field(default_factory=_empty)
    form: Mapping[str, str] = field(default_factory=_empty)
    body: bytes = b""
    content_length: int | None = None
    headers: Mapping[str, str] = field(default_factory=_empty)
    cookies: Mapping[str, str] = field(default_factory=_empty)
    client_addr: str | None = None
    secure: bool = False
    host: str = ""
    root: str = ""
    query_string: str = ""

    def header(self, name: str, default: str = "") -> str:
        """The header ``name`` (any case), or ``default``."""
        value = self.headers.get(name.lower())
        return value if isinstance(value, str) else default

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` header, lower-cased, without parameters."""
        return self.header("content-type").split(";", 1)[0].strip().lower()

    @property
    def user_agent(self) -> str | None:
        """The ``User-Agent`` header (cut to 300 characters), or None."""
        return self.header("user-agent")[:300] or None

    @property
    def is_json(self) -> bool:
        """Whether the body is declared JSON (``application/json`` or ``application/*+json``)."""
        kind = self.content_type
        return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))

    @property
    def wants_json(self) -> bool:
        """Whether this is an AJAX/JSON call that gets a JSON answer instead of a redirect or a page."""
        accept = self.header("accept").lower()
        return ("application/json" in accept and "text/html" not in accept) or \
            self.content_type.startswith("application/json") or \
            self.header("x-requested-with").lower() == "xmlhttprequest"

    def json_object(self) -> Mapping[str, Any]:
        """The body as one JSON object; :class:`~otp_pro.web.flow.inputs.InputError` (400, or 413) otherwise."""
        if not self.is_json:
            raise InputError("Send a JSON object, with Content-Type: application/json.")
        if self.content_length is not None and self.content_length > MAX_BODY_BYTES:
            raise InputError(f"The body is too large: at most {MAX_BODY_BYTES} bytes.", status=413)
        return parse_json_object(self.body)


@dataclass
class Session:
    """The framework's session as the flow uses it: ``data`` (a mutable mapping) and ``cycle``.

    ``cycle()`` gives the session a new id and keeps its data (the flow clears or trims ``data`` itself
    first when it needs to). Values the flow stores are JSON-serialisable: str, int, float, bool, None,
    lists and dicts of them, so any session backend (signed cookie, database, cache) holds them.
    """

    data: MutableMapping[str, Any]
    cycle: Callable[[], None] = field(default=lambda: None)


@dataclass(frozen=True)
class Cookie:
    """A cookie to set on the response (``value`` None: delete the cookie ``name`` at ``path``)."""

    name: str
    value: str | None
    max_age: int | None = None
    path: str = "/"
    secure: bool = True
    httponly: bool = True
    samesite: str = "Lax"


@dataclass(kw_only=True)
class _Answer:
    status: int = 200
    #: Extra headers, in order; an adapter adds each one (a header the framework set already is replaced).
    headers: list[tuple[str, str]] = field(default_factory=list)
    cookies: list[Cookie] = field(default_factory=list)

    def header(self, name: str, value: str) -> None:
        """Set header ``name`` (replacing an earlier value the flow set)."""
        self.headers = [(n, v) for n, v in self.headers if n.lower() != name.lower()]
        self.headers.append((name, value))

    def has_header(self, name: str) -> bool:
        """Whether the flow set header ``name`` already."""
        return any(n.lower() == name.lower() for n, _ in self.headers)


@dataclass(kw_only=True)
class Page(_Answer):
    """A page: ``template`` (a path under ``templates/``, e.g. ``otp_pro/verify.html``) with ``context``."""

    template: str
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class Redirect(_Answer):
    """A redirect to ``location`` (an address on this site, the root already in it); 303 unless said."""

    location: str
    status: int = 303


@dataclass(kw_only=True)
class Json(_Answer):
    """A JSON answer: ``body`` (a JSON object) with ``status``."""

    body: dict[str, Any]


@dataclass(kw_only=True)
class Download(_Answer):
    """A file streamed to the browser: ``chunks`` (text, UTF-8 encoded and sent as they come, never joined),
    ``content_type`` and the ``filename`` it is saved as. Only the operator console answers one (the audit
    export); an adapter that mounts it sends the chunks as its framework's streaming response."""

    chunks: Iterable[str]
    content_type: str
    filename: str

    def disposition(self) -> str:
        """The ``Content-Disposition`` header: an attachment named ``filename`` (ASCII, quotes dropped)."""
        name = "".join(ch for ch in self.filename if ch.isascii() and ch.isprintable() and ch not in '"\\')
        return f'attachment; filename="{name}"'


#: What a handler answers.
Answer = Page | Redirect | Json | Download

#: A route's handler: the visit, and the route's path parameters as keywords (strings, unchecked).
Handler = Callable[..., Answer]


@dataclass(frozen=True)
class Route:
    """One page or endpoint of the flow.

    ``name``: the endpoint name (templates link with ``url_for('otp_pro.<name>')``, Django reverses
    ``otp_pro:<name>``); ``path`` is under the flow's ``url_prefix`` unless ``prefixed`` is false (the
    magic-link landing, at the path the payload sets), its parameters written ``<name>``; ``methods``
    the HTTP methods; ``handler(visit, **params)`` answers it; ``api``: a JSON endpoint (its failures
    are JSON whatever the client accepts); ``csrf``: its POSTs carry the CSRF token (an adapter with its
    own CSRF protection, such as Django's, may check that one instead of the flow's); ``guard(visit)``: asked
    before anything else, even the CSRF check, and its answer (when not None) is the route's (the operator
    console's routes answer a 404 to anyone but an operator, whatever they send).
    """

    name: str
    path: str
    methods: tuple[str, ...]
    handler: Handler
    api: bool = False
    csrf: bool = True
    prefixed: bool = True
    guard: Callable[[Visit], Answer | None] | None = None


#: Renders a page: ``(template, context, visit) -> HTML``; the default is the core's Jinja2 environment.
Renderer = Callable[[str, dict[str, Any], "Visit"], str]

__all__ = ["MAX_BODY_BYTES", "Answer", "Cookie", "Download", "Handler", "Json", "Page", "Redirect", "Renderer",
           "Request", "Route", "Session"]
