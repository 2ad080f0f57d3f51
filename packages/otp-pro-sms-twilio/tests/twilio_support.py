"""A real HTTP server on 127.0.0.1 that speaks Twilio's Messaging API, the numbers and settings the tests use.

The official ``twilio`` client talks to :class:`FakeTwilio` over a real socket
(``api_base_url`` points at it). Each test scripts the answers it needs with
:meth:`FakeTwilio.reply` and reads back what the client sent in
:attr:`FakeTwilio.requests`. The fixtures built on it are in conftest.py.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

SECRET_KEY = "sms-twilio-test-secret-key-" + "x" * 32
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
# Distinctive, so a leak is found by searching any text for it.
AUTH_TOKEN = "tok3n-" + "5ecre7" * 4 + "-never-shown"
FROM_NUMBER = "+15017122661"
SERVICE_SID = "MG" + "fedcba9876543210" * 2
MOBILE_GB = "+447400123456"
MOBILE_GG = "+447911123456"  # Guernsey shares +44 with the United Kingdom
MOBILE_FR = "+33612345678"
LANDLINE_GB = "+442079460000"

MESSAGES_PATH = re.compile(r"^(?P<prefix>(/[^/]+)*?)/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")


@dataclass
class Reply:
    """One scripted answer: HTTP ``status`` with a JSON (dict) or raw (str) ``body`` and ``headers``, after ``delay`` s.

    ``body=None`` with a 2xx status means a normal "message created" answer.
    """

    status: int = 201
    body: dict[str, Any] | str | None = None
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers (Retry-After)


def twilio_error(code: int, status: int = 400, message: str = "") -> Reply:
    """Twilio's JSON error shape (``code``, ``message``, ``more_info``, ``status``)."""
    return Reply(status, {
        "code": code,
        "message": message or f"Twilio error {code} for +15005550001",  # Twilio's texts often repeat the number
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    })


@dataclass
class Recorded:
    """A request the server received: path, Basic-auth credentials, form fields and headers."""

    method: str
    path: str
    auth: tuple[str, str] | None
    form: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)
    #: The client's (host, port): one per TCP connection, so kept-alive connections show as repeats.
    peer: tuple[str, int] | None = None


class FakeTwilio:
    """Twilio's ``POST /2010-04-01/Accounts/{sid}/Messages.json`` on 127.0.0.1, scriptable per test.

    Any other path (or method) gets Twilio's 20404 / HTTP 404.
    Checks Basic auth (answering 20003 / HTTP 401 like Twilio), requires ``To``,
    ``Body`` and one of ``From`` / ``MessagingServiceSid``, and answers
    ``201`` with a fresh ``SM...`` SID unless a scripted :class:`Reply` is queued.
    """

    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN, prefix: str = ""):
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.prefix = prefix  # a path the API is served under, as behind a proxy
        self.requests: list[Recorded] = []
        self.replies: deque[Reply] = deque()
        self.created: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        # A short poll interval keeps shutdown() (at the end of every test) fast.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-twilio",
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{self.prefix}"

    def start(self) -> FakeTwilio:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # releases handlers sleeping on a delay
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def reply(self, *replies: Reply) -> None:
        """Queue answers for the next requests, in order; once used up, requests succeed again."""
        with self._lock:
            self.replies.extend(replies)

    def bodies(self, to: str | None = None) -> list[str]:
        """The ``Body`` of every message request received, optionally only those to ``to``."""
        with self._lock:
            return [r.form.get("Body", "") for r in self.requests if to is None or r.form.get("To") == to]

    def last_code(self, to: str | None = None, digits: int = 6) -> str:
        """The one-time code in the newest message body."""
        bodies = self.bodies(to)
        assert bodies, "the server received no message"
        match = re.search(rf"\b(\d{{{digits}}})\b", bodies[-1])
        assert match, "no code in the message body"
        return match.group(1)

    # ------------------------------------------------------------------ server

    def _answer(self, method: str, path: str, auth: tuple[str, str] | None, form: dict[str, str]) -> Reply:
        match = MESSAGES_PATH.match(path)
        if method != "POST" or match is None or match["prefix"] != self.prefix:
            return twilio_error(20404, 404, "The requested resource was not found")
        if auth != (self.account_sid, self.auth_token) or match["sid"] != self.account_sid:
            return twilio_error(20003, 401, "Authenticate")
        with self._lock:
            scripted = self.replies.popleft() if self.replies else None
        if scripted is not None and (scripted.status >= 300 or scripted.body is not None):
            return scripted
        if not form.get("To"):
            return twilio_error(21604, 400, "A 'To' phone number is required.")
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return twilio_error(21603, 400, "A 'From' phone number is required.")
        if not form.get("Body"):
            return twilio_error(21602, 400, "Message body is required.")
        sid = "SM" + secrets.token_hex(16)
        created = {
            "sid": sid, "account_sid": self.account_sid, "to": form["To"], "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"), "body": form["Body"], "status": "queued",
            "num_segments": "1", "direction": "outbound-api", "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        with self._lock:
            self.created.append(created)
        return Reply(201, created, scripted.delay if scripted else 0.0)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8") if length else ""
                form = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
                auth = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
                    auth = (user, password)
                with fake._lock:
                    fake.requests.append(Recorded(self.command, self.path, auth, form, dict(self.headers),
                                                  tuple(self.client_address[:2])))
                reply = fake._answer(self.command, self.path, auth, form)
                if reply.delay:
                    fake._stop.wait(reply.delay)
                body = reply.body if isinstance(reply.body, str) else json.dumps(reply.body or {})
                data = body.encode("utf-8")
                content_type = "text/html" if isinstance(reply.body, str) else "application/json"
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            do_POST = _serve
            do_GET = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

        return Handler


def sms_settings(twilio: FakeTwilio | None = None, **overrides: Any) -> dict[str, Any]:
    """A complete ``providers.sms_twilio`` section pointing at ``twilio`` (tiny timeouts and backoff)."""
    section: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from_number": FROM_NUMBER,
        "timeout_seconds": 2.0,
        "max_retries": 2,
        "backoff_seconds": 0.01,
    }
    if twilio is not None:
        section["api_base_url"] = twilio.url
    section.update(overrides)
    return {k: v for k, v in section.items() if v is not None}


def site_settings(database_url: str, **overrides: Any) -> dict[str, Any]:
    """Site settings on ``database_url`` offering ``sms_twilio:code`` and ``totp``, with no resend cooldown."""
    settings: dict[str, Any] = {
        "secret_key": SECRET_KEY,
        "database_url": database_url,
        "site_name": "Example",
        "support_email": "help@example.com",
        "channels": ["sms_twilio:code", "totp"],
        "default_channel": "sms_twilio:code",
        # Tests that are not about throttling should not trip over it.
        "resend_cooldown_seconds": 0,
    }
    settings.update(overrides)
    return settings
