"""The demo site behind ``otp-pro demo``: a Flask app on 127.0.0.1 with an embedded SQLite file.

Demo members in different roles sign in with a password and meet each login
pattern; every installed channel is enabled in a safe mode: whatever any
transport would send (email, SMS through ``sms_twilio``, magic links) goes to
the ``outbox`` transport instead and is shown on the dev mailbox page
(``/mailbox``), and written as ``.eml`` files next to the database. Nothing
ever leaves the machine.

``create_app(database=..., base_url=...)`` builds the app (tests use it);
``serve(host, port, database)`` runs it on a real HTTP server and prints the URL
and the demo logins.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, make_response, redirect, render_template, request, url_for
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Response

from ..core import OtpPro
from ..hookspecs import hookimpl
from ..member import Member
from ..transports import Message, Receipt
from .flask import OtpProFlask, lock_minutes, safe_next


@dataclass(frozen=True)
class DemoAccount:
    """A demo login: who it is, its password, and the channel it is enrolled on at start (if any)."""

    email: str
    password: str
    name: str
    roles: tuple[str, ...]
    about: str
    phone: str | None = None
    enroll: str | None = None


ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount("admin@demo.test", "admin-demo", "Ada Admin", ("admin",),
                "required, authenticator app only: forced setup at first sign-in"),
    DemoAccount("editor@demo.test", "editor-demo", "Eddie Editor", ("editor",),
                "optional, codes by email (already set up)", enroll="email:code"),
    DemoAccount("member@demo.test", "member-demo", "Mia Member", ("member",),
                "required with a 14-day grace period: a 'set up soon' notice"),
    DemoAccount("sms@demo.test", "sms-demo", "Sam Sms", ("editor",),
                "optional, codes by SMS through Twilio (routed to the outbox)", phone="+447400123456",
                enroll="sms_twilio:code"),
    DemoAccount("link@demo.test", "link-demo", "Lin Link", ("editor",),
                "optional, sign-in links by email", enroll="email:magic_link"),
    DemoAccount("viewer@demo.test", "viewer-demo", "Vic Viewer", ("viewer",),
                "not required: no second step"),
)
PATTERNS = (
    ("two-step", "/login", "Two-step: password page, then a verify page"),
    ("inline", "/login/inline", "Inline progressive reveal: the code field appears on the same page"),
    ("modal", "/login/modal", "Modal: both steps in a dialog over the page"),
    ("ajax", "/login/ajax", "AJAX: both steps through the JSON endpoints"),
)
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def installed_plugins() -> set[str]:
    """Names of the ``otp_pro`` entry points installed (the companions)."""
    return {ep.name for ep in metadata.entry_points(group="otp_pro")}


# ------------------------------------------------------------------ storage


class DemoStore:
    """Demo members, the demo's keys and server-side sessions, in the same SQLite file as otp-pro."""

    def __init__(self, path: str) -> None:
        self.path = path
        with self.connect() as db:
            # WAL: several server processes (gunicorn workers) share the file; readers never block the writer.
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(
                "CREATE TABLE IF NOT EXISTS demo_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                "CREATE TABLE IF NOT EXISTS demo_members (id TEXT PRIMARY KEY, email TEXT UNIQUE NOT NULL,"
                " name TEXT NOT NULL, roles TEXT NOT NULL, phone TEXT, salt TEXT NOT NULL, hash TEXT NOT NULL);"
                "CREATE TABLE IF NOT EXISTS demo_sessions (sid TEXT PRIMARY KEY, data TEXT NOT NULL,"
                " expires REAL NOT NULL);"
            )

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=15)
        try:
            with db:
                yield db
        finally:
            db.close()

    def meta(self, key: str, make: Callable[[], str]) -> str:
        """A persisted value (made once): the demo's secret keys survive a restart with the same database."""
        with self.connect() as db:
            row = db.execute("SELECT value FROM demo_meta WHERE key = ?", (key,)).fetchone()
            if row:
                return str(row[0])
            value = make()
            db.execute("INSERT INTO demo_meta (key, value) VALUES (?, ?)", (key, value))
            return value

    def add_member(self, email: str, password: str, name: str, roles: tuple[str, ...],
                   phone: str | None = None) -> Member:
        salt = secrets.token_bytes(16)
        digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
        member_id = "m-" + hashlib.sha256(email.lower().encode()).hexdigest()[:12]
        with self.connect() as db:
            db.execute("INSERT INTO demo_members (id, email, name, roles, phone, salt, hash) VALUES (?,?,?,?,?,?,?)",
                       (member_id, email.lower(), name, json.dumps(list(roles)), phone, salt.hex(), digest.hex()))
        found = self.member(member_id)
        assert found is not None
        return found

    def add_members(self, rows: Iterable[tuple[str, str]], password: str, roles: tuple[str, ...]) -> list[Member]:
        """Add many members ``(email, name)`` sharing one password, hashed once (load tests; never a real site)."""
        salt = secrets.token_bytes(16)
        digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT).hex()
        values = [("m-" + hashlib.sha256(email.lower().encode()).hexdigest()[:12], email.lower(), name,
                   json.dumps(list(roles)), None, salt.hex(), digest) for email, name in rows]
        with self.connect() as db:
            db.executemany("INSERT INTO demo_members (id, email, name, roles, phone, salt, hash)"
                           " VALUES (?,?,?,?,?,?,?)", values)
        return [Member(id=v[0], email=v[1], name=v[2], roles=roles) for v in values]

    def _row_member(self, row: Any) -> Member:
        fields = {"phone": row[4]} if row[4] else {}
        return Member(id=row[0], email=row[1], name=row[2], roles=json.loads(row[3]), fields=fields)

    def member(self, member_id: str) -> Member | None:
        with self.connect() as db:
            row = db.execute("SELECT id, email, name, roles, phone FROM demo_members WHERE id = ?",
                             (member_id,)).fetchone()
        return self._row_member(row) if row else None

    def has_members(self) -> bool:
        with self.connect() as db:
            return db.execute("SELECT 1 FROM demo_members LIMIT 1").fetchone() is not None

    def check_login(self, email: str, password: str) -> Member | None:
        """The member with ``email`` and ``password``, or None (same work either way)."""
        with self.connect() as db:
            row = db.execute("SELECT id, email, name, roles, phone, salt, hash FROM demo_members WHERE email = ?",
                             (email.strip().lower()[:254],)).fetchone()
        salt = bytes.fromhex(row[5]) if row else b"\0" * 16
        digest = hashlib.scrypt(password.encode()[:1024], salt=salt, **_SCRYPT)
        if row is None or not hmac.compare_digest(digest.hex(), row[6]):
            return None
        return self._row_member(row)

    def check_password(self, member: Member, password: str) -> bool:
        return member.email is not None and self.check_login(member.email, password) is not None


