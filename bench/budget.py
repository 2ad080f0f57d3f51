"""Where a TOTP verification's time goes on SQLite: its parts, each measured alone, beside the whole and the floor.

Sides on one ``OtpPro`` (one SQLite file in WAL mode), taking turns batch by batch
(``compare.measure``), each operation on a member no other operation used:

- **verify()**: ``OtpPro.verify(member, code)``, all of it (the reference);
- **the database work**: what verify sends to SQLite, through otp-pro's own ``Database``
  and fast statements: a write transaction (``BEGIN IMMEDIATE``) that reads the member's
  state, moves the factor's time step and inserts the ``verify_ok`` audit row, and its commit;
- **the same SQL, sqlite3 alone**: the database work's statements, as otp-pro's fast statements
  compiled them and with their bind values processed the same way, sent by the ``sqlite3`` module on a
  connection of its own to the same file, the rows left raw (what SQLite itself costs on otp-pro's
  schema, with the values prepared as the floor prepares its own; the database work less this is
  otp-pro's ``Database`` layer: SQLAlchemy's transaction, the row processing);
- **the seed opened**: ``KeyRing.decrypt`` of the member's sealed seed (Fernet: HMAC-SHA256 and AES);
- **the code checked**: ``totp.match`` (base32 decode, HMAC-SHA1 of the three steps in the window,
  compared in constant time);
- **the listeners told**: the ``otp_pro_event`` hook called with the event (the built-in listeners);
- **the raw floor**: the issue's floor, on its own file (``sides.RawSide``).

"The rest" is verify() less its four parts: otp-pro's own Python around them (the requirement,
the lock checks, the factor type's dispatch, the result). Imported by ``bench/compare.py``
(part ``budget``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sides import OtpProSide, RawSide, Target, utcnow

VERIFY, DATABASE, SQLITE, SEED, CHECK, LISTENERS, FLOOR = (
    "verify(), all of it", "the database work", "the same SQL, sqlite3 alone", "the seed opened",
    "the code checked", "the listeners told", RawSide.name)
PARTS = (DATABASE, SEED, CHECK, LISTENERS)


class _Part:
    """A side that enrols members of its own on the shared instance and times one piece of verify."""

    name = ""
    prefix = ""

    def __init__(self, core: OtpProSide) -> None:
        self.core = core
        self.rt = core.otp._rt  # the engine's runtime: the parts call what verify calls
        self.ids: list[str] = []
        self.members: list[Any] = []
        self.factors: list[Any] = []
        self.statements = None

    def enrol(self, ids: list[str], channel: str) -> list[bytes]:
        keys = self.core.enrol(ids, "totp")
        self.ids, self.members = list(ids), list(self.core.members)
        with self.rt.db.read_once() as conn:
            self.factors = [self.rt.state(conn, member_id).factors[0] for member_id in ids]
        return keys

    def ok_event(self, i: int) -> Any:
        """The ``verify_ok`` event verify writes for member ``i``'s TOTP code (the engine's own builder)."""
        from otp_pro._engine.verification import ok_event
        from otp_pro.results import Method

        return ok_event(self.rt, self.ids[i], "totp", Method.TOTP, None, None, self.factors[i].id)

    def step(self, now: Any) -> int:
        """The TOTP time step at ``now`` (the one a code typed now proves)."""
        from otp_pro.totp import step_at

        return step_at(now, self.rt.settings.totp)

    def close(self) -> None:
        pass


class VerifyPart(_Part):
    name, prefix = VERIFY, "all"

    def totp_op(self, i: int, code: str) -> None:
        if not self.core.otp.verify(self.members[i], code).ok:
            raise AssertionError("otp-pro refused a TOTP code")


class DatabasePart(_Part):
    name, prefix = DATABASE, "db"

    def totp_op(self, i: int, code: str) -> None:
        from otp_pro import audit
        from otp_pro.storage import statements

        rt, member_id = self.rt, self.ids[i]
        now = utcnow()
        counter = statements.factor_counter(True)[0]
        with rt.db.write() as conn:
            factor = rt.state(conn, member_id, for_update=True).factors[0]
            moved = rt.db.run(conn, counter, {"b_member": member_id, "b_factor": factor.id, "b_step": self.step(now),
                                              "b_now": now}).rowcount
            audit.write(rt.db, conn, self.ok_event(i))
        if moved != 1:
            raise AssertionError("the time step did not move")


class SqlitePart(_Part):
    name, prefix = SQLITE, "sql"

    def __init__(self, core: OtpProSide, path: str) -> None:
        import sqlite3

        from otp_pro import audit
        from otp_pro.storage import statements

        super().__init__(core)
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=10000")
        fast = self.rt.db._fast  # the SQL and bind processing otp-pro's fast statements use
        self.state, self.counter, self.insert = (fast.get(statements.STATE),
                                                 fast.get(statements.factor_counter(True)[0]), fast.get(audit.INSERT))

    def totp_op(self, i: int, code: str) -> None:
        from otp_pro import audit

        member_id, factor_id = self.ids[i], self.factors[i].id
        now = utcnow()
        conn, state, counter, insert = self.conn, self.state, self.counter, self.insert
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(state.sql, state.parameters({"b_member": member_id})).fetchall()
        moved = conn.execute(counter.sql, counter.parameters({"b_member": member_id, "b_factor": factor_id,
                                                              "b_step": self.step(now), "b_now": now})).rowcount
        conn.execute(insert.sql, insert.parameters(audit.params(self.ok_event(i)))).fetchall()
        conn.execute("COMMIT")
        if moved != 1:
            raise AssertionError("the time step did not move")

    def close(self) -> None:
        self.conn.close()


class SeedPart(_Part):
    name, prefix = SEED, "seed"

    def totp_op(self, i: int, code: str) -> None:
        self.rt.keys.decrypt(self.factors[i].secret)


class CheckPart(_Part):
    name, prefix = CHECK, "check"

    def enrol(self, ids: list[str], channel: str) -> list[bytes]:
        keys = super().enrol(ids, channel)
        self.seeds = [self.rt.keys.decrypt(factor.secret) for factor in self.factors]
        return keys

    def totp_op(self, i: int, code: str) -> None:
        from otp_pro.totp import match

        if match(self.seeds[i], code, utcnow(), self.rt.settings.totp, after_step=None) is None:
            raise AssertionError("the code did not match")


class ListenersPart(_Part):
    name, prefix = LISTENERS, "events"

    def totp_op(self, i: int, code: str) -> None:
        from dataclasses import replace

        from otp_pro._engine import auditing

        auditing.emit(self.rt, [replace(self.ok_event(i), id=i + 1)], self.members[i])


def run_budget(args: Any, folder: Path, measure: Callable[..., dict[str, Any]], row: Callable[..., Any]) -> list[Any]:
    """The budget rows: each side's figures, on SQLite in WAL mode."""
    path = str(folder / "budget.sqlite3")
    core = OtpProSide(Target("sqlite", sqlite_path=path, wal=True))
    floor = RawSide(Target("sqlite", sqlite_path=str(folder / "budget-floor.sqlite3"), wal=True))
    sides: list[Any] = []
    try:
        sides = [VerifyPart(core), DatabasePart(core), SqlitePart(core, path), SeedPart(core), CheckPart(core),
                 ListenersPart(core), floor]
        figures = measure(sides, "totp", args.members, args.repeats, args.warmup)
    finally:
        for side in sides:
            if side is not floor:
                side.close()
        core.close()
        floor.close()
    whole = figures[VERIFY].median
    print("  " + "; ".join(f"{name} {figures[name].median * 1e6:,.0f} us" for name in (VERIFY, DATABASE, SQLITE,
                                                                                      *PARTS[1:], FLOOR))
          + f"; the rest {rest(figures) * 1e6:,.0f} us ({rest(figures) / whole:.0%})", flush=True)
    return [row("TOTP verify, its parts", "SQLite, WAL", figures)]


def rest(figures: dict[str, Any]) -> float:
    """verify() less its measured parts."""
    return figures[VERIFY].median - sum(figures[name].median for name in PARTS)


def budget_table(rows: list[Any]) -> list[str]:
    lines = ["| part | us/op (min-max) | share of verify() | / raw floor |", "|---|---|---|---|"]
    for r in rows:
        whole, floor = r.sides[VERIFY].median, r.sides[FLOOR].median
        for name in (VERIFY, DATABASE, SQLITE, *PARTS[1:]):
            f = r.sides[name]
            label = f"of which: {name}" if name == SQLITE else name
            lines.append(f"| {label} | {f.median * 1e6:,.0f} ({f.spread()}) | {f.median / whole:.0%} "
                         f"| {f.median / floor:.2f}x |")
        left = rest(r.sides)
        lines.append(f"| the rest (otp-pro's own Python around the parts) | {left * 1e6:,.0f} | {left / whole:.0%} "
                     f"| {left / floor:.2f}x |")
        f = r.sides[FLOOR]
        lines.append(f"| {FLOOR} (for comparison) | {f.median * 1e6:,.0f} ({f.spread()}) | {floor / whole:.0%} "
                     f"| 1.00x |")
    return lines
