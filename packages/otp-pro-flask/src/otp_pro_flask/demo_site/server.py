"""Running the demo on a real HTTP server: in the foreground (``otp-pro demo``) or a background thread (tests)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from .site import EXTENSION_KEY, DemoSite


class _Holder:
    """A WSGI app that forwards to ``app`` once set: the server's port is known before the app is built."""

    app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        return self.app(environ, start_response)


def start(host: str = "127.0.0.1", port: int = 0, database: str | None = None, *,
          overrides: Mapping[str, Any] | None = None) -> tuple[BaseWSGIServer, DemoSite, threading.Thread]:
    """Start the demo on a threaded HTTP server in a background thread (``port=0``: a free one)."""
    holder = _Holder()
    server = make_server(host, port, holder, threaded=True)
    base_url = f"http://{host}:{server.server_port}"
    site = DemoSite(database, base_url=base_url, overrides=overrides)
    holder.app = site.app
    site.app.extensions[EXTENSION_KEY] = site
    thread = threading.Thread(target=server.serve_forever, name="otp-pro-demo", daemon=True)
    thread.start()
    return server, site, thread


@contextmanager
def running(host: str = "127.0.0.1", database: str | None = None, *,
            overrides: Mapping[str, Any] | None = None) -> Iterator[tuple[str, DemoSite]]:
    """The demo on a free port of ``host`` for the block (:func:`start`): ``(base URL, site)``; then the server
    is shut down and the site closed."""
    server, site, thread = start(host, 0, database, overrides=overrides)
    try:
        yield f"http://{host}:{server.server_port}", site
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
        site.close()


def serve(host: str = "127.0.0.1", port: int = 5000, database: str | None = None,
          echo: Callable[[str], None] = print) -> None:
    """Run the demo site until interrupted; print its URL and the demo logins first."""
    holder = _Holder()
    server = make_server(host, port, holder, threaded=True)
    base_url = f"http://{host}:{server.server_port}"
    site = DemoSite(database, base_url=base_url)
    holder.app = site.app
    echo(f"otp-pro demo site: {base_url}/")
    echo(f"database: {site.database}   mail (.eml): {site.mail_dir}   dev mailbox: {base_url}/mailbox")
    echo("demo logins:")
    for account in site.accounts():
        echo(f"  {account.email:<20} {account.password:<13} {account.about}")
    echo("press Ctrl+C to stop")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        echo("stopped")
    finally:
        server.server_close()
        site.close()
