"""Load test: many application instances sharing PostgreSQL, delivery through a task queue.

Starts, on loopback only:
- a real SMTP server (aiosmtpd) in this process, which reads each code as it arrives;
- the demo site under gunicorn (``--workers`` processes, ``--threads`` threads each) on a fresh
  PostgreSQL database, with the core ``email`` transport pointed at that SMTP server;
- with ``--dispatcher celery`` (the default), a Celery worker on Redis that does the sending;
then drives it with ``--concurrency`` threads, each signing members in over HTTP exactly as the
AJAX login pattern does (password, then the emailed code, then a protected page, then sign-out).
Every ``--race-every``-th sign-in is done by two browsers of the same member at once, who both
submit the same code at the same moment: exactly one may be accepted.

Afterwards it checks, from the database and the SMTP server: no delivery lost (every sign-in got
its code; no challenge left queued), none duplicated (one message per challenge sent), no code
accepted twice, and the audit counts equal what the driver did. It prints the figures and exits
non-zero when any check fails. Bounded: ``--members`` sign-ins at most, ``--duration`` seconds at most.

    python bench/load.py                      # full size: 1,000 members, 64 concurrent
    python bench/load.py --members 120 --concurrency 16      # CI size (nox -s load)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
PASSWORD = "load-test-password"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CODE = re.compile(r"\b(\d{6})\b")
CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')


# ----------------------------------------------------------------- the SMTP side


class Sink:
    """The loopback SMTP server's handler: every message's recipient, code and arrival time."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay  # seconds before each reply: a slow provider (--smtp-delay)
        self.cond = threading.Condition()
        self.by_recipient: dict[str, list[tuple[str, float, str]]] = defaultdict(list)
        self.total = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        message = message_from_bytes(envelope.content, policy=email_policy.default)
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        found = CODE.search(text)
        with self.cond:
            for rcpt in envelope.rcpt_tos:
                self.by_recipient[rcpt.lower()].append(
                    (found.group(1) if found else "", time.monotonic(), str(message.get("Message-ID", ""))))
            self.total += 1
            self.cond.notify_all()
        return "250 OK"

    def count(self, recipient: str) -> int:
        with self.cond:
            return len(self.by_recipient[recipient])

    def wait_code(self, recipient: str, seen: int, timeout: float) -> tuple[str, float] | None:
        """The first code to ``recipient`` after its first ``seen`` messages, waiting up to ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.by_recipient[recipient]) <= seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            code, at, _ = self.by_recipient[recipient][seen]
            return code, at

    def snapshot(self) -> dict[str, int]:
        with self.cond:
            return {rcpt: len(items) for rcpt, items in self.by_recipient.items()}


@contextmanager
def smtp_sink(delay: float = 0.0) -> Iterator[tuple[int, Sink]]:
    from aiosmtpd.controller import Controller

    from otp_pro.testing import free_port

    sink = Sink(delay)
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, sink
    finally:
        controller.stop()


# ----------------------------------------------------------------- preparation


def prepare(config: dict[str, Any], members: int, sink: Sink) -> list[str]:
    """Migrate the database, make the site's keys and ``members`` members enrolled on ``email:code``.

    Runs in this process with the inline dispatcher, its clock 10 minutes back so the
    enrolment codes do not start a resend cooldown for the sign-ins that follow.
    """
    sys.path.insert(0, str(HERE))
    from sqlalchemy import create_engine

    import load_app
    from otp_pro.storage import migrate

    engine = create_engine(config["overrides"]["database_url"])
    migrate.upgrade(engine)  # once, before any instance starts: `otp-pro db upgrade` in a deployment
    engine.dispose()
    prep = json.loads(json.dumps(config))
    prep["overrides"].pop("dispatcher", None)
    site = load_app.build_site(prep)
    try:
        emails = [f"load{i:05d}@load.test" for i in range(members)]
        accounts = site.store.add_members(((e, f"Load {i}") for i, e in enumerate(emails)), PASSWORD, ("member",))
        clock = site.clock
        clock.offset = timedelta(minutes=10)
        def enrol(member: Any) -> None:
            assert member.email is not None
            seen = sink.count(member.email)
            site.otp.begin_setup(member, "email:code")
            got = sink.wait_code(member.email, seen, 10)
            if got is None:
                raise SystemExit(f"preparation: no enrolment code reached {member.email}")
            site.otp.complete_setup(member, got[0])

        try:
            # Threads: the backup codes' scrypt releases the GIL, and enrolment is mostly that.
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(enrol, accounts))
        finally:
            clock.offset = timedelta(0)
    finally:
        site.close()
    return emails


# ----------------------------------------------------------------- processes


@contextmanager
def service(name: str, argv: list[str], env: dict[str, str], logs: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = (logs / f"{name}.log").open("wb")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(HERE),
                            start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def wait_celery(proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the Celery worker exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if b" ready." in log.read_bytes():
            return
        time.sleep(0.2)
    raise SystemExit(f"the Celery worker was not ready within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


# ----------------------------------------------------------------- the driver


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    sign_in: list[float] = field(default_factory=list)
    delivery: list[float] = field(default_factory=list)
    requests: int = 0
    accepted: int = 0
    refused: int = 0
    races: int = 0
    race_winners: Counter[int] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def record(self, label: str, seconds: float) -> None:
        with self.lock:
            self.latencies[label].append(seconds)
            self.requests += 1


class Browser:
    """One member's browser: a cookie jar and the page's CSRF token."""

    def __init__(self, base: str, tally: Tally) -> None:
        self.base = base
        self.tally = tally
        self.http = requests.Session()
        self.csrf = ""

    def call(self, label: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"X-CSRF-Token": self.csrf} if self.csrf else {}
        started = time.perf_counter()
        response = self.http.request(method, self.base + path, headers=headers, timeout=60, allow_redirects=False,
                                     **kwargs)
        self.tally.record(label, time.perf_counter() - started)
        if response.status_code >= 500:
            raise RuntimeError(f"{method} {path} answered {response.status_code}")
        return response

    def open_login(self) -> None:
        page = self.call("GET /login/ajax", "GET", "/login/ajax")
        found = CSRF_META.search(page.text)
        if not found:
            raise RuntimeError("no CSRF token on /login/ajax")
        self.csrf = found.group(1)

    def password(self, email: str) -> dict[str, Any]:
        reply = self.call("POST /login/ajax/api", "POST", "/login/ajax/api", json={"email": email,
                                                                                  "password": PASSWORD})
        data: dict[str, Any] = reply.json()
        if reply.status_code != 200 or data.get("step") != "code":
            raise RuntimeError(f"password step: {reply.status_code} {data}")
        self.csrf = data.get("csrf_token") or self.csrf
        return data

    def verify(self, code: str) -> bool:
        reply = self.call("POST /otp/api/verify", "POST", "/otp/api/verify", json={"code": code})
        data = reply.json()
        self.csrf = data.get("csrf_token") or self.csrf
        return bool(reply.status_code == 200 and data.get("ok"))

    def finish(self) -> None:
        page = self.call("GET /protected", "GET", "/protected")
        if page.status_code != 200:
            raise RuntimeError(f"/protected answered {page.status_code} after verification")
        found = CSRF_META.search(page.text)
        self.csrf = found.group(1) if found else self.csrf
        out = self.call("POST /logout", "POST", "/logout", data={"csrf_token": self.csrf})
        if out.status_code != 303:
            raise RuntimeError(f"sign-out answered {out.status_code}")


def sign_in(base: str, email: str, sink: Sink, tally: Tally, race: bool, delivery_timeout: float) -> None:
    started = time.perf_counter()
    browsers = [Browser(base, tally) for _ in range(2 if race else 1)]
    seen = sink.count(email)
    for browser in browsers:
        browser.open_login()
    asked = time.monotonic()
    browsers[0].password(email)
    for browser in browsers[1:]:
        browser.password(email)  # inside the resend cooldown: no second code, the first one stands
    got = sink.wait_code(email, seen, delivery_timeout)
    if got is None:
        with tally.lock:
            tally.lost.append(email)
        return
    code, arrived = got
    with tally.lock:
        tally.delivery.append(arrived - asked)
    if race:
        barrier = threading.Barrier(len(browsers))
        results: list[bool] = [False] * len(browsers)

        def attempt(i: int) -> None:
            barrier.wait()
            results[i] = browsers[i].verify(code)

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(browsers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = sum(results)
        with tally.lock:
            tally.races += 1
            tally.race_winners[winners] += 1
            tally.accepted += winners
            tally.refused += len(results) - winners
        if winners:
            browsers[results.index(True)].finish()
    else:
        ok = browsers[0].verify(code)
        with tally.lock:
            tally.accepted += ok
            tally.refused += not ok
        if not ok:
            raise RuntimeError(f"the delivered code for {email} was refused")
        browsers[0].finish()
    with tally.lock:
        tally.sign_in.append(time.perf_counter() - started)


def drive(base: str, emails: list[str], sink: Sink, concurrency: int, duration: float, race_every: int,
          delivery_timeout: float) -> tuple[Tally, float]:
    tally = Tally()
    queue = list(enumerate(emails))
    queue_lock = threading.Lock()
    stop_at = time.monotonic() + duration

    def worker() -> None:
        while time.monotonic() < stop_at:
            with queue_lock:
                if not queue:
                    return
                index, email = queue.pop(0)
            try:
                sign_in(base, email, sink, tally, race_every > 0 and index % race_every == 0, delivery_timeout)
            except Exception as exc:  # noqa: BLE001 - every failure is counted and printed
                with tally.lock:
                    tally.errors.append(f"{email}: {type(exc).__name__}: {exc}")

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, name=f"member-{i}") for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally, time.perf_counter() - started


# ----------------------------------------------------------------- checks


def audit_counts(pg_url: str, since: datetime) -> dict[str, Any]:
    from sqlalchemy import create_engine, text

    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            kinds = dict(conn.execute(text(
                "SELECT kind, count(*) FROM otp_audit_events WHERE at >= :s GROUP BY kind"), {"s": since}).all())
            statuses = dict(conn.execute(text(
                "SELECT status, count(*) FROM otp_challenges WHERE created_at >= :s GROUP BY status"),
                {"s": since}).all())
            sent_per_member = dict(conn.execute(text(
                "SELECT member_id, count(*) FROM otp_audit_events WHERE at >= :s AND kind = 'challenge_sent' "
                "GROUP BY member_id"), {"s": since}).all())
            # Each acceptance of a code consumes its own challenge: more verify_ok rows than consumed
            # challenges would mean one code was accepted twice.
            consumed = conn.execute(text(
                "SELECT count(*) FROM otp_challenges WHERE created_at >= :s AND consumed_at IS NOT NULL"),
                {"s": since}).scalar_one()
    finally:
        engine.dispose()
    return {"kinds": kinds, "statuses": statuses, "sent_per_member": sent_per_member, "consumed": consumed}


def wait_drained(pg_url: str, since: datetime, timeout: float) -> dict[str, int]:
    """Challenge statuses once nothing is queued or being sent (or ``timeout`` passed)."""
    deadline = time.monotonic() + timeout
    while True:
        statuses: dict[str, int] = audit_counts(pg_url, since)["statuses"]
        if not (statuses.get("queued") or statuses.get("sending")) or time.monotonic() > deadline:
            return statuses
        time.sleep(0.5)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# ----------------------------------------------------------------- main


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1000, help="sign-ins (one per member)")
    parser.add_argument("--concurrency", type=int, default=64, help="members signing in at once")
    parser.add_argument("--duration", type=float, default=600, help="stop starting sign-ins after this many s")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--dispatcher", choices=("celery", "inline"), default="celery")
    parser.add_argument("--celery-concurrency", type=int, default=4, help="Celery worker processes")
    parser.add_argument("--smtp-delay", type=float, default=0.0,
                        help="s the SMTP server takes to accept each message (a slow provider)")
    parser.add_argument("--race-every", type=int, default=10, help="every Nth sign-in races two browsers (0: none)")
    parser.add_argument("--delivery-timeout", type=float, default=60, help="s to wait for a code before it is lost")
    parser.add_argument("--postgres", default=os.environ.get("OTP_PRO_TEST_POSTGRES_URL", DEFAULT_PG))
    parser.add_argument("--redis", default=os.environ.get("OTP_PRO_LOAD_REDIS_URL", "redis://127.0.0.1:6379/15"))
    parser.add_argument("--json", dest="json_out", help="also write the figures to this JSON file")
    parser.add_argument("--write-docs", action="store_true",
                        help="write the figures into docs/benchmarks.md's load-test section (full-size runs)")
    parser.add_argument("--keep-logs", help="copy the gunicorn and Celery logs to this folder")
    return parser.parse_args(argv)


def settings_for(args: argparse.Namespace, pg_url: str, smtp_port: int, base_url: str, queue: str) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "database_url": pg_url,
        # 4 gunicorn workers x 4 threads and 4 Celery children: at most 6 connections each (deployment.md).
        "database_pool_size": 4,
        "database_max_overflow": 2,
        "channels": ["email:code", "totp"],
        "roles": {"member": {"requirement": "required", "grace_days": 0}},
        # Every simulated member signs in from 127.0.0.1: the per-IP caps (docs/security.md) would
        # hold them all back as one network, as they would an office behind one NAT.
        "max_sends_per_hour_per_ip": 100_000,
        "max_failed_verifications_per_hour_per_ip": 100_000,
        "providers": {"outbox": {}, "email": {"smtp_host": "127.0.0.1", "smtp_port": smtp_port,
                                              "from_address": "otp@load.test"}},
    }
    if args.dispatcher == "celery":
        overrides["dispatcher"] = "celery"
        overrides["providers"]["celery"] = {"broker_url": args.redis, "queue": queue}
    return {"base_url": base_url, "overrides": overrides}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from otp_pro.testing import free_port, temporary_pg_database

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    queue = f"otp-pro-load-{os.getpid()}"
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="otp-pro-load-")))
        pg_url = stack.enter_context(temporary_pg_database(args.postgres, "otp_pro_load"))
        smtp_port, sink = stack.enter_context(smtp_sink())
        sink_delay = args.smtp_delay
        config = settings_for(args, pg_url, smtp_port, base, queue)
        config["store"] = str(tmp / "store.sqlite3")
        config_path = tmp / "config.json"
        config_path.write_text(json.dumps(config))
        env = {**os.environ, "OTP_PRO_LOAD_CONFIG": str(config_path), "PYTHONPATH": str(HERE)}

        t0 = time.perf_counter()
        emails = prepare(config, args.members, sink)
        prepared = time.perf_counter() - t0
        print(f"prepared {len(emails)} members enrolled on email:code in {prepared:.1f} s", flush=True)

        if args.dispatcher == "celery":
            celery = stack.enter_context(service("celery", [
                sys.executable, "-m", "celery", "-A", "load_app:celery_app", "worker", "--loglevel", "INFO",
                "--concurrency", str(args.celery_concurrency), "-Q", queue, "--without-gossip", "--without-mingle",
                "--without-heartbeat", "--hostname", f"{queue}@%h"], env, tmp))
            wait_celery(celery, tmp / "celery.log")
        gunicorn = stack.enter_context(service("gunicorn", [
            sys.executable, "-m", "gunicorn", "--workers", str(args.workers), "--threads", str(args.threads),
            "--worker-class", "gthread", "--bind", f"127.0.0.1:{port}", "--access-logfile", "-", "--log-level",
            "warning", "--timeout", "120", "load_app:create_app()"], {**env, "GUNICORN_CMD_ARGS": ""}, tmp))
        wait_http(base + "/login/ajax", gunicorn, tmp / "gunicorn.log")
        sink.delay = sink_delay  # after the enrolment: only the sign-ins meet the slow provider
        since = datetime.now(timezone.utc) - timedelta(seconds=1)
        before = sink.total
        print(f"gunicorn ({args.workers} workers x {args.threads} threads) and "
              f"{'a Celery worker' if args.dispatcher == 'celery' else 'inline delivery'} ready; driving "
              f"{len(emails)} sign-ins, {args.concurrency} at a time", flush=True)

        tally, wall = drive(base, emails, sink, args.concurrency, args.duration, args.race_every,
                            args.delivery_timeout)
        statuses = wait_drained(pg_url, since, 30)
        counts = audit_counts(pg_url, since)
        delivered = sink.total - before
        if args.keep_logs:
            Path(args.keep_logs).mkdir(parents=True, exist_ok=True)
            for name in ("gunicorn.log", "celery.log"):
                if (tmp / name).exists():
                    shutil.copy(tmp / name, Path(args.keep_logs) / name)

    kinds = counts["kinds"]
    signed_in = len(tally.sign_in)
    verified = kinds.get("verify_ok", 0)
    sent = kinds.get("challenge_sent", 0)
    problems: list[str] = []
    if tally.errors:
        problems.append(f"{len(tally.errors)} sign-ins failed, first: {tally.errors[0]}")
    if tally.lost:
        problems.append(f"{len(tally.lost)} codes never arrived (lost), first: {tally.lost[0]}")
    if statuses.get("queued") or statuses.get("sending"):
        problems.append(f"challenges left undelivered: {statuses}")
    if delivered != sent:
        problems.append(f"{delivered} messages arrived but {sent} challenge_sent events were recorded")
    over = {m: n for m, n in counts["sent_per_member"].items() if n != 1}
    if over:
        problems.append(f"{len(over)} members got other than exactly one code: {list(over.items())[:3]}")
    if verified != tally.accepted:
        problems.append(f"{tally.accepted} verifications were accepted but {verified} verify_ok events recorded")
    double = sum(n for winners, n in tally.race_winners.items() if winners > 1)
    reused = max(0, verified - counts["consumed"])
    if double or reused:
        problems.append(f"double acceptances: {double} races had two winners; {verified} verify_ok events for "
                        f"{counts['consumed']} consumed challenges")
    if tally.race_winners.get(0):
        problems.append(f"{tally.race_winners[0]} races had no winner")

    figures = {
        "dispatcher": args.dispatcher, "smtp_delay_s": args.smtp_delay, "gunicorn_workers": args.workers,
        "threads": args.threads,
        "concurrency": args.concurrency, "members": len(emails), "signed_in": signed_in, "wall_s": round(wall, 2),
        "requests": tally.requests, "requests_per_s": round(tally.requests / wall, 1) if wall else 0,
        "sign_ins_per_s": round(signed_in / wall, 2) if wall else 0,
        "sign_in_p50_ms": round(pct(tally.sign_in, 0.5) * 1000, 1),
        "sign_in_p99_ms": round(pct(tally.sign_in, 0.99) * 1000, 1),
        "delivery_p50_ms": round(pct(tally.delivery, 0.5) * 1000, 1),
        "delivery_p99_ms": round(pct(tally.delivery, 0.99) * 1000, 1),
        "endpoints": {label: {"n": len(v), "p50_ms": round(statistics.median(v) * 1000, 1),
                              "p99_ms": round(pct(v, 0.99) * 1000, 1)} for label, v in sorted(tally.latencies.items())},
        "delivered": delivered, "challenge_sent": sent, "verify_ok": verified, "accepted": tally.accepted,
        "refused": tally.refused, "races": tally.races, "race_winners": dict(tally.race_winners),
        "lost": len(tally.lost), "duplicated": sum(max(0, n - 1) for n in counts["sent_per_member"].values()),
        "double_acceptances": double + reused, "consumed_challenges": counts["consumed"],
        "challenge_statuses": statuses,
        "audit": dict(sorted(kinds.items())), "problems": problems,
    }
    print_report(figures)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(figures, indent=2))
    if args.write_docs:
        write_docs(figures, args)
    return 1 if problems else 0


START, END = "<!-- load-test:start -->", "<!-- load-test:end -->"


def write_docs(f: dict[str, Any], args: argparse.Namespace) -> None:
    """Replace the load-test section of docs/benchmarks.md (bench/compare.py keeps it when it rewrites the rest)."""
    import platform

    doc = HERE.parent / "docs" / "benchmarks.md"
    lines = [
        START,
        "## Load test: several instances and a task queue",
        "",
        "<!-- Generated by bench/load.py --write-docs. Do not edit by hand: rerun it. -->",
        "",
        f"`python bench/load.py --members {f['members']} --concurrency {f['concurrency']}"
        f" --dispatcher {f['dispatcher']} --write-docs` on {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {datetime.now(timezone.utc):%Y-%m-%d}: the demo site under gunicorn "
        f"({f['gunicorn_workers']} workers x {f['threads']} threads, gthread), "
        + ("a Celery worker (" + str(args.celery_concurrency) + " processes) on Redis, "
           if f["dispatcher"] == "celery" else "inline delivery, ")
        + "PostgreSQL, and a loopback SMTP server in the driving process, all on one machine. Each sign-in is "
        "the AJAX pattern: password, the code read from the email as it arrives, verify, a protected page, "
        f"sign-out; every {args.race_every}th has two browsers submitting the same code at the same moment.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| sign-ins completed | {f['signed_in']} of {f['members']} in {f['wall_s']} s |",
        f"| HTTP requests per second | {f['requests_per_s']} ({f['requests']} requests) |",
        f"| sign-ins per second | {f['sign_ins_per_s']} |",
        f"| sign-in, whole flow, p50 / p99 | {f['sign_in_p50_ms']} / {f['sign_in_p99_ms']} ms |",
        f"| code delivery (password step sent -> message at SMTP), p50 / p99 | {f['delivery_p50_ms']} / "
        f"{f['delivery_p99_ms']} ms |",
        *[f"| `{label}` p50 / p99 | {e['p50_ms']} / {e['p99_ms']} ms (n={e['n']}) |"
          for label, e in f["endpoints"].items()],
        f"| deliveries lost / duplicated | {f['lost']} / {f['duplicated']} |",
        f"| codes accepted / `verify_ok` events | {f['accepted']} / {f['verify_ok']} |",
        f"| double acceptances (over {f['races']} races) | {f['double_acceptances']} |",
        "",
        "The password step includes the demo's scrypt password check (about 30 ms of CPU), as a real site's login "
        "would.",
        END,
    ]
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + "\n".join(lines) + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"
    doc.write_text(text, encoding="utf-8")
    print(f"written to {doc}")


def print_report(f: dict[str, Any]) -> None:
    print()
    print(f"load test: {f['signed_in']}/{f['members']} sign-ins in {f['wall_s']} s, dispatcher {f['dispatcher']}, "
          f"SMTP delay {f['smtp_delay_s']} s, "
          f"gunicorn {f['gunicorn_workers']} workers x {f['threads']} threads, {f['concurrency']} concurrent members")
    print(f"  HTTP requests   {f['requests']:>7}   {f['requests_per_s']:>8} req/s")
    print(f"  sign-ins        {f['signed_in']:>7}   {f['sign_ins_per_s']:>8} /s   "
          f"p50 {f['sign_in_p50_ms']} ms   p99 {f['sign_in_p99_ms']} ms (password, code by email, verify, page)")
    print(f"  code delivery   p50 {f['delivery_p50_ms']} ms   p99 {f['delivery_p99_ms']} ms (password step sent "
          f"-> message at the SMTP server)")
    print(f"  {'endpoint':<22} {'n':>6} {'p50 ms':>8} {'p99 ms':>8}")
    for label, e in f["endpoints"].items():
        print(f"  {label:<22} {e['n']:>6} {e['p50_ms']:>8} {e['p99_ms']:>8}")
    print(f"  delivered {f['delivered']}, challenge_sent {f['challenge_sent']}, lost {f['lost']}, "
          f"duplicated {f['duplicated']}")
    print(f"  accepted {f['accepted']} (verify_ok {f['verify_ok']}), refused {f['refused']}, races {f['races']} "
          f"(winners: {f['race_winners']}), double acceptances {f['double_acceptances']}")
    print(f"  challenges by status: {f['challenge_statuses']}")
    if f["problems"]:
        print("PROBLEMS:")
        for problem in f["problems"]:
            print(f"  - {problem}")
    else:
        print("  checks: no delivery lost or duplicated, no code accepted twice, audit counts match")


if __name__ == "__main__":
    sys.exit(main())
