"""Server-side Flask sessions for the demo, in its SQLite file: the cookie holds only a random id.

With the data on the server, ``logout()`` ends a session everywhere and a
rotation (:meth:`SqliteSessionInterface.regenerate`) really retires the old id.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict
from werkzeug.wrappers import Response

from .store import DemoStore

_SID = re.compile(r"[A-Za-z0-9_-]{43}")


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
        if isinstance(sid, str) and _SID.fullmatch(sid):
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