# ----------------------------------------------------------------- sessions


class ServerSession(CallbackDict, SessionMixin):
    """A session whose data stays on the server; the cookie holds only a random id."""

    def __init__(self, initial: Mapping[str, Any] | None = None, sid: str = "", new: bool = False) -> None:
        def on_update(_: Any) -> None:
            self.modified = True

        super().__init__(initial, on_update)
        self.sid = sid
        self.new = new
        self.modified = False
        self.old_sid: str | None = None


class SqliteSessionInterface(SessionInterface):
    """Server-side sessions in the demo's SQLite file, with :meth:`regenerate` for session rotation."""

    lifetime = 8 * 3600

    def __init__(self, store: DemoStore, *, secure: bool) -> None:
        self.store = store
        self.secure = secure

    def open_session(self, app: Flask, request: Any) -> ServerSession:
        sid = request.cookies.get(self.get_cookie_name(app), "")
        if isinstance(sid, str) and re.fullmatch(r"[A-Za-z0-9_-]{43}", sid):
            with self.store.connect() as db:
                row = db.execute("SELECT data FROM demo_sessions WHERE sid = ? AND expires > ?",
                                 (sid, time.time())).fetchone()
            if row:
                return ServerSession(json.loads(row[0]), sid=sid)
        return ServerSession(sid=secrets.token_urlsafe(32), new=True)

    def regenerate(self, session: ServerSession) -> None:
        """Give the session a new id; the old one is deleted when the response is saved."""
        if session.old_sid is None and not session.new:
            session.old_sid = session.sid
        session.sid = secrets.token_urlsafe(32)
        session.modified = True

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, ServerSession)
        name = self.get_cookie_name(app)
        with self.store.connect() as db:
            if session.old_sid:
                db.execute("DELETE FROM demo_sessions WHERE sid = ?", (session.old_sid,))
            if not session:
                db.execute("DELETE FROM demo_sessions WHERE sid = ?", (session.sid,))
                if not session.new:
                    response.delete_cookie(name, path="/")
                return
            if not session.modified and not session.new:
                return
            db.execute("INSERT OR REPLACE INTO demo_sessions (sid, data, expires) VALUES (?, ?, ?)",
                       (session.sid, json.dumps(dict(session)), time.time() + self.lifetime))
        response.set_cookie(name, session.sid, max_age=self.lifetime, path="/", httponly=True, samesite="Lax",
                            secure=self.secure)


