"""A test client for the flow layer with no web framework: the smallest adapter there is.

It does what an adapter does (docs/web.md): fills a :class:`~otp_pro.web.flow.Request`, keeps a
session (a dict; ``cycle`` counts the new ids), mounts :attr:`Flow.routes` by matching paths, asks the
gate for every other path, and turns answers into responses (pages through the core's Jinja2 renderer).
Its interface is the part of a Flask test client the core's tests use: ``get``/``post`` (``data``,
``json``, ``headers``, ``follow_redirects``), ``session_transaction()``, and responses with
``status_code``, ``headers``, ``text``, ``json`` and ``get_json()``.
"""

from __future__ import annotations

import json as jsonlib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from otp_pro import Member, OtpPro
from otp_pro.web.flow import Download, Flow, Json, Page, Redirect, Request, Route, Session, login


@dataclass
class Reply:
    """What the client got back."""

    status_code: int
    headers: dict[str, str]
    text: str = ""
    json: Any = None

    def get_json(self) -> Any:
        return self.json

    def get_data(self, as_text: bool = False) -> str | bytes:
        return self.text if as_text else self.text.encode()


@dataclass
class FlowClient:
    """A browser of one site (``flow``) with its own session and cookies; ``views`` are the site's own paths."""

    flow: Flow
    views: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    session: dict[str, Any] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    cycles: int = 0
    host: str = "127.0.0.1"

    def _cycle(self) -> None:
        self.cycles += 1

    @contextmanager
    def session_transaction(self) -> Iterator[dict[str, Any]]:
        yield self.session

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.open("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Reply:
        return self.open("POST", path, **kwargs)

    def open(self, method: str, url: str, *, data: dict[str, str] | None = None, json: Any = None,
             headers: dict[str, str] | None = None, follow_redirects: bool = False) -> Reply:
        reply = self._once(method, url, data=data, json=json, headers=headers or {})
        while follow_redirects and reply.status_code in (301, 302, 303, 307, 308):
            reply = self._once("GET", reply.headers["Location"], data=None, json=None, headers={})
        return reply

    def _once(self, method: str, url: str, *, data: dict[str, str] | None, json: Any,
              headers: dict[str, str]) -> Reply:
        parts = urlsplit(url)
        sent = {k.lower(): v for k, v in headers.items()}
        body = b""
        if json is not None:
            body = jsonlib.dumps(json).encode()
            sent.setdefault("content-type", "application/json")
        request = Request(method=method, path=parts.path, args=dict(parse_qsl(parts.query)), form=dict(data or {}),
                          body=body, content_length=len(body) if body else None, headers=sent,
                          cookies=dict(self.cookies), client_addr="127.0.0.1", host=self.host,
                          query_string=parts.query)
        v = self.flow.visit(request, Session(self.session, cycle=self._cycle))
        route, params = self._match(parts.path)
        if route is not None:
            if method not in route.methods:
                return Reply(405, {})
            answer = self.flow.dispatch(route, v, **params)
        elif parts.path.startswith(self.flow.static_url + "/"):
            name = parts.path.removeprefix(self.flow.static_url + "/")
            found = files("otp_pro.web").joinpath("static", name)
            return Reply(200, {}, found.read_text()) if found.is_file() else Reply(404, {})
        else:
            gated = self.flow.gate(v)
            view = self.views.get(parts.path)
            answer = gated if gated is not None else view(v) if view is not None else None
            if answer is None:
                return Reply(404, {})
            if isinstance(answer, str):
                return Reply(200, {}, answer)
        return self._reply(answer, v)

    def _match(self, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in self.flow.routes:
            pattern = re.sub(r"<(\w+)>", r"(?P<\1>[^/]+)", re.escape(self.flow.full_path(route)).replace(r"\<", "<")
                             .replace(r"\>", ">"))
            found = re.fullmatch(pattern, path)
            if found:
                return route, found.groupdict()
        return None, {}

    def _reply(self, answer: Page | Redirect | Json | Download, v: Any) -> Reply:
        headers = dict(answer.headers)
        for cookie in answer.cookies:
            if cookie.value is None:
                self.cookies.pop(cookie.name, None)
            else:
                self.cookies[cookie.name] = cookie.value
        if isinstance(answer, Redirect):
            return Reply(answer.status, {**headers, "Location": answer.location})
        if isinstance(answer, Json):
            return Reply(answer.status, headers, jsonlib.dumps(answer.body), answer.body)
        if isinstance(answer, Download):
            headers.update({"Content-Type": answer.content_type, "Content-Disposition": answer.disposition()})
            return Reply(answer.status, headers, "".join(answer.chunks))
        return Reply(answer.status, headers, self.flow.render(answer, v))


def flow_client(otp: OtpPro, member: Member) -> FlowClient:
    """A client of a site holding only the flow: ``GET /login`` signs ``member`` in (303 to the verify page
    when a second step is due) and ``/home`` is the page after it."""
    flow = Flow(otp, load_member={member.id: member}.get, check_password=lambda _m, _p: True, secure_cookies=False)

    def sign_in(v: Any) -> Redirect:
        return Redirect(location=login(v, member, next="/home"))

    return FlowClient(flow, views={"/login": sign_in, "/home": lambda v: "home page"})
