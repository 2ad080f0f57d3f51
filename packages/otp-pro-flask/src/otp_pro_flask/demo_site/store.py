"""The demo's own data in its SQLite file (beside otp-pro's tables): members, persisted keys and sessions.

A real site has its own user table; this one exists so the demo has members
with passwords in different roles.

A session row carries a version, and every write of one is conditional: a
write-back lands only on the row it was read from, unchanged and unexpired
(``update_session``, ``rotate_session``), and only a brand-new id is inserted
(``add_session``). So a session that was deleted (a logout) or rotated away
meanwhile stays gone, whatever a request still in flight writes back, and a
deleted id is never stored again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from otp_pro.member import Member

# scrypt's cost for the demo's password hashes.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def _member_id(email: str) -> str:
    return "m-" + hashlib.sha256(email.lower().encode()).hexdigest()[:12]


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
                " expires REAL NOT NULL, version INTEGER NOT NULL DEFAULT 0);"
            )
            # A demo database from before sessions had versions: its sessions start at version 0.
            columns = {row[1] for row in db.execute("PRAGMA table_info(demo_sessions)")}
            if "version" not in columns:
                db.execute("ALTER TABLE demo_sessions ADD COLUMN version INTEGER NOT NULL DEFAULT 0")

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in a transaction (committed on success), closed afterwards."""
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
        """Add a member with its own password hash."""
        salt = secrets.token_bytes(16)
        digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
        member_id = _member_id(email)
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
        values = [(_member_id(email), email.lower(), name, json.dumps(list(roles)), None, salt.hex(), digest)
                  for email, name in rows]
        with self.connect() as db:
            db.executemany("INSERT INTO demo_members (id, email, name, roles, phone, salt, hash)"
                           " VALUES (?,?,?,?,?,?,?)", values)
        return [Member(id=v[0], email=v[1], name=v[2], roles=roles) for v in values]

    def _row_member(self, row: Any) -> Member:
        fields = {"phone": row[4]} if row[4] else {}
        return Member(id=row[0], email=row[1], name=row[2], roles=json.loads(row[3]), fields=fields)

    def member(self, member_id: str) -> Member | None:
        """The member with ``member_id``, or None."""
        with self.connect() as db:
            row = db.execute("SELECT id, email, name, roles, phone FROM demo_members WHERE id = ?",
                             (member_id,)).fetchone()
        return self._row_member(row) if row else None

    def has_members(self) -> bool:
        """Whether any member was added yet (the demo accounts are added once)."""
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
        """Whether ``password`` is ``member``'s (the extension asks before a change of MFA settings)."""
        return member.email is not None and self.check_login(member.email, password) is not None

    # ------------------------------------------------------------------ sessions

    def session(self, sid: str) -> tuple[str, int] | None:
        """The data (JSON) and version of the unexpired session ``sid``, or None."""
        with self.connect() as db:
            row = db.execute("SELECT data, version FROM demo_sessions WHERE sid = ? AND expires > ?",
                             (sid, time.time())).fetchone()
        return (str(row[0]), int(row[1])) if row else None

    def add_session(self, sid: str, data: str, expires: float) -> None:
        """Store a brand-new session at version 0; an id already stored raises ``sqlite3.IntegrityError``."""
        with self.connect() as db:
            db.execute("INSERT INTO demo_sessions (sid, data, expires, version) VALUES (?, ?, ?, 0)",
                       (sid, data, expires))

    def update_session(self, sid: str, version: int, data: str, expires: float) -> bool:
        """Write ``data`` back to ``sid`` if it is still at ``version`` and unexpired; whether it was.

        False means the session was deleted, rotated away, expired or written by
        another request since it was read at ``version``: nothing is written.
        """
        with self.connect() as db:
            cursor = db.execute("UPDATE demo_sessions SET data = ?, expires = ?, version = version + 1"
                                " WHERE sid = ? AND version = ? AND expires > ?",
                                (data, expires, sid, version, time.time()))
            return cursor.rowcount == 1

    def rotate_session(self, old_sid: str, version: int, sid: str, data: str, expires: float) -> bool:
        """Replace ``old_sid`` (read at ``version``) by the new id ``sid`` holding ``data``; whether it was.

        One transaction: the new id is stored only if the old row was still there,
        unchanged and unexpired, so a rotation begun from a session that ended
        meanwhile brings nothing back under the new id either.
        """
        with self.connect() as db:
            cursor = db.execute("DELETE FROM demo_sessions WHERE sid = ? AND version = ? AND expires > ?",
                                (old_sid, version, time.time()))
            if cursor.rowcount != 1:
                return False
            db.execute("INSERT INTO demo_sessions (sid, data, expires, version) VALUES (?, ?, ?, 0)",
                       (sid, data, expires))
            return True

    def delete_session(self, sid: str) -> None:
        """End the session ``sid``, whatever its version: ending a session is never stale."""
        with self.connect() as db:
            db.execute("DELETE FROM demo_sessions WHERE sid = ?", (sid,))
