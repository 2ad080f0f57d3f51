"""What the magic-links tests share besides fixtures: a real HTTP server for the app, settings, mail readers.

The fixtures built on them (``web``, ``make_otp``, ``member``) are in conftest.py.
"""

from __future__ import annotations

import http.client
import re
import socketserver
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from otp_pro import Member, OtpPro
from otp_pro.testing import Mailbox, mailed_text

SECRET_KEY = "test-secret-key-" + "x" * 32
LINK = re.compile(r"https?://\S+")


def last_link(mailbox: Mailbox, address: str) -> str:
    """The first link in the newest mail to ``address``."""
    match = LINK.search(mailed_text(mailbox, address))
    assert match, "no link in the mail"
    return match.group(0)


def last_code(mailbox: Mailbox, address: str) -> str:
    """The one-time code in the newest mail to ``address``."""
    match = re.search(r"\b(\d{6,10})\b", mailed_text(mailbox, address))
    assert match, "no code in the mail"
    return match.group(1)


def enrol_by_link(otp: OtpPro, member: Member, mailbox: Mailbox) -> None:
    """Set up ``email:magic_link`` for ``member``: the setup's link, mailed through the real SMTP server, is used.

    Links are sent only to a member's own link factor, at the address its setup
    confirmed (an ``email:code`` factor does not let anyone ask for links).
    """
    from otp_pro_magic_links import parse

    otp.begin_setup(member, "email:magic_link")
    token = parse(last_link(mailbox, member.email or ""))
    assert token is not None
    assert otp.verify_token("magic_link", token).ok
    mailbox.clear()


# ------------------------------------------------------------------ HTTP


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 64


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request line holds the token on GET; keep it out of the test output


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: str


class WebServer:
    """A threaded wsgiref server on 127.0.0.1 (bound before the app exists, so base_url can name its port)."""

    def __init__(self) -> None:
        self.server = _ThreadingWSGIServer(("127.0.0.1", 0), _QuietHandler)
        self.server.set_app(self._not_mounted)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def _not_mounted(environ: Any, start_response: Any) -> list[bytes]:
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
        return [b"no app mounted"]

    def mount(self, app: Callable[..., Any]) -> None:
        self.server.set_app(app)

    def request(self, method: str, url: str, body: Mapping[str, str] | bytes | None = None,
                headers: Mapping[str, str] | None = None) -> Reply:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        all_headers = dict(headers or {})
        data: bytes | None = None
        if isinstance(body, Mapping):
            from urllib.parse import urlencode

            data = urlencode(body).encode()
            all_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif body is not None:
            data = body
        conn = http.client.HTTPConnection("127.0.0.1", self.server.server_port, timeout=30)
        try:
            conn.request(method, target, body=data, headers=all_headers)
            response = conn.getresponse()
            return Reply(response.status, response.headers, response.read().decode("utf-8", "replace"))
        finally:
            conn.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


# ------------------------------------------------------------------ OtpPro


def base_settings(database_url: str, smtp: tuple[str, int], base_url: str | None, **overrides: Any) -> dict[str, Any]:
    magic: dict[str, Any] = {"base_url": base_url} if base_url else {}
    magic.update(overrides.pop("magic_links", {}))
    settings: dict[str, Any] = {
        "secret_key": SECRET_KEY,
        "database_url": database_url,
        "site_name": "Example",
        "support_email": "help@example.com",
        "channels": ["email:code", "email:magic_link", "outbox:magic_link", "totp"],
        "default_channel": "email:code",
        "resend_cooldown_seconds": 0,
        "providers": {
            "email": {"smtp_host": smtp[0], "smtp_port": smtp[1], "from_address": "otp@example.com"},
            "magic_links": magic,
        },
    }
    settings.update(overrides)
    return settings
