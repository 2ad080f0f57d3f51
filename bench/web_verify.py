"""The web verify request: a TOTP code POSTed to ``/otp/verify`` through the Flask adapter, against ``verify``.

Two sides on one ``OtpPro`` (one SQLite file in WAL mode, or PostgreSQL), taking turns batch
by batch (``compare.measure``), each operation on a member no other operation used:

- **library**: ``OtpPro.verify(member, code, ip=..., user_agent=...)`` with the address and user agent the
  adapter passes for the request (so both count the code against the per-address limit and audit
  the same row);
- **Flask adapter**: ``POST /otp/verify`` through Flask's test client (the whole WSGI app:
  werkzeug's request parsing, the signed cookie session loaded and saved, the CSRF check, the
  gate, the verify view, the session rotation, the ``303``), for a session signed in with the
  password only. The session (member, login id, CSRF token) is put in place before the
  clock starts, as the site's login view would have left it.

A third side, **Flask alone**, is the framework's own floor for the same request: the same POST
through the same test client to a plain Flask view that reads the form, compares the CSRF token,
writes the session and answers ``303``, with no otp-pro and no database. The adapter cannot cost
less than the library plus that floor; the table gives the adapter's share besides them.

Imported by ``bench/compare.py`` (part ``web``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sides import OtpProSide, Target

LIBRARY, ADAPTER, FLOOR = "otp-pro verify()", "POST /otp/verify (Flask adapter)", "the same POST, Flask alone"
#: The request's client, as Flask's test client sends it and the library side passes it.
CLIENT = {"ip": "127.0.0.1", "user_agent": "bench-browser/1.0"}


class LibrarySide:
    """``OtpPro.verify`` alone, on the shared instance."""

    name = LIBRARY
    prefix = "lib"

    def __init__(self, core: OtpProSide) -> None:
        self.core = core
        self.members: list[Any] = []
        self.statements = 0

    def count_statements(self) -> Any:
        return _Counting(self)

    def enrol(self, ids: list[str], channel: str) -> list[bytes]:
        keys = self.core.enrol(ids, channel)
        self.members = list(self.core.members)
        return keys

    def totp_op(self, i: int, code: str) -> None:
        result = self.core.otp.verify(self.members[i], code, **CLIENT)
        if not result.ok:
            raise AssertionError(f"otp-pro refused a TOTP code: {result.reason}")

    def close(self) -> None:
        pass


class FlaskSide:
    """``POST /otp/verify`` through ``OtpProFlask`` and Flask's test client."""

    name = ADAPTER
    prefix = "web"

    def __init__(self, core: OtpProSide) -> None:
        from flask import Flask
        from otp_pro_flask import OtpProFlask

        self.core = core
        self.by_id: dict[str, Any] = {}
        self.ids: list[str] = []
        self.token = ""
        self.statements = 0
        app = Flask("bench_web_verify")
        app.secret_key = secrets.token_hex(32)
        app.add_url_rule("/", "home", lambda: "home")
        OtpProFlask(app, core.otp, load_member=self.by_id.get, check_password=lambda _m, _p: True,
                    secure_cookies=False)
        self.client = app.test_client()

    def count_statements(self) -> Any:
        return _Counting(self)

    def enrol(self, ids: list[str], channel: str) -> list[bytes]:
        keys = self.core.enrol(ids, channel)
        self.by_id.update((m.id, m) for m in self.core.members)
        self.ids = ids
        return keys

    def prepare(self, i: int) -> None:
        """What the site's login view leaves for member ``i``: the member, a fresh login id, the CSRF token.
        ``compare.measure`` calls it before the clock starts."""
        from otp_pro.web.flow import state

        self.token = secrets.token_urlsafe(32)
        with self.client.session_transaction() as session:
            session.clear()
            session.update({state.K_MEMBER: self.ids[i], state.K_LOGIN: secrets.token_urlsafe(16),
                            state.K_CSRF: self.token})

    def totp_op(self, i: int, code: str) -> None:
        response = self.client.post("/otp/verify", data={"code": code, "csrf_token": self.token},
                                    headers={"User-Agent": CLIENT["user_agent"]})
        if response.status_code != 303:
            raise AssertionError(f"the verify POST answered {response.status_code}")

    def close(self) -> None:
        pass


class _Counting:
    """``count_statements`` of a side on the shared engine (``before_cursor_execute``)."""

    def __init__(self, side: Any) -> None:
        self.side = side

    def __enter__(self) -> None:
        from sqlalchemy import event

        event.listen(self.side.core.otp.db.engine, "before_cursor_execute", self._count)

    def __exit__(self, *exc: object) -> None:
        from sqlalchemy import event

        event.remove(self.side.core.otp.db.engine, "before_cursor_execute", self._count)

    def _count(self, *_args: Any) -> None:
        self.side.statements += 1


