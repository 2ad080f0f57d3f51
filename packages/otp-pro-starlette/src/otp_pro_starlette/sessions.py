"""Server-side sessions for ASGI apps: the cookie holds only a random id, the data stays in a SQLite file.

Why ship one: the flow rotates the session at every login, passed second step and logout (``cycle``).
Starlette's ``SessionMiddleware`` keeps the whole session in a signed cookie; it has no id to change, so a
rotation is only a new cookie, and an old cookie stays valid until it expires: a copy of a verified
session's cookie (from a shared computer, a log, a proxy) still opens it after logout. With the data on
the server a logout deletes the session and a rotation retires the old id for good.

:class:`ServerSessionMiddleware` puts a :class:`ServerSession` (a dict with :meth:`~ServerSession.regenerate`,
which the adapter calls as the flow's ``cycle``) in ``scope["session"]``, as Starlette's does, so
``request.session`` works as usual. :class:`SqliteSessionStore` keeps sessions in one table (the id's
SHA-256 is the key: a copy of the table opens no session); any object with the same four methods (a
Redis or PostgreSQL store) can replace it. Store calls run in worker threads.

Requests of one session overlap (a second tab, a page polling ``/api/delivery``): a write-back only
updates a row that still exists, so a session deleted by a logout meanwhile stays deleted, and a rotation
moves the row only if it is still there. The last write-back of two concurrent changes wins.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
import time
from collections.abc import Mapping
from contextlib import closing
from typing import Any, Protocol

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .adapter import run

_SID = re.compile(r"^[A-Za-z0-9_-]{43}$")


def _key(sid: str) -> str:
    return hashlib.sha256(sid.encode("ascii")).hexdigest()


def _dump(data: Mapping[str, Any]) -> str:
    # Sorted keys: the same data always gives the same text, so "unchanged" is a string comparison.
    return json.dumps(dict(data), sort_keys=True)


class SessionStore(Protocol):
    """Where :class:`ServerSessionMiddleware` keeps sessions (every method may block: it runs in a thread)."""

    def load(self, sid: str) -> dict[str, Any] | None:
        """The data of session ``sid``, or None when it is unknown or expired."""

    def add(self, sid: str, data: str, expires: float) -> None:
        """Store a new session."""

    def update(self, old_sid: str, sid: str, data: str, expires: float) -> bool:
        """Write session ``old_sid`` back under ``sid`` (the same id, or a rotation's new one).

        Only when ``old_sid`` still exists: False when it is gone (deleted by a logout meanwhile).
        """

    def delete(self, sid: str) -> None:
        """Forget session ``sid``."""


class SqliteSessionStore:
    """Sessions in a SQLite file (WAL mode), keyed by the SHA-256 of their id; expired ones are purged."""

    def __init__(self, path: str) -> None:
        self.path = path
        with closing(self._connect()) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS otp_pro_sessions "
                       "(key TEXT PRIMARY KEY, data TEXT NOT NULL, expires REAL NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        # One connection per call: calls come from whichever worker thread runs them.
        return sqlite3.connect(self.path, timeout=10, isolation_level=None)

    def load(self, sid: str) -> dict[str, Any] | None:
        """The data of session ``sid``, or None when it is unknown or expired."""
        with closing(self._connect()) as db:
            row = db.execute("SELECT data FROM otp_pro_sessions WHERE key = ? AND expires > ?",
                             (_key(sid), time.time())).fetchone()
        found = json.loads(row[0]) if row else None
        return found if isinstance(found, dict) else None

    def add(self, sid: str, data: str, expires: float) -> None:
        """Store a new session (and purge the expired ones)."""
        with closing(self._connect()) as db:
            db.execute("DELETE FROM otp_pro_sessions WHERE expires <= ?", (time.time(),))
            db.execute("INSERT INTO otp_pro_sessions (key, data, expires) VALUES (?, ?, ?)",
                       (_key(sid), data, expires))

    def update(self, old_sid: str, sid: str, data: str, expires: float) -> bool:
        """Write session ``old_sid`` back under ``sid``, only if it still exists."""
        with closing(self._connect()) as db:
            cursor = db.execute("UPDATE otp_pro_sessions SET key = ?, data = ?, expires = ? WHERE key = ?",
                                (_key(sid), data, expires, _key(old_sid)))
            return cursor.rowcount == 1

    def delete(self, sid: str) -> None:
        """Forget session ``sid``."""
        with closing(self._connect()) as db:
            db.execute("DELETE FROM otp_pro_sessions WHERE key = ?", (_key(sid),))


class ServerSession(dict[str, Any]):
    """A session whose data stays on the server: ``sid`` is its id, ``regenerate()`` gives it a new one."""

    def __init__(self, data: Mapping[str, Any] | None, sid: str, *, new: bool) -> None:
        super().__init__(data or {})
        self.sid = sid
        self.new = new
        #: The id a rotation retires (None: not rotated in this request).
        self.old_sid: str | None = None
        self.loaded = _dump(self) if not new else ""

    def regenerate(self) -> None:
        """Give the session a new id; the old one is retired when the response starts."""
        if self.old_sid is None and not self.new:
            self.old_sid = self.sid
        self.sid = secrets.token_urlsafe(32)


class ServerSessionMiddleware:
    """``scope["session"]`` from a :class:`SessionStore`: the cookie ``cookie_name`` holds only a random id.

    ``https_only`` makes the cookie ``Secure`` (leave it on outside local development); ``max_age`` is
    how long an unused session lives, in seconds (8 hours by default).
    """

    def __init__(self, app: ASGIApp, store: SessionStore, *, cookie_name: str = "session", https_only: bool = True,
                 max_age: int = 8 * 3600, path: str = "/") -> None:
        self.app = app
        self.store = store
        self.cookie_name = cookie_name
        self.max_age = max_age
        self.path = path
        self.flags = f"; HttpOnly; SameSite=Lax{'; Secure' if https_only else ''}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        sid = HTTPConnection(scope).cookies.get(self.cookie_name, "")
        data = await run(self.store.load, sid) if _SID.match(sid) else None
        # An unknown, expired or deleted id is never taken over: a new session gets a new random id.
        session = ServerSession(data, sid, new=False) if data is not None else \
            ServerSession(None, secrets.token_urlsafe(32), new=True)
        scope["session"] = session

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookie = await self._save(session)
                if cookie is not None:
                    MutableHeaders(scope=message).append("set-cookie", cookie)
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    async def _save(self, session: ServerSession) -> str | None:
        """Write the session back if this request changed it; the ``Set-Cookie`` value to send, if any."""
        stored = session.old_sid or (None if session.new else session.sid)
        if not session:
            if stored:
                await run(self.store.delete, stored)
                return f"{self.cookie_name}=; Path={self.path}; Max-Age=0{self.flags}"
            return None
        data = _dump(session)
        expires = time.time() + self.max_age
        if stored is None:
            await run(self.store.add, session.sid, data, expires)
        elif data == session.loaded and session.old_sid is None:
            return None
        elif not await run(self.store.update, stored, session.sid, data, expires):
            return None  # deleted meanwhile (a logout): it stays deleted, the browser keeps what it has
        return f"{self.cookie_name}={session.sid}; Path={self.path}; Max-Age={self.max_age}{self.flags}"
