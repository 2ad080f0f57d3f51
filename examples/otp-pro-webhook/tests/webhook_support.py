"""A real HTTP endpoint on 127.0.0.1 that checks every request's signature, and settings pointing at it.

The fixtures built on it (``receiver``, and ``otp_settings`` sending to it) are in conftest.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Distinctive, so that a leak is found by searching any text for it.
SECRET = "whsec-" + "S1gn1ng" * 5 + "-never-shown"
PATH = "/hooks/otp"


class Receiver:
    """The site's webhook endpoint, as a receiver would write it: checks the signature before anything else.

    ``status`` (and ``delay`` seconds before answering) script the answer;
    ``deliveries`` holds the JSON of every correctly signed request, whatever it
    was answered; ``refused`` counts requests whose signature or timestamp failed.
    """

    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret
        self.status = 200
        self.delay = 0.0
        self.location: str | None = None  # for 3xx answers
        self.deliveries: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.refused = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{PATH}"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def authentic(self, timestamp: str | None, body: bytes, signature: str | None) -> bool:
        # Written out here, not imported from otp_pro_webhook: the test checks the sender against
        # what a receiver in any language would compute.
        if not timestamp or not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            return False
        expected = hmac.new(self.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(f"sha256={expected}", signature or "")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ok = (self.path == PATH and self.headers.get("Content-Type") == "application/json"
                      and receiver.authentic(self.headers.get("X-OTP-Pro-Timestamp"), body,
                                             self.headers.get("X-OTP-Pro-Signature")))
                with receiver._lock:
                    if not ok:
                        receiver.refused += 1
                    else:
                        receiver.deliveries.append(json.loads(body))
                        receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
                    status = receiver.status if ok else 401
                    count = len(receiver.deliveries)
                if receiver.delay:
                    receiver._stop.wait(receiver.delay)
                data = json.dumps({"id": f"rcv-{count}"} if status < 300 else {"error": status}).encode()
                try:
                    self.send_response(status)
                    if receiver.location and 300 <= status < 400:
                        self.send_header("Location", receiver.location)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def webhook_settings(receiver: Receiver, **overrides: Any) -> dict[str, Any]:
    """A complete ``providers.webhook`` section pointing at ``receiver``."""
    return {"url": receiver.url, "signing_secret": SECRET, "timeout_seconds": 2.0, **overrides}