class FlaskFloorSide:
    """The same POST through the same test client to a view with no otp-pro and no database."""

    name = FLOOR
    prefix = "floor"

    def __init__(self) -> None:
        from flask import Flask, redirect, request, session

        app = Flask("bench_flask_floor")
        app.secret_key = secrets.token_hex(32)

        def view() -> Any:
            import hmac

            if not hmac.compare_digest(request.form.get("csrf_token", ""), session.get("csrf", "")):
                return "refused", 400
            code = request.form.get("code", "")
            if not code.isdigit():
                return "refused", 400
            session["verified"] = session.get("login")
            return redirect("/", 303)

        app.add_url_rule("/otp/verify", "verify", view, methods=["POST"])
        self.client = app.test_client()
        self.token = ""
        self.statements = None

    def enrol(self, ids: list[str], channel: str) -> list[bytes]:
        return [secrets.token_bytes(20) for _ in ids]

    def prepare(self, i: int) -> None:
        self.token = secrets.token_urlsafe(32)
        with self.client.session_transaction() as session:
            session.clear()
            session.update({"member": f"m{i}", "login": secrets.token_urlsafe(16), "csrf": self.token})

    def totp_op(self, i: int, code: str) -> None:
        response = self.client.post("/otp/verify", data={"code": code, "csrf_token": self.token},
                                    headers={"User-Agent": CLIENT["user_agent"]})
        if response.status_code != 303:
            raise AssertionError(f"the plain Flask view answered {response.status_code}")

    def close(self) -> None:
        pass


def run_web(args: Any, folder: Path, scratch: Any, measure: Callable[..., dict[str, Any]],
            row: Callable[..., Any]) -> list[Any]:
    """The web verify rows (SQLite WAL; PostgreSQL when ``scratch``), each with the adapter / library ratio."""
    targets = [("SQLite, WAL", Target("sqlite", sqlite_path=str(folder / "web-verify.sqlite3"), wal=True))]
    if scratch is not None:
        targets.append(("PostgreSQL", Target("postgresql", pg_dsn=scratch.dsn)))
    rows = []
    for label, target in targets:
        core = OtpProSide(target)
        try:
            sides = [LibrarySide(core), FlaskSide(core), FlaskFloorSide()]
            figures = measure(sides, "totp", args.members, args.repeats, args.warmup)
        finally:
            core.close()
        rows.append(row("web verify: TOTP code", label, figures))
        lib, web, floor = figures[LIBRARY], figures[ADAPTER], figures[FLOOR]
        print(f"  web verify ({label}): library {lib.median * 1e6:,.0f} us, adapter {web.median * 1e6:,.0f} us "
              f"= {web.median / lib.median:.2f}x, Flask alone {floor.median * 1e6:,.0f} us; adapter's own share "
              f"{own_share(web.median, lib.median, floor.median):.2f}x the library call; statements "
              f"{lib.statements:.1f} / {web.statements:.1f}", flush=True)
    return rows


def own_share(web: float, lib: float, floor: float) -> float:
    """What the adapter adds besides the library call and Flask's own request, as a multiple of the library call."""
    return (web - floor - lib) / lib


def web_checks(rows: list[Any]) -> list[tuple[str, bool, str]]:
    out = []
    for r in rows:
        lib, web, floor = (r.sides[n].median for n in (LIBRARY, ADAPTER, FLOOR))
        out.append((f"web verify through the Flask adapter ({r.database}): within 1.5x of verify()",
                    web / lib <= 1.5, f"{web / lib:.2f}x ({web * 1e6:,.0f} us / {lib * 1e6:,.0f} us; Flask alone "
                    f"{floor * 1e6:,.0f} us = {floor / lib:.2f}x, so at best {(floor + lib) / lib:.2f}x)"))
    return out


def web_table(rows: list[Any]) -> list[str]:
    lines = ["| scenario | database | side | us/op (min-max) | statements per op | ratio |", "|---|---|---|---|---|---|"]
    for r in rows:
        lib = r.sides[LIBRARY]
        for name, f in r.sides.items():
            ratio = "reference" if name == LIBRARY else f"{f.median / lib.median:.2f}x"
            if name == ADAPTER:
                floor = r.sides[FLOOR].median
                ratio += f" (its own share besides verify() and Flask: {own_share(f.median, lib.median, floor):.2f}x)"
            stmts = f"{f.statements:.1f}" if f.statements is not None else "-"
            lines.append(f"| {r.scenario} | {r.database} | {name} | {f.median * 1e6:,.0f} ({f.spread()}) | {stmts} "
                         f"| {ratio} |")
    return lines
