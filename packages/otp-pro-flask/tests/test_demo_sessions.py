"""The demo's server-side sessions: a deleted session stays deleted, and a request that changes nothing writes nothing.

The races run against the demo served for real (werkzeug's threaded server on a
free port of 127.0.0.1), with the session cookie carried by hand so that a test
can replay an old one the way a thief would. A request is held between its view
and the write-back of its session (``X-Test-Hold``), so the interleaving "began
before the logout, finished after it" happens every time, not by luck.
"""

from __future__ import annotations

import http.client
import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from otp_pro_flask.demo_site import DemoSite, start
from otp_pro_flask.demo_site.store import DemoStore

EDITOR = ("editor@demo.test", "editor-demo")  # a second step by email code
VIEWER = ("viewer@demo.test", "viewer-demo")  # no second step: signed in by the password alone
FAST = {"resend_cooldown_seconds": 0}
COOKIE = "session"
HOLD = "X-Test-Hold"


@dataclass
class Reply:
    """What the demo answered: status, ``Location``, the session cookie it set ("" when deleted) and the body."""

    status: int
    location: str
    cookie: str | None
    text: str


class Demo:
    """The demo on a real port, and requests to it that carry a session id given by the test."""

    def __init__(self, port: int, site: DemoSite) -> None:
        self.port = port
        self.site = site

    def request(self, method: str, path: str, sid: str | None, form: dict[str, str] | None = None,
                headers: dict[str, str] | None = None) -> Reply:
        """One request on a fresh connection, with ``sid`` as the session cookie; redirects are not followed."""
        sent = dict(headers or {})
        if sid:
            sent["Cookie"] = f"{COOKIE}={sid}"
        body = None
        if form is not None:
            body = urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            text = response.read().decode()
            cookie = None
            for header in response.headers.get_all("Set-Cookie") or ():
                jar: SimpleCookie = SimpleCookie(header)
                if COOKIE in jar:
                    morsel = jar[COOKIE]
                    cookie = "" if morsel["max-age"] == "0" or not morsel.value else morsel.value
            return Reply(response.status, response.headers.get("Location", ""), cookie, text)
        finally:
            connection.close()

    def csrf(self, path: str, sid: str | None) -> str:
        """The CSRF token a page of ``sid``'s session carries."""
        found = re.search(r'name="csrf-token" content="([^"]+)"', self.request("GET", path, sid).text)
        assert found, f"no CSRF token on {path}"
        return found.group(1)

    def sign_in(self, email: str, password: str) -> str:
        """Sign in with the password (the first step only); the session id."""
        anonymous = self.request("GET", "/login", None).cookie
        reply = self.request("POST", "/login", anonymous, {"email": email, "password": password,
                                                           "csrf_token": self.csrf("/login", anonymous)})
        assert reply.status == 303 and reply.cookie, reply
        return reply.cookie

    def code(self) -> str:
        """The newest code in the demo's outbox."""
        message = self.site.outbox.last()
        assert message is not None, "nothing in the outbox"
        found = re.search(r"\b(\d{6})\b", message.text)
        assert found, message.text
        return found.group(1)

    def verify(self, sid: str, landing: str = "/protected") -> str:
        """Pass the second step with the emailed code (on to ``landing``); the rotated session id."""
        reply = self.request("POST", "/otp/verify", sid, {"code": self.code(),
                                                          "csrf_token": self.csrf("/otp/verify", sid)})
        assert reply.status == 303 and reply.location == landing and reply.cookie, reply
        return reply.cookie

    def fully_signed_in(self) -> str:
        """An editor through both steps: the session a thief would want."""
        sid = self.verify(self.sign_in(*EDITOR))
        assert self.request("GET", "/protected", sid).status == 200
        return sid

    def logout(self, sid: str) -> Reply:
        """Sign out as the page's button does."""
        reply = self.request("POST", "/logout", sid, {"csrf_token": self.csrf("/", sid)})
        assert reply.status == 303 and reply.cookie == "", reply
        return reply

    def signed_out(self, sid: str | None) -> bool:
        """Whether ``sid`` is refused: the protected page sends it to the password step."""
        reply = self.request("GET", "/protected", sid)
        return reply.status == 303 and reply.location.startswith("/login")

    def stored(self, sid: str) -> bool:
        """Whether the store holds a row for ``sid`` (expired or not)."""
        with self.site.store.connect() as db:
            return db.execute("SELECT 1 FROM demo_sessions WHERE sid = ?", (sid,)).fetchone() is not None


