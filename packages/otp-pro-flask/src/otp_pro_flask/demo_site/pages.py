"""The demo's Flask app: the extension on server-side sessions, and the demo's own pages.

The pages: an index of the demo logins and login patterns, the dev mailbox
(``/mailbox``, every message the outbox kept), and ``/protected``, the page
behind the second step. The login patterns are in :mod:`.logins`.
"""

from __future__ import annotations

import os
import secrets
from typing import TYPE_CHECKING

from flask import Flask, redirect, render_template, url_for
from werkzeug.wrappers import Response

import otp_pro.web

from .. import OtpProFlask
from . import logins
from .otp import installed_plugins
from .sessions import SqliteSessionInterface

if TYPE_CHECKING:
    from .site import DemoSite

#: The login patterns the index page links to: ``(name, path, description)``.
PATTERNS = (
    ("two-step", "/login", "Two-step: password page, then a verify page"),
    ("inline", "/login/inline", "Inline progressive reveal: the code field appears on the same page"),
    ("modal", "/login/modal", "Modal: both steps in a dialog over the page"),
    ("ajax", "/login/ajax", "AJAX: both steps through the JSON endpoints"),
)
# The app's templates and static files are the web layer's, in ``otp_pro/web``.
_WEB_ROOT = os.path.dirname(os.path.abspath(otp_pro.web.__file__))


def make_app(site: DemoSite) -> tuple[Flask, OtpProFlask]:
    """The demo's Flask app and its :class:`OtpProFlask`, on ``site``'s store and OtpPro."""
    app = Flask("otp_pro_flask.demo_site", root_path=_WEB_ROOT)
    app.config["SECRET_KEY"] = site.store.meta("flask_secret_key", lambda: secrets.token_urlsafe(48))
    app.session_interface = SqliteSessionInterface(site.store, secure=False)
    ext = OtpProFlask(
        app, site.otp, load_member=site.store.member, check_password=site.store.check_password,
        secure_cookies=False,  # plain http on 127.0.0.1; honoured for loopback requests only
        security_headers_app_wide=True, home_url=logins.HOME, extra_allow=("/", "/mailbox"),
        operator=lambda member: "admin" in member.roles,  # the operator console, for Ada Admin
    )

    @app.get("/")
    def index() -> str:
        channels = [(n, site.otp.channels[n].label) for n in site.otp.settings.channels or ()]
        return render_template("otp_pro/demo/index.html", accounts=site.accounts(), patterns=PATTERNS,
                               channels=channels, plugins=sorted(installed_plugins()))

    @app.get("/mailbox")
    def mailbox() -> str:
        messages = list(reversed(list(enumerate(site.outbox.messages))))[:50]
        return render_template("otp_pro/demo/mailbox.html", messages=messages)

    @app.get("/mailbox/<int:number>.html")
    def mailbox_html(number: int) -> Response:
        """The HTML part of a message (from a templating plugin such as otp-pro-html-email), as a mail client
        would show it: its own inline styles allowed, no script, no request leaving the page."""
        stored = site.outbox.messages
        message = stored[number] if number < len(stored) else None
        if message is None or not message.html:
            return Response("No HTML version of that message.", 404, mimetype="text/plain")
        response = Response(message.html, mimetype="text/html")
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; frame-ancestors 'none'")
        return response

    @app.get(logins.HOME)
    def protected() -> Response | str:
        member = ext.current_member()
        if member is None:
            return redirect(url_for("login", next=logins.HOME), 303)
        return render_template("otp_pro/demo/protected.html", member=member, status=ext.status())

    logins.register(app, site, ext)

    @app.errorhandler(404)
    def not_found(_: Exception) -> tuple[str, int]:
        return render_template("otp_pro/message.html", title="Not found",
                               message="There is no page at this address.", link="/"), 404

    @app.errorhandler(405)
    def not_allowed(_: Exception) -> tuple[str, int]:
        return render_template("otp_pro/message.html", title="Not allowed",
                               message="This page does not answer that kind of request.", link="/"), 405

    return app, ext
