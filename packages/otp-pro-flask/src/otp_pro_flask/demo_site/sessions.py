"""Server-side Flask sessions for the demo, in its SQLite file: the cookie holds only a random id.

With the data on the server, ``logout()`` ends a session everywhere and a
rotation (:meth:`SqliteSessionInterface.regenerate`) really retires the old id.

Requests of one session overlap (a second tab, a page's polling, a thief's
replayed cookie), so a request's write-back is conditional on the row it read
(see :mod:`.store`): a session deleted or rotated away while a request was in
flight stays gone, and a stale copy never overwrites a newer one. A request
that leaves the session as it found it writes nothing at all.
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


def _dump(data: Mapping[str, Any]) -> str:
    # Sorted keys: the same data always gives the same text, so "unchanged" is a string comparison.
    return json.dumps(dict(data), sort_keys=True)


class ServerSession(CallbackDict, SessionMixin):
    """A session whose data stays on the server; the cookie holds only a random id.

    ``version`` and ``loaded`` are the stored row as this request read it (None and
    "" for a session not stored yet); ``old_sid`` is the id a rotation retires.
    """

    def __init__(self, initial: Mapping[str, Any] | None = None, sid: str = "", new: bool = False,
                 version: int | None = None) -> None:
        def on_update(_: Any) -> None:
            self.modified = True

        super().__init__(initial, on_update)
        self.sid = sid
        self.new = new
        self.modified = False
        self.old_sid: str | None = None
        self.version = version
        self.loaded = _dump(self) if initial is not None else ""


class SqliteSessionInterface(SessionInterface):
    """Server-side sessions in the demo's SQLite file, with :meth:`regenerate` for session rotation."""

    lifetime = 8 * 3600

    def __init__(self, store: DemoStore, *, secure: bool) -> None:
        self.store = store
        self.secure = secure

    def open_session(self, app: Flask, request: Any) -> ServerSession:
        sid = request.cookies.get(self.get_cookie_name(app), "")
        if isinstance(sid, str) and _SID.fullmatch(sid):
            found = self.store.session(sid)
            if found is not None:
                data, version = found
                return ServerSession(json.loads(data), sid=sid, version=version)
        # An unknown, expired or deleted id is never taken over: a new session gets a new random id.
        return ServerSession(sid=secrets.token_urlsafe(32), new=True)

    def regenerate(self, session: ServerSession) -> None:
        """Give the session a new id; the old one is retired when the response is saved."""
        if session.old_sid is None and not session.new:
            session.old_sid = session.sid
        session.sid = secrets.token_urlsafe(32)
        session.modified = True

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Write the session back if this request changed it, never over a row that changed or went meanwhile.

        A write-back that finds its row gone or changed is dropped, and the
        response sets no cookie: the browser keeps whatever a newer response
        gave it, and a deleted session stays deleted.
        """
        assert isinstance(session, ServerSession)
        name = self.get_cookie_name(app)
        if not session:
            # The id the session is stored under, if any (a rotation's new id is not stored yet). Ending a
            # session is never stale, so its delete needs no version: a logout always wins.
            stored = session.old_sid or (None if session.new else session.sid)
            if stored:
                self.store.delete_session(stored)
                response.delete_cookie(name, path="/")
            return
        data = _dump(session)
        expires = time.time() + self.lifetime
        if session.old_sid is not None:
            assert session.version is not None
            written = self.store.rotate_session(session.old_sid, session.version, session.sid, data, expires)
        elif session.new:
            self.store.add_session(session.sid, data, expires)
            written = True
        elif data == session.loaded:
            return
        else:
            assert session.version is not None
            written = self.store.update_session(session.sid, session.version, data, expires)
        if written:
            response.set_cookie(name, session.sid, max_age=self.lifetime, path="/", httponly=True,
                                samesite="Lax", secure=self.secure)