class Hold:
    """Holds every request that carries ``X-Test-Hold`` after its view ran and before its session is written back."""

    def __init__(self, site: DemoSite) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()
        interface: Any = site.app.session_interface
        save = interface.save_session

        def held_save(app: Any, session: Any, response: Any) -> None:
            from flask import request

            if request.headers.get(HOLD):
                self.reached.set()
                assert self.release.wait(30), "the held request was never released"
            save(app, session, response)

        interface.save_session = held_save

    def run(self, begin: Callable[[], Reply], meanwhile: Callable[[], object]) -> Reply:
        """Start ``begin`` (a held request), run ``meanwhile`` while it is held, then let it finish; its reply."""
        self.reached.clear()
        self.release.clear()
        replies: list[Reply] = []
        thread = threading.Thread(target=lambda: replies.append(begin()))
        thread.start()
        try:
            assert self.reached.wait(30), "the request in flight never reached its write-back"
            meanwhile()
        finally:
            self.release.set()
            thread.join(30)
        assert replies, "the request in flight failed"
        return replies[0]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    """The demo site served on a free port by werkzeug's threaded server."""
    server, site, thread = start("127.0.0.1", 0, str(tmp_path / "demo.sqlite3"), overrides=FAST)
    try:
        yield Demo(server.server_port, site)
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
        site.close()


# Requests a thief holding a stolen session cookie can send, each of which changes the session:
# a new ``next`` (GET), and a resend whose flash message lands in the session (POST).
IN_FLIGHT: dict[str, Callable[[Demo, str], Reply]] = {
    "get-verify-next": lambda demo, sid: demo.request("GET", "/otp/verify?next=%2Fmailbox", sid,
                                                      headers={HOLD: "1"}),
    "post-send": lambda demo, sid: demo.request("POST", "/otp/send", sid,
                                                {"csrf_token": demo.csrf("/otp/verify", sid)},
                                                headers={HOLD: "1"}),
}


@pytest.mark.parametrize("kind", sorted(IN_FLIGHT))
def test_request_in_flight_during_logout_does_not_bring_the_session_back(demo: Demo, kind: str) -> None:
    hold = Hold(demo.site)
    for _ in range(5):
        sid = demo.fully_signed_in() if kind == "get-verify-next" else demo.sign_in(*EDITOR)
        late = hold.run(partial(IN_FLIGHT[kind], demo, sid), partial(demo.logout, sid))
        assert late.status == 303, late
        # The stolen cookie stays dead, and the late reply hands out no cookie that would revive it.
        assert not demo.stored(sid)
        assert demo.signed_out(sid)
        assert late.cookie in (None, "") or demo.signed_out(late.cookie)
        # Nor is the dead id taken over by a new session: that gets an id of its own.
        fresh = demo.request("GET", "/login", sid).cookie
        assert fresh and fresh != sid


def test_verification_in_flight_during_logout_does_not_sign_in(demo: Demo) -> None:
    """A rotation begun from a session that is logged out meanwhile does not land under its new id either."""
    hold = Hold(demo.site)
    sid = demo.sign_in(*EDITOR)
    token = demo.csrf("/otp/verify", sid)
    code = demo.code()
    late = hold.run(lambda: demo.request("POST", "/otp/verify", sid, {"code": code, "csrf_token": token},
                                         headers={HOLD: "1"}),
                    lambda: demo.logout(sid))
    assert late.status == 303, late
    assert not demo.stored(sid) and demo.signed_out(sid)
    assert late.cookie in (None, "") or demo.signed_out(late.cookie)
    with demo.site.store.connect() as db:
        assert db.execute("SELECT count(*) FROM demo_sessions WHERE data LIKE '%otp_pro_verified%'").fetchone() == (0,)