# -------------------------------------------------------------- the demo


class _DemoPlugin:
    """Member lookup for the CLI and other tools, from the demo's member table."""

    def __init__(self, store: DemoStore) -> None:
        self.store = store

    @hookimpl
    def otp_pro_member_lookup(self, otp: OtpPro, member_id: str) -> Member | None:
        return self.store.member(member_id)


class _Clock:
    """Real time, set back while the demo members are enrolled so their setup codes do not start a cooldown."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) - self.offset


def _to_outbox(outbox: Any, transport_name: str) -> Callable[[Message], Receipt]:
    def send(message: Message) -> Receipt:
        message.headers = {**message.headers, "X-Otp-Pro-Demo-Transport": transport_name}
        receipt: Receipt = outbox.send(message)
        return receipt

    return send


def build_otp(store: DemoStore, database: str, *, base_url: str, overrides: Mapping[str, Any] | None = None,
              mail_dir: str | None = None, to_outbox: bool = True) -> OtpPro:
    """The demo's OtpPro: every installed channel, every transport's delivery routed to the outbox.

    ``to_outbox=False`` leaves the transports alone, so they deliver for real to
    whatever ``overrides["providers"]`` points them at (the load test's loopback SMTP server).
    """
    plugins = installed_plugins()
    channels = ["email:code", "totp"]
    providers: dict[str, Any] = {"outbox": {"directory": mail_dir} if mail_dir else {}}
    if "otp_pro_sms_twilio" in plugins:
        channels.append("sms_twilio:code")
        # Dummy credentials so the channel is offered; delivery is rerouted below, and the API
        # address is the discard port of this machine, so nothing can reach Twilio even so.
        providers["sms_twilio"] = {"account_sid": "AC" + "0" * 32, "auth_token": "demo-not-a-real-token",
                                   "from_number": "+15005550006", "api_base_url": "http://127.0.0.1:9",
                                   "max_retries": 0, "timeout_seconds": 1.0}
    if "otp_pro_magic_links" in plugins:
        channels.append("email:magic_link")
        providers["magic_links"] = {"base_url": base_url}
    settings: dict[str, Any] = {
        "secret_key": store.meta("otp_secret_key", lambda: secrets.token_urlsafe(48)),
        "database_url": f"sqlite:///{database}",
        "site_name": "otp-pro demo",
        "support_email": "support@demo.test",
        "mode": "visible",
        "channels": channels,
        "default_channel": "email:code",
        "roles": {
            "admin": {"requirement": "required", "channels": ["totp"], "grace_days": 0},
            "editor": {"requirement": "optional"},
            "member": {"requirement": "required", "grace_days": 14},
            "viewer": {"requirement": "not_required"},
        },
        "providers": providers,
    }
    for key, value in (overrides or {}).items():
        settings[key] = value
    clock = _Clock()
    otp = OtpPro(settings, plugins=[_DemoPlugin(store)], clock=clock)
    outbox = otp.transports["outbox"]
    for name, transport in otp.transports.items():
        if to_outbox and name != "outbox":
            # Safe mode: the transport still resolves and checks recipients and renders its own
            # message, but delivery goes to the outbox.
            transport.send = _to_outbox(outbox, name)  # type: ignore[method-assign,assignment]
    otp._demo_clock = clock  # type: ignore[attr-defined]
    return otp


def enroll(otp: OtpPro, member: Member, channel: str) -> None:
    """Set ``member`` up on a delivered ``channel`` by reading the confirmation from the outbox."""
    clock = getattr(otp, "_demo_clock", None)
    if clock is not None:
        clock.offset = timedelta(minutes=10)
    try:
        otp.begin_setup(member, channel)
        message = otp.transports["outbox"].last()  # type: ignore[attr-defined]
        if channel.endswith(":magic_link"):
            token = re.search(r"token=([A-Za-z0-9_-]+)", message.text)
            assert token is not None
            otp.verify_token("magic_link", token.group(1))
        else:
            code = re.search(r"\b(\d{6,10})\b", message.text)
            assert code is not None
            otp.complete_setup(member, code.group(1))
    finally:
        if clock is not None:
            clock.offset = timedelta(0)
        otp.transports["outbox"].clear()  # type: ignore[attr-defined]


class DemoSite:
    """The demo: its store, OtpPro, Flask app and extension. ``add_member`` makes more members (tests)."""

    def __init__(self, database: str | None = None, *, base_url: str = "http://127.0.0.1:5000",
                 overrides: Mapping[str, Any] | None = None, seed: bool = True, to_outbox: bool = True) -> None:
        self._tmp = None
        if database is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="otp-pro-demo-")
            database = str(Path(self._tmp.name) / "demo.sqlite3")
        self.database = database
        self.mail_dir = str(Path(database).with_suffix("")) + "-outbox"
        self.store = DemoStore(database)
        self.otp = build_otp(self.store, database, base_url=base_url, overrides=overrides, mail_dir=self.mail_dir,
                             to_outbox=to_outbox)
        self.outbox: Any = self.otp.transports["outbox"]
        self.app = self._make_app()
        if seed and not self.store.has_members():
            for account in ACCOUNTS:
                self.add_account(account)

    def close(self) -> None:
        self.otp.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def add_account(self, account: DemoAccount) -> Member | None:
        """Add a demo member (enrolled on its channel when that channel is installed); None when skipped."""
        if account.enroll and account.enroll not in self.otp.channels:
            return None
        member = self.store.add_member(account.email, account.password, account.name, account.roles, account.phone)
        if account.enroll:
            enroll(self.otp, member, account.enroll)
        return member

    def add_member(self, email: str, password: str, *, roles: tuple[str, ...] = ("editor",),
                   enroll_on: str | None = None, name: str | None = None, phone: str | None = None) -> Member:
        member = self.add_account(DemoAccount(email, password, name or email.split("@")[0].title(), roles, "",
                                              phone=phone, enroll=enroll_on))
        assert member is not None
        return member

    def accounts(self) -> list[DemoAccount]:
        return [a for a in ACCOUNTS if not a.enroll or a.enroll in self.otp.channels]

    # ------------------------------------------------------------- the app

    def _make_app(self) -> Flask:
        app = Flask("otp_pro.web.demo_site")
        app.config["SECRET_KEY"] = self.store.meta("flask_secret_key", lambda: secrets.token_urlsafe(48))
        app.session_interface = SqliteSessionInterface(self.store, secure=False)
        ext = OtpProFlask(
            app, self.otp, load_member=self.store.member, check_password=self.store.check_password,
            secure_cookies=False,  # plain http on 127.0.0.1; honoured for loopback requests only
            security_headers_app_wide=True, home_url="/protected", extra_allow=("/", "/mailbox"),
        )
        self.ext = ext
        site = self

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

        @app.get("/protected")
        def protected() -> Response | str:
            member = ext.current_member()
            if member is None:
                return redirect(url_for("login", next="/protected"), 303)
            return render_template("otp_pro/demo/protected.html", member=member, status=ext.status())

        def _password_step(template: str, **extra: Any) -> Response:
            email = request.form.get("email", "")[:254]
            password = request.form.get("password", "")
            next_url = safe_next(request.form.get("next") or request.args.get("next"), "/protected")
            if not email or not password:
                return make_response(render_template(template, error="Enter your email and password.",
                                                     email=email, next=next_url, **extra), 400)
            member = site.store.check_login(email, password)
            if member is None:
                return make_response(render_template(template, error="Email or password is not correct.",
                                                     email=email, next=next_url, **extra), 401)
            return redirect(ext.login(member, next=next_url), 303)

        @app.route("/login", methods=["GET", "POST"])
        def login() -> Response | str:
            if request.method == "POST":
                return _password_step("otp_pro/login.html")
            return render_template("otp_pro/login.html", next=safe_next(request.args.get("next"), ""))

        def _stepped(template: str, endpoint: str) -> Response | str:
            action = url_for(endpoint)
            opened = request.args.get("open") == "1" or request.method == "POST"
            common = {"login_action": action, "open": opened}
            if request.method == "POST" and request.form.get("step") == "code":
                outcome, token = ext.verify_code(request.form.get("code", ""),
                                                 trust_device=bool(request.form.get("trust")))
                if outcome.ok:
                    response = redirect(outcome.location or "/protected", 303)
                    if token:
                        ext.set_device_cookie(response, token)
                    return response
                return make_response(render_template(template, step="code", error=outcome.message,
                                                     **_code_context(), **common), outcome.status)
            if request.method == "POST":
                email = request.form.get("email", "")[:254]
                password = request.form.get("password", "")
                member = site.store.check_login(email, password) if email and password else None
                if member is None:
                    message = "Enter your email and password." if not (email and password) else \
                        "Email or password is not correct."
                    return make_response(render_template(template, step="password", error=message, email=email,
                                                         **common), 400 if not (email and password) else 401)
                target = ext.login(member, next="/protected")
                if target != url_for("otp_pro.verify"):
                    return redirect(target, 303)
                return render_template(template, step="code", **_code_context(), **common)
            if ext.current_member() is not None and not ext.is_verified() and ext.status() is not None and \
                    ext.status().verification_needed:  # type: ignore[union-attr]
                return render_template(template, step="code", **_code_context(), **common)
            return render_template(template, step="password", **common)

        def _code_context() -> dict[str, Any]:
            member = ext.current_member()
            status = ext.status()
            sent = ext.verify_context_sent()
            minutes = None
            if status is not None and status.locked_until is not None:
                minutes = lock_minutes(status.locked_until, site.otp.clock())
            return {"email": member.email if member else "", "sent": sent, "locked_minutes": minutes}

        @app.route("/login/inline", methods=["GET", "POST"])
        def login_inline() -> Response | str:
            return _stepped("otp_pro/patterns/inline.html", "login_inline")

        @app.route("/login/modal", methods=["GET", "POST"])
        def login_modal() -> Response | str:
            return _stepped("otp_pro/patterns/modal.html", "login_modal")

        @app.get("/login/ajax")
        def login_ajax() -> str:
            return render_template("otp_pro/patterns/ajax.html", login_api=url_for("login_ajax_api"))

        @app.post("/login/ajax/api")
        def login_ajax_api() -> Response:
            data = request.get_json(silent=True)
            if not isinstance(data, dict) or not isinstance(data.get("email"), str) or \
                    not isinstance(data.get("password"), str) or not data["email"] or not data["password"]:
                return make_response(jsonify(ok=False, error="bad_request",
                                             message="Enter your email and password.",
                                             csrf_token=ext.csrf_token()), 400)
            member = site.store.check_login(data["email"][:254], data["password"])
            if member is None:
                return make_response(jsonify(ok=False, error="credentials",
                                             message="Email or password is not correct.",
                                             csrf_token=ext.csrf_token()), 401)
            target = ext.login(member, next="/protected")
            sent = ext.verify_context_sent()
            if target == url_for("otp_pro.verify"):
                message = (f"We sent a code by {sent['label']} to {sent['hint']}." if sent else
                           "Enter the code from your authenticator app.")
                return jsonify(ok=True, step="code", message=message, recipient_hint=(sent or {}).get("hint"),
                               csrf_token=ext.csrf_token())
            return jsonify(ok=True, step="done", location=target, csrf_token=ext.csrf_token())

        @app.route("/logout", methods=["GET", "POST"])
        def logout() -> Response | str:
            if request.method == "POST":
                ext.logout()
                return redirect("/", 303)
            return render_template("otp_pro/message.html", title="Sign out",
                                   message="Use the Sign out button at the top of the page.", link="/")

        @app.errorhandler(404)
        def not_found(_: Exception) -> tuple[str, int]:
            return render_template("otp_pro/message.html", title="Not found",
                                   message="There is no page at this address.", link="/"), 404

        @app.errorhandler(405)
        def not_allowed(_: Exception) -> tuple[str, int]:
            return render_template("otp_pro/message.html", title="Not allowed",
                                   message="This page does not answer that kind of request.", link="/"), 405

        return app


def create_app(database: str | None = None, *, base_url: str = "http://127.0.0.1:5000",
               overrides: Mapping[str, Any] | None = None) -> Flask:
    """The demo's Flask app (its :class:`DemoSite` is ``app.extensions["otp_pro_demo"]``)."""
    site = DemoSite(database, base_url=base_url, overrides=overrides)
    site.app.extensions["otp_pro_demo"] = site
    return site.app


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
    site.app.extensions["otp_pro_demo"] = site
    thread = threading.Thread(target=server.serve_forever, name="otp-pro-demo", daemon=True)
    thread.start()
    return server, site, thread


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


__all__ = ["ACCOUNTS", "DemoAccount", "DemoSite", "create_app", "serve", "start"]
