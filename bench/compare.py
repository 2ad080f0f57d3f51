"""otp-pro against django-otp and the raw floor: every scenario in one table, written to docs/benchmarks.md.

    python bench/compare.py [--quick] [--no-write] [--only email,totp,budget,concurrency,delivery,web,cold,memory]

(``python -m nox -s bench`` installs the core, every companion, Django and
django-otp, then runs this.) In one run, for each scenario, the sides
take turns batch by batch (A B C, then C B A, ...) so that machine noise hits
them alike; each batch is ``--members`` operations on members that no batch
used before (replay protection and send cooldowns would refuse a second round
on the same members inside a minute). The table gives the median time per
operation over the batches, their spread (min-max of the batch means) and the
ratios; the results and a description of the machine are written to
docs/benchmarks.md (``--no-write`` only prints).

Scenarios: email code challenge + verify and TOTP verify, each on SQLite with
each library's defaults, on SQLite in WAL mode for all, and on PostgreSQL
(a scratch database created and dropped on ``--pg``); otp-pro verifying on
PostgreSQL from 1, 2, 4 and 8 worker processes with a race that must accept
every code once; delivery through a real SMTP server in its own process
(bench/delivery.py); cold start of the CLI; peak RSS of a process verifying
100,000 codes. Exits with status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import multiprocessing
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from delivery import delivery_checks, delivery_table, run_delivery  # noqa: E402 - the bench folder is not a package
from web_verify import run_web, web_checks, web_table  # noqa: E402 - the bench folder is not a package
from budget import budget_table, run_budget  # noqa: E402 - the bench folder is not a package
from sides import (  # noqa: E402 - the bench folder is not a package
    DjangoOtpSide,
    OtpProSide,
    RawSentSide,
    RawSide,
    Target,
    configure_django,
    totp_code,
)

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
SENT = RawSentSide.name
ALL_PARTS = ("email", "totp", "budget", "concurrency", "delivery", "web", "cold", "memory")


@dataclass
class Figures:
    """One side of one scenario: the mean seconds per operation of each batch, statements per operation."""

    batches: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    statements: float | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.batches)

    def spread(self) -> str:
        return f"{min(self.batches) * 1e6:,.0f}-{max(self.batches) * 1e6:,.0f}"


@dataclass
class Row:
    scenario: str
    database: str
    sides: dict[str, Figures]
    note: str = ""


@dataclass
class Target_:
    name: str
    passed: bool
    detail: str


# ------------------------------------------------------------------ helpers


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def pg_admin(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True)


def machine(pg_url: str | None) -> dict[str, str]:
    info = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu_model()}, {os.cpu_count()} logical cores",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": "not used",
        "libraries": ", ".join(f"{d} {version(d)}" for d in (
            "otp-pro-core", "otp-pro-html-email", "otp-pro-sms-twilio", "otp-pro-magic-links", "SQLAlchemy",
            "psycopg", "Django", "django-otp")),
    }
    try:
        info["load"] = "load average %.2f %.2f %.2f at start" % os.getloadavg()
    except OSError:
        pass
    if pg_url:
        with pg_admin(pg_url) as conn:
            info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0] + " (fsync %s, synchronous_commit %s)" % (
                conn.execute("SHOW fsync").fetchone()[0], conn.execute("SHOW synchronous_commit").fetchone()[0])
    return info


class ScratchDatabase:
    """A PostgreSQL database made for this run and dropped after it."""

    def __init__(self, admin_url: str) -> None:
        from psycopg.conninfo import conninfo_to_dict

        self.admin_url = admin_url
        self.name = f"otp_pro_bench_{os.getpid()}"
        with pg_admin(admin_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}"')
            conn.execute(f'CREATE DATABASE "{self.name}"')
        info = conninfo_to_dict(admin_url)
        user, host, port = info.get("user", "postgres"), info.get("host", "127.0.0.1"), info.get("port", "5432")
        self.dsn = f"postgresql://{user}@{host}:{port}/{self.name}"

    def drop(self) -> None:
        with pg_admin(self.admin_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# ---------------------------------------------------------- side by side


def measure(sides: Sequence[Any], kind: str, members: int, repeats: int, warmup: int) -> dict[str, Figures]:
    """Run ``repeats`` batches of ``members`` operations per side, alternating the order of the sides."""
    total = warmup + members * repeats
    keys: dict[str, list[bytes]] = {}
    channel = "totp" if kind == "totp" else "outbox:code"
    for side in sides:
        ids = [f"{kind}-{getattr(side, 'prefix', side.name[:3])}-{n}" for n in range(total)]
        keys[side.name] = side.enrol(ids, channel)
    out = {side.name: Figures() for side in sides}

    def batch(side: Any, start: int, count: int) -> list[float]:
        op = side.totp_op if kind == "totp" else side.email_op
        prepare = getattr(side, "prepare", None)  # what a side needs in place before the clock starts
        side_keys = keys[side.name]
        latencies = []
        clock = time.perf_counter
        for i in range(start, start + count):
            if prepare is not None:
                prepare(i)
            if kind == "totp":
                code = totp_code(side_keys[i])
                t0 = clock()
                op(i, code)
            else:
                t0 = clock()
                op(i)
            latencies.append(clock() - t0)
        return latencies

    for side in sides:  # warm-up (caches, connections), and how many statements one operation takes
        side.statements = 0
        counter = side.count_statements() if hasattr(side, "count_statements") else None
        if counter is not None:
            with counter:
                batch(side, 0, warmup)
        else:
            batch(side, 0, warmup)
        out[side.name].statements = side.statements / warmup
    gc.collect()
    for r in range(repeats):
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        for side in order:
            latencies = batch(side, warmup + r * members, members)
            out[side.name].batches.append(sum(latencies) / len(latencies))
            out[side.name].latencies.extend(latencies)
    return out


def ensure_django(folder: Path, scratch: ScratchDatabase | None) -> None:
    """Configure Django once per run: one database alias per target (default, wal, pg)."""
    from django.conf import settings

    if settings.configured:
        return
    django_targets = {
        "default": Target("sqlite", sqlite_path=str(folder / "django-default.sqlite3")),
        "wal": Target("sqlite", sqlite_path=str(folder / "django-wal.sqlite3"), wal=True),
    }
    if scratch is not None:
        django_targets["pg"] = Target("postgresql", pg_dsn=scratch.dsn)
    configure_django(django_targets)


def run_side_by_side(args: argparse.Namespace, folder: Path, scratch: ScratchDatabase | None,
                     parts: set[str]) -> list[Row]:
    rows: list[Row] = []
    databases: list[tuple[str, str]] = [("default", "SQLite, each library's defaults"),
                                        ("wal", "SQLite, WAL for all")]
    if scratch is not None:
        databases.append(("pg", "PostgreSQL"))
    ensure_django(folder, scratch)
    for kind in ("email", "totp"):
        if kind not in parts:
            continue
        for alias, label in databases:
            if alias == "pg":
                assert scratch is not None
                own = raw = Target("postgresql", pg_dsn=scratch.dsn)
            else:
                own = Target("sqlite", sqlite_path=str(folder / f"otp-pro-{kind}-{alias}.sqlite3"))
                raw = Target("sqlite", sqlite_path=str(folder / f"raw-{kind}-{alias}.sqlite3"))
            sides = [OtpProSide(own), DjangoOtpSide(alias), RawSide(raw)]
            if kind == "email":  # the floor with otp-pro's record of the delivery (TOTP's floor has it all)
                sides.append(RawSentSide(raw))
            started = time.perf_counter()
            try:
                figures = measure(sides, kind, args.members, args.repeats, args.warmup)
            finally:
                for side in sides:
                    side.close()
            title = "email code: challenge + verify" if kind == "email" else "TOTP verify (replay-protected)"
            rows.append(Row(title, label, figures))
            print(f"  {title:<34} {label:<32} done in {time.perf_counter() - started:5.1f} s", flush=True)
    return rows


# ------------------------------------------------------------- concurrency


def _worker(dsn: str, member_ids: list[str], codes: list[str], race: list[tuple[str, str]], barrier: Any,
            results: Any) -> None:
    sys.path.insert(0, str(HERE))
    from sides import OtpProSide

    side = OtpProSide(Target("postgresql", pg_dsn=dsn))
    members = [side.Member(m, email=f"{m}@example.com") for m in member_ids]
    side.otp.verify(side.Member("warm-up"), "000000")  # a connection in the pool before the clock starts
    barrier.wait()
    start = time.perf_counter()
    latencies = []
    refused = 0
    for member, code in zip(members, codes):
        t0 = time.perf_counter()
        ok = side.otp.verify(member, code).ok
        latencies.append(time.perf_counter() - t0)
        refused += not ok
    end = time.perf_counter()
    barrier.wait()  # every worker races for the same codes
    accepted = [m for m, code in race if side.otp.verify(side.Member(m, email=f"{m}@example.com"), code).ok]
    side.close()
    results.put({"start": start, "end": end, "latencies": latencies, "refused": refused, "accepted": accepted})


def run_concurrency(args: argparse.Namespace, scratch: ScratchDatabase) -> list[dict[str, Any]]:
    ctx = multiprocessing.get_context("spawn")
    issuer = OtpProSide(Target("postgresql", pg_dsn=scratch.dsn))
    out = []
    try:
        for workers in (1, 2, 4, 8):
            ids = [f"conc-{workers}-{n}" for n in range(workers * args.per_worker)]
            race_ids = [f"race-{workers}-{n}" for n in range(args.race)]
            issuer.enrol(ids + race_ids, "outbox:code")
            codes = {}
            for m in ids + race_ids:  # codes issued through the API before the clock starts
                issuer.otp.send_challenge(issuer.Member(m, email=f"{m}@example.com"))
                codes[m] = issuer.outbox.messages[-1].sensitive[0]
            barrier = ctx.Barrier(workers)
            results = ctx.Queue()
            race = [(m, codes[m]) for m in race_ids]
            procs = []
            for w in range(workers):
                mine = ids[w * args.per_worker:(w + 1) * args.per_worker]
                procs.append(ctx.Process(target=_worker, args=(scratch.dsn, mine, [codes[m] for m in mine],
                                                               race[w:] + race[:w], barrier, results)))
            for p in procs:
                p.start()
            answers = [results.get(timeout=600) for _ in procs]
            for p in procs:
                p.join()
            latencies = [x for a in answers for x in a["latencies"]]
            wall = max(a["end"] for a in answers) - min(a["start"] for a in answers)
            accepted: dict[str, int] = {}
            for a in answers:
                for m in a["accepted"]:
                    accepted[m] = accepted.get(m, 0) + 1
            doubles = sum(1 for n in accepted.values() if n > 1)
            missing = sum(1 for m in race_ids if m not in accepted)
            out.append({
                "workers": workers, "verifications": len(latencies), "throughput": len(latencies) / wall,
                "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99),
                "refused": sum(a["refused"] for a in answers), "race": len(race_ids), "doubles": doubles,
                "missing": missing,
            })
            r = out[-1]
            print(f"  {workers} worker(s): {r['throughput']:8.0f} verifications/s  p50 {r['p50'] * 1e3:6.2f} ms  "
                  f"p99 {r['p99'] * 1e3:6.2f} ms  race: {r['race']} codes x {workers} workers, "
                  f"{doubles} double acceptance(s), {missing} never accepted", flush=True)
    finally:
        issuer.close()
    return out


# -------------------------------------------------------------- cold start

PASS = 'python -c "pass"'


def run_cold(args: argparse.Namespace, folder: Path) -> dict[str, list[float]]:
    config = folder / "otp-pro.toml"
    config.write_text(f'secret_key = "{"c" * 48}"\ndatabase_url = "sqlite:///{folder / "cold.sqlite3"}"\n')
    exe = Path(sys.executable)
    cli = exe.with_name("otp-pro")
    commands = {
        "otp-pro providers list": [str(cli), "--config", str(config), "providers", "list"],
        "otp-pro --help": [str(cli), "--config", str(config), "--help"],
        'python -c "from otp_pro import OtpPro"': [str(exe), "-c", "from otp_pro import OtpPro"],
        'python -c "import otp_pro"': [str(exe), "-c", "import otp_pro"],
        PASS: [str(exe), "-c", "pass"],
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    probe = ("import sys, otp_pro, otp_pro.cli; from otp_pro import OtpPro; from otp_pro.plugins import PluginHost\n"
             "heavy = lambda: ' '.join(m for m in ('twilio', 'premailer', 'phonenumbers', 'jinja2', 'alembic') "
             "if m in sys.modules) or '-'\n"
             "PluginHost(); print(heavy())\n"
             f"o = OtpPro({{'secret_key': 'c' * 48, 'database_url': 'sqlite:///{folder / 'cold.sqlite3'}'}}); "
             "print(heavy())")
    subprocess.run([str(exe), "-c", probe], check=True, capture_output=True, env=env)  # creates the tables
    for argv in commands.values():  # first run: bytecode, the migrated database, the page cache
        subprocess.run(argv, check=True, capture_output=True, env=env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for n in range(args.cold_runs):
        items = list(commands.items())
        for name, argv in items if n % 2 == 0 else reversed(items):
            t0 = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True, env=env)
            times[name].append(time.perf_counter() - t0)
    loaded = subprocess.run([str(exe), "-c", probe], check=True, capture_output=True, text=True, env=env)
    discovery, started = (line.replace("-", "").split() for line in loaded.stdout.splitlines()[-2:])
    times["_heavy"] = discovery  # type: ignore[assignment]
    times["_heavy_startup"] = started  # type: ignore[assignment]
    floor = statistics.median(times[PASS])
    for name, values in times.items():
        if not name.startswith("_"):
            print(f"  {name:<40} median {statistics.median(values) * 1e3:6.0f} ms  "
                  f"{statistics.median(values) / floor:5.2f}x python -c pass  "
                  f"(min {min(values) * 1e3:.0f}, max {max(values) * 1e3:.0f}, {len(values)} runs)", flush=True)
    print(f"  heavy modules after plugin discovery: {' '.join(times['_heavy']) or 'none'}; after OtpPro() "
          f"(start-up hooks ran): {' '.join(times['_heavy_startup']) or 'none'}")
    return times


# ------------------------------------------------------------------ memory


def memory_child(count: int, folder: str) -> None:
    """Verify ``count`` TOTP codes (one per member) in this process; print peak RSS as JSON."""
    import resource

    sys.path.insert(0, str(HERE))
    from sides import OtpProSide

    def rss_kib() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    side = OtpProSide(Target("sqlite", sqlite_path=f"{folder}/memory.sqlite3"))
    keys = side.enrol([f"mem-{n}" for n in range(count)], "totp")
    warm = min(1000, count // 10)
    for i in range(warm):
        side.totp_op(i, totp_code(keys[i]))
    after_warm = rss_kib()
    started = time.perf_counter()
    for i in range(warm, count):
        side.totp_op(i, totp_code(keys[i]))
    elapsed = time.perf_counter() - started
    side.close()
    print(json.dumps({"count": count, "rss_after_warmup_kib": after_warm, "rss_end_kib": rss_kib(),
                      "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "per_verify_us": elapsed / max(1, count - warm) * 1e6}))


def run_memory(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--memory-child", str(args.memory), str(folder)],
                          check=True, capture_output=True, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  {result['count']:,} TOTP verifications in one process: peak RSS {result['peak_kib'] / 1024:.1f} MiB "
          f"(after the first 1,000: {result['rss_after_warmup_kib'] / 1024:.1f} MiB, at the end "
          f"{result['rss_end_kib'] / 1024:.1f} MiB); {result['per_verify_us']:.0f} us per verification", flush=True)
    return result


# ------------------------------------------------------------------ report


def targets(rows: list[Row], conc: list[dict[str, Any]] | None, cold: dict[str, Any] | None,
            delivery: list[Row] | None = None, web: list[Row] | None = None) -> list[Target_]:
    out = [Target_(*check) for check in delivery_checks(delivery or [])]
    out += [Target_(*check) for check in web_checks(web or [])]

    def find(scenario: str, database: str) -> Row | None:
        return next((r for r in rows if r.scenario.startswith(scenario) and r.database.startswith(database)), None)

    email_pg = find("email", "PostgreSQL")
    if email_pg:
        own, peer, raw = (email_pg.sides[n].median for n in ("otp-pro", "django-otp", "raw floor"))
        out.append(Target_("email on PostgreSQL: >= 2x django-otp", peer / own >= 2, f"{peer / own:.2f}x"))
        detail = f"{own / raw:.2f}x the floor"
        if SENT in email_pg.sides:
            detail += f" ({own / email_pg.sides[SENT].median:.2f}x the floor + sent record)"
        out.append(Target_("email on PostgreSQL: within 1.5x of the raw floor", own / raw <= 1.5, detail))
    totp_pg = find("TOTP", "PostgreSQL")
    if totp_pg:
        own, peer = totp_pg.sides["otp-pro"].median, totp_pg.sides["django-otp"].median
        out.append(Target_("TOTP on PostgreSQL: >= 2x django-otp", peer / own >= 2, f"{peer / own:.2f}x"))
    # Issue 27's targets against the floor: otp-pro's own defaults (WAL, synchronous=NORMAL) are the floor's.
    for database, email_limit, totp_limit in (("SQLite, each", 3.0, 2.5), ("PostgreSQL", 1.1, 1.15)):
        email_row, totp_row = find("email", database), find("TOTP", database)
        if email_row and SENT in email_row.sides:
            ratio = email_row.sides["otp-pro"].median / email_row.sides[SENT].median
            out.append(Target_(f"email on {email_row.database}: within {email_limit}x of the floor + sent record",
                               ratio <= email_limit, f"{ratio:.2f}x"))
        if totp_row:
            ratio = totp_row.sides["otp-pro"].median / totp_row.sides["raw floor"].median
            out.append(Target_(f"TOTP on {totp_row.database}: within {totp_limit}x of the floor",
                               ratio <= totp_limit, f"{ratio:.2f}x"))
    for scenario in ("email", "TOTP"):
        row = find(scenario, "SQLite, each")
        if row:
            own, peer = row.sides["otp-pro"].median, row.sides["django-otp"].median
            out.append(Target_(f"{scenario} on SQLite, defaults: >= 5x django-otp", peer / own >= 5,
                               f"{peer / own:.2f}x"))
    if conc:
        by = {c["workers"]: c for c in conc}
        if 1 in by and 4 in by:
            out.append(Target_("concurrency: throughput grows from 1 to 4 workers",
                               by[4]["throughput"] > by[1]["throughput"],
                               f"{by[1]['throughput']:.0f} -> {by[4]['throughput']:.0f} /s"))
        doubles = sum(c["doubles"] for c in conc)
        out.append(Target_("concurrency: no double acceptance", doubles == 0 and all(c["missing"] == 0 for c in conc),
                           f"{doubles} double(s) over {sum(c['race'] for c in conc)} raced codes"))
    if cold:
        cli = statistics.median(cold["otp-pro providers list"])
        out.append(Target_("CLI cold start < 250 ms", cli < 0.25, f"{cli * 1e3:.0f} ms"))
        floor = statistics.median(cold[PASS])
        bare = statistics.median(cold['python -c "import otp_pro"'])
        out.append(Target_('python -c "import otp_pro" within 3x of python -c "pass"', bare <= 3 * floor,
                           f"{bare / floor:.2f}x ({bare * 1e3:.0f} ms / {floor * 1e3:.0f} ms)"))
        heavy = [m for m in cold["_heavy"] if m in ("twilio", "premailer")]
        out.append(Target_("discovery imports neither twilio nor premailer", not heavy,
                           "imported: " + (", ".join(heavy) or "neither")))
    return out


def table(rows: list[Row]) -> list[str]:
    lines = [
        "| scenario | database | otp-pro us/op (min-max) | django-otp us/op (min-max) | raw floor us/op (min-max) "
        "| raw floor + sent record us/op (min-max) | otp-pro ops/s | django-otp / otp-pro | otp-pro / raw "
        "| otp-pro / (raw + sent) | statements per op (otp-pro / django-otp / raw / raw + sent) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        own, peer, raw = (r.sides[n] for n in ("otp-pro", "django-otp", "raw floor"))
        sent = r.sides.get(SENT)
        stmts = " / ".join(f"{f.statements:.1f}" if f.statements is not None else "?" for f in (own, peer, raw))
        stmts += f" / {sent.statements:.1f}" if sent is not None and sent.statements is not None else " / -"
        sent_cells = (f"{sent.median * 1e6:,.0f} ({sent.spread()})", f"{own.median / sent.median:.2f}x") \
            if sent is not None else ("- (the floor does it all)", "-")
        lines.append(
            f"| {r.scenario} | {r.database} | {own.median * 1e6:,.0f} ({own.spread()}) | "
            f"{peer.median * 1e6:,.0f} ({peer.spread()}) | {raw.median * 1e6:,.0f} ({raw.spread()}) | "
            f"{sent_cells[0]} | {1 / own.median:,.0f} | {peer.median / own.median:.2f}x | "
            f"{own.median / raw.median:.2f}x | {sent_cells[1]} | {stmts} |")
    return lines


LOAD_START, LOAD_END = "<!-- load-test:start -->", "<!-- load-test:end -->"


def report(args: argparse.Namespace, info: dict[str, str], rows: list[Row], conc: list[dict[str, Any]] | None,
           cold: dict[str, Any] | None, memory: dict[str, Any] | None, checks: list[Target_],
           delivery: list[Row] | None = None, web: list[Row] | None = None,
           budget: list[Row] | None = None) -> str:
    out = [
        "# Benchmarks",
        "",
        "<!-- Generated by bench/compare.py (python -m nox -s bench). Do not edit by hand: rerun it. -->",
        "",
        "otp-pro against [django-otp](https://github.com/django-otp/django-otp) and against the raw floor (the",
        "fewest SQL statements that insert a hashed challenge, consume it with a conditional update and insert an",
        "audit row, sent with the DB-API driver directly); for email also against that floor plus otp-pro's record",
        "of the delivery (\"raw floor + sent record\": the same durable work as otp-pro). Measured in one run with",
        "the sides taking turns batch by batch. Rerun with `python -m nox -s bench` (about 10 minutes;",
        "`-- --quick` for a smaller run of about 2 minutes).",
        "",
        "## Machine",
        "",
        *[f"- {key}: {value}" for key, value in info.items()],
        f"- run: {'quick' if args.quick else 'full'}; {args.members:,} members per batch, {args.repeats} batches per "
        f"side, {args.warmup} warm-up operations per side (also used to count statements)",
        "",
        "## Results",
        "",
    ]
    if rows:
        out += [
            "Time per operation: the median over the batches of each batch's mean, with the fastest and slowest",
            "batch in brackets. \"django-otp / otp-pro\" above 1 means otp-pro is faster.",
            "",
            *table(rows),
            "",
        ]
    if budget:
        out += [
            "### Where a TOTP verification's time goes (SQLite)",
            "",
            "verify() beside its parts, each measured alone on the same instance (`bench/budget.py`), the sides",
            "taking turns batch by batch: the database work (the write transaction with the state read, the time",
            "step moved and the audit row, through otp-pro's `Database`) and, of it, the same SQL sent by the",
            "`sqlite3` module alone; the seed opened from its seal, the code checked, the event passed to the",
            "listeners. \"The rest\" is verify() less the database work and the other three.",
            "",
            *budget_table(budget),
            "",
        ]
    if conc:
        out += [
            "### Concurrency (otp-pro on PostgreSQL)",
            "",
            f"Each worker is its own process with its own `OtpPro`; it verifies {args.per_worker:,} codes of members",
            "no other worker touches (codes issued beforehand through `send_challenge`). Then every worker tries",
            f"the same {args.race} codes (a race per code): each must be accepted exactly once.",
            "",
            "| workers | verifications | verifications/s | p50 ms | p99 ms | raced codes | double acceptances "
            "| never accepted |",
            "|---|---|---|---|---|---|---|---|",
            *[f"| {c['workers']} | {c['verifications']:,} | {c['throughput']:,.0f} | {c['p50'] * 1e3:.2f} | "
              f"{c['p99'] * 1e3:.2f} | {c['race']} | {c['doubles']} | {c['missing']} |" for c in conc],
            "",
        ]
    if delivery:
        out += [
            "### Delivery through a real SMTP server",
            "",
            "One aiosmtpd server in its own process (`bench/smtp_sink.py`) takes every message: plainly, and with",
            "STARTTLS + AUTH on a self-signed certificate both clients trust. The sides of each row take turns",
            f"batch by batch ({max(20, args.members // 5):,} operations per batch, {args.repeats * 2} batches per "
            "side) in this one run; the machine is shared, so read the ratios, not the absolute times.",
            "",
            *delivery_table(delivery),
            "",
        ]
    if web:
        out += [
            "### The web verify request",
            "",
            "A TOTP code POSTed to `/otp/verify` through the Flask adapter (Flask's test client: the whole WSGI",
            "app, the signed cookie session, the CSRF check, the gate, the view, the session rotation, the 303)",
            "against `OtpPro.verify` alone, on one instance, the sides taking turns batch by batch; the session",
            "signed in with the password only is put in place before the clock starts.",
            "",
            *web_table(web),
            "",
        ]
    if cold:
        out += [
            "### Cold start",
            "",
            "Wall time of a fresh process, every companion installed (median over the runs, alternating).",
            "",
            "| command | median ms | / `python -c pass` | min ms | max ms | runs |",
            "|---|---|---|---|---|---|",
            *[f"| `{name}` | {statistics.median(v) * 1e3:.0f} | {statistics.median(v) / statistics.median(cold[PASS]):.2f}x "
              f"| {min(v) * 1e3:.0f} | {max(v) * 1e3:.0f} | {len(v)} |"
              for name, v in cold.items() if not name.startswith("_")],
            "",
            "Heavy modules (of twilio, premailer, phonenumbers, jinja2, alembic) in `sys.modules` after plugin "
            "discovery with every companion installed: " + (", ".join(f"`{m}`" for m in cold["_heavy"]) or "none")
            + "; after `OtpPro(...)`, whose start-up hooks compile the HTML email templates: "
            + (", ".join(f"`{m}`" for m in cold["_heavy_startup"]) or "none") + ".",
            "",
        ]
    if memory:
        out += [
            "### Memory",
            "",
            f"One process verifying {memory['count']:,} TOTP codes (one per member, SQLite): peak RSS "
            f"{memory['peak_kib'] / 1024:.1f} MiB; {memory['rss_after_warmup_kib'] / 1024:.1f} MiB after the first "
            f"1,000 verifications, {memory['rss_end_kib'] / 1024:.1f} MiB at the end "
            f"({memory['per_verify_us']:.0f} us per verification).",
            "",
        ]
    if checks:
        out += ["### Targets", "", "| target | met | figure |", "|---|---|---|",
                *[f"| {t.name} | {'yes' if t.passed else '**no**'} | {t.detail} |" for t in checks], ""]
    out += [(HERE / "benchmarks_method.md").read_text().rstrip(), ""]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run (about 2 minutes)")
    parser.add_argument("--members", type=int, help="operations per batch (default 1000, quick 200)")
    parser.add_argument("--repeats", type=int, help="batches per side (default 5, quick 3)")
    parser.add_argument("--pg", default=os.environ.get("OTP_PRO_BENCH_PG", DEFAULT_PG),
                        help=f"PostgreSQL server to make a scratch database on (default {DEFAULT_PG}); '' skips it")
    parser.add_argument("--only", default=",".join(ALL_PARTS), help=f"comma-separated parts ({', '.join(ALL_PARTS)})")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(int(args.memory_child[0]), args.memory_child[1])
        return 0
    args.members = args.members or (200 if args.quick else 1000)
    args.repeats = args.repeats or (3 if args.quick else 5)
    args.warmup = 20 if args.quick else 50
    args.per_worker = 100 if args.quick else 400
    args.race = 50 if args.quick else 200
    args.cold_runs = 7 if args.quick else 15
    args.memory = 10_000 if args.quick else 100_000
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    unknown = parts - set(ALL_PARTS)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    info = machine(args.pg or None)
    print("otp-pro benchmarks: " + "; ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    rows: list[Row] = []
    delivery: list[Row] = []
    web: list[Row] = []
    budget: list[Row] = []
    conc = cold = memory = None
    with tempfile.TemporaryDirectory(prefix="otp-pro-bench-", dir=str(ROOT / "bench")) as tmp:
        folder = Path(tmp)
        scratch = ScratchDatabase(args.pg) if args.pg and parts & {"email", "totp", "concurrency", "delivery", "web"} \
            else None
        try:
            if parts & {"email", "totp"}:
                print("side by side:", flush=True)
                rows = run_side_by_side(args, folder, scratch, parts)
            if "budget" in parts:
                print("where a TOTP verification's time goes (SQLite):", flush=True)
                budget = run_budget(args, folder, measure, Row)
            if "concurrency" in parts and scratch is not None:
                print("concurrency (otp-pro, PostgreSQL):", flush=True)
                conc = run_concurrency(args, scratch)
            if "delivery" in parts:
                print("delivery through a real SMTP server:", flush=True)
                ensure_django(folder, scratch)
                delivery = run_delivery(args, folder, scratch, measure, Row)
            if "web" in parts:
                print("the web verify request:", flush=True)
                web = run_web(args, folder, scratch, measure, Row)
        finally:
            if scratch is not None:
                from django.conf import settings as django_settings

                if django_settings.configured:
                    from django.db import connections

                    connections.close_all()
                scratch.drop()
        if "cold" in parts:
            print("cold start:", flush=True)
            cold = run_cold(args, folder)
        if "memory" in parts:
            print("memory:", flush=True)
            memory = run_memory(args, folder)
    checks = targets(rows, conc, cold, delivery, web)
    if rows:
        print()
        print("\n".join(table(rows)))
    if delivery:
        print()
        print("\n".join(delivery_table(delivery)))
    if web:
        print()
        print("\n".join(web_table(web)))
    if budget:
        print()
        print("\n".join(budget_table(budget)))
    print()
    for t in checks:
        print(f"  [{'ok' if t.passed else 'MISSED'}] {t.name}: {t.detail}")
    if not args.no_write:
        text = report(args, info, rows, conc, cold, memory, checks, delivery, web, budget)
        previous = Path(args.output).read_text(encoding="utf-8") if Path(args.output).exists() else ""
        if LOAD_START in previous and LOAD_END in previous:  # bench/load.py's section is its own to rewrite
            text = text.rstrip("\n") + "\n\n" + LOAD_START + previous.split(LOAD_START, 1)[1].split(LOAD_END, 1)[0] \
                + LOAD_END + "\n"
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"\nwritten to {args.output}")
    return 0 if all(t.passed for t in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