def test_request_in_flight_during_verification_does_not_bring_the_old_id_back(demo: Demo) -> None:
    """An id rotated away at verification stays retired although a request of it was in flight."""
    hold = Hold(demo.site)
    before = demo.sign_in(*EDITOR)
    after: list[str] = []
    late = hold.run(lambda: demo.request("GET", "/otp/verify?next=%2Fmailbox", before, headers={HOLD: "1"}),
                    lambda: after.append(demo.verify(before)))
    assert late.status == 200, late
    assert not demo.stored(before)
    assert demo.signed_out(before)
    # The verified session under its new id is untouched by the late write-back.
    assert demo.request("GET", "/protected", after[0]).status == 200


def test_logout_races_requests_in_flight(demo: Demo) -> None:
    """No forced order: requests that change the session run alongside the logout, 40 times over."""
    def change(sid: str, start_line: threading.Barrier, path: str) -> None:
        start_line.wait(10)
        demo.request("GET", path, sid)

    for round_ in range(40):
        sid = demo.sign_in(*VIEWER)
        assert demo.request("GET", "/protected", sid).status == 200
        token = demo.csrf("/protected", sid)
        start_line = threading.Barrier(5)
        paths = [f"/otp/verify?next=%2Fmailbox%3F{round_}-{i}" for i in range(4)]
        threads = [threading.Thread(target=change, args=(sid, start_line, path)) for path in paths]
        for thread in threads:
            thread.start()
        start_line.wait(10)
        assert demo.request("POST", "/logout", sid, {"csrf_token": token}).status == 303
        for thread in threads:
            thread.join(30)
        assert not demo.stored(sid), f"round {round_}: the logged-out session is back"
        assert demo.signed_out(sid)


class Writes:
    """Counts every INSERT, UPDATE and DELETE on ``demo_sessions`` (SQLite triggers, whatever the code path)."""

    def __init__(self, database: str) -> None:
        self.database = database
        with sqlite3.connect(database) as db:
            db.executescript(
                "CREATE TABLE test_session_writes (n INTEGER NOT NULL); INSERT INTO test_session_writes VALUES (0);"
                + "".join(f"CREATE TRIGGER test_session_{op} AFTER {op} ON demo_sessions BEGIN"
                          f" UPDATE test_session_writes SET n = n + 1; END;" for op in ("INSERT", "UPDATE", "DELETE")))

    def count(self) -> int:
        with sqlite3.connect(self.database) as db:
            return int(db.execute("SELECT n FROM test_session_writes").fetchone()[0])


def row(demo: Demo, sid: str) -> tuple[Any, ...]:
    with demo.site.store.connect() as db:
        found = db.execute("SELECT * FROM demo_sessions WHERE sid = ?", (sid,)).fetchone()
    assert found is not None
    return tuple(found)


def test_get_that_changes_nothing_writes_nothing(demo: Demo) -> None:
    writes = Writes(demo.site.database)
    sid = demo.sign_in(*EDITOR)
    demo.request("GET", "/otp/verify?next=%2Fprotected", sid)  # its first page makes the CSRF token
    before, count = row(demo, sid), writes.count()
    for path in ("/otp/verify?next=%2Fprotected", "/otp/verify", "/otp/api/status", "/otp/api/delivery",
                 "/protected", "/", "/mailbox"):
        reply = demo.request("GET", path, sid)
        assert reply.status < 500 and reply.cookie is None, (path, reply)
    assert writes.count() == count and row(demo, sid) == before

    # A GET that does change the session is written back, once.
    demo.request("GET", "/otp/verify?next=%2Fmailbox", sid)
    assert writes.count() == count + 1
    assert json.loads(row(demo, sid)[1])["otp_pro_next"] == "/mailbox"

    # Verified: the same holds for the pages of a signed-in member.
    sid = demo.verify(sid, landing="/mailbox")
    demo.request("GET", "/protected", sid)  # the rotated session's first page makes its CSRF token
    before, count = row(demo, sid), writes.count()
    for path in ("/protected", "/protected", "/otp/verify?next=%2Fmailbox", "/otp/api/status", "/"):
        assert demo.request("GET", path, sid).cookie is None, path
    assert writes.count() == count and row(demo, sid) == before


def test_anonymous_get_stores_only_a_session_with_something_in_it(demo: Demo) -> None:
    writes = Writes(demo.site.database)
    # A page that puts nothing in the session (no form, so no CSRF token): nothing stored, no cookie.
    assert demo.request("GET", "/mailbox/0.html", None).cookie is None
    assert writes.count() == 0
    sid = demo.request("GET", "/login", None).cookie  # the form's CSRF token is kept
    assert sid and demo.stored(sid) and writes.count() == 1


# ----------------------------------------------------------------- the store's rules, one by one


@pytest.fixture
def store(tmp_path: Path) -> DemoStore:
    return DemoStore(str(tmp_path / "store.sqlite3"))


def later() -> float:
    return time.time() + 3600


def test_store_never_brings_a_deleted_session_back(store: DemoStore) -> None:
    store.add_session("a" * 43, '{"k": 1}', later())
    found = store.session("a" * 43)
    assert found == ('{"k": 1}', 0)
    store.delete_session("a" * 43)
    assert not store.update_session("a" * 43, 0, '{"k": 2}', later())
    assert not store.rotate_session("a" * 43, 0, "b" * 43, '{"k": 2}', later())
    assert store.session("a" * 43) is None and store.session("b" * 43) is None


def test_store_refuses_a_write_back_from_a_stale_read(store: DemoStore) -> None:
    store.add_session("a" * 43, '{"k": 1}', later())
    assert store.update_session("a" * 43, 0, '{"k": 2}', later())
    assert store.session("a" * 43) == ('{"k": 2}', 1)
    # Read at version 0, written back after another request's write: refused, the newer data stays.
    assert not store.update_session("a" * 43, 0, '{"k": 3}', later())
    assert not store.rotate_session("a" * 43, 0, "b" * 43, '{"k": 3}', later())
    assert store.session("a" * 43) == ('{"k": 2}', 1) and store.session("b" * 43) is None
    assert store.rotate_session("a" * 43, 1, "b" * 43, '{"k": 3}', later())
    assert store.session("a" * 43) is None and store.session("b" * 43) == ('{"k": 3}', 0)


def test_store_refuses_an_expired_session(store: DemoStore) -> None:
    store.add_session("a" * 43, '{"k": 1}', time.time() - 1)
    assert store.session("a" * 43) is None
    assert not store.update_session("a" * 43, 0, '{"k": 2}', later())


def test_store_inserts_an_id_once(store: DemoStore) -> None:
    store.add_session("a" * 43, '{"k": 1}', later())
    with pytest.raises(sqlite3.IntegrityError):
        store.add_session("a" * 43, '{"k": 2}', later())
    assert store.session("a" * 43) == ('{"k": 1}', 0)


def test_store_adds_the_version_to_an_older_demo_database(tmp_path: Path) -> None:
    """A demo database made before sessions had versions gains the column; its sessions stay valid."""
    path = str(tmp_path / "old.sqlite3")
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE demo_sessions (sid TEXT PRIMARY KEY, data TEXT NOT NULL, expires REAL NOT NULL)")
        db.execute("INSERT INTO demo_sessions VALUES (?, ?, ?)", ("a" * 43, '{"k": 1}', later()))
    store = DemoStore(path)
    assert store.session("a" * 43) == ('{"k": 1}', 0)
    assert store.update_session("a" * 43, 0, '{"k": 2}', later())
