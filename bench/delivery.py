"""The delivery benchmarks: codes sent through a real SMTP server running in its own process.

Two scenarios, each with the sides taking turns batch by batch (``compare.measure``):

- **email challenge + verify through SMTP**: otp-pro (``email`` transport, its pool at
  the defaults, every companion installed: the HTML email companion renders the
  message) against django-otp (``EmailDevice`` with Django's SMTP backend, which
  opens a connection per message), on the same server, plainly and with STARTTLS +
  AUTH on a self-signed certificate that both trust (``SSL_CERT_FILE``);
- **one send**: otp-pro's ``EmailTransport.send`` of a code message on a pooled
  connection (text only, and text + HTML as the HTML email companion renders it) and
  on a new connection per message (``smtp_pool_size = 0``) against a bare ``smtplib``
  send of a small message (connect, ``EHLO``, STARTTLS and login when the server
  wants them, ``sendmail``, ``QUIT``).

Imported by ``bench/compare.py`` (part ``delivery``); the server is ``bench/smtp_sink.py``.
"""

from __future__ import annotations

import json
import os
import smtplib
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sides import SECRET_KEY, DjangoOtpSide, OtpProSide, Target

HERE = Path(__file__).resolve().parent
PLAIN, TLS = "plain", "STARTTLS + AUTH"
SLUG = {PLAIN: "plain", TLS: "tls"}  # lower case: the bench's member ids are also their addresses
POOLED, POOLED_HTML, NEW, BARE = ("otp-pro, pooled connection", "otp-pro, pooled, text + HTML",
                                  "otp-pro, new connection", "bare smtplib")
SMALL = (b"From: bench@example.com\r\nTo: member@example.com\r\nSubject: Your code\r\n\r\n"
         b"Your verification code is 123456.\r\n")


class SmtpSink:
    """``bench/smtp_sink.py`` in its own process: a plain server and a STARTTLS + AUTH one."""

    def __init__(self, folder: Path) -> None:
        self.process = subprocess.Popen([sys.executable, str(HERE / "smtp_sink.py"), str(folder)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True)
        assert self.process.stdout is not None
        self.info: dict[str, Any] = json.loads(self.process.stdout.readline())
        # Both libraries verify the server's certificate; this self-signed one is trusted by pointing
        # OpenSSL's default CA file at it (read when a client makes its TLS context).
        os.environ["SSL_CERT_FILE"] = self.info["cert"]

    def port(self, mode: str) -> int:
        return int(self.info["plain" if mode == PLAIN else "tls"])

    def otp_pro(self, mode: str, **extra: Any) -> dict[str, Any]:
        """``providers.email`` for ``mode``."""
        settings: dict[str, Any] = {"smtp_host": "127.0.0.1", "smtp_port": self.port(mode),
                                    "from_address": "bench@example.com", **extra}
        if mode == TLS:
            settings.update(smtp_starttls=True, smtp_username=self.info["user"], smtp_password=self.info["password"])
        return settings

    def django(self, mode: str) -> None:
        """Point Django's email at ``mode``'s server (its SMTP backend, a connection per message)."""
        from django.conf import settings

        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", self.port(mode)
        settings.EMAIL_USE_TLS = mode == TLS
        settings.EMAIL_HOST_USER = self.info["user"] if mode == TLS else ""
        settings.EMAIL_HOST_PASSWORD = self.info["password"] if mode == TLS else ""
        settings.EMAIL_TIMEOUT = 10

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


# ----------------------------------------------------------------- one send


class SendSide:
    """otp-pro's ``email`` transport sending one prepared code message per operation."""

    statements = 0

    def __init__(self, name: str, sink: SmtpSink, mode: str, folder: Path, *, pooled: bool, html: bool) -> None:
        from otp_pro import Member, OtpPro

        self.name = name
        self.prefix = "".join(word[0] for word in name.replace(",", " ").replace("+", " ").split())
        email = sink.otp_pro(mode, **({} if pooled else {"smtp_pool_size": 0}))
        self.otp = OtpPro({"secret_key": SECRET_KEY, "database_url": f"sqlite:///{folder}/{self.prefix}-{SLUG[mode]}.db",
                           "site_name": "Bench", "providers": {"email": email}}, entry_points=html)
        self.transport = self.otp.transports["email"]
        now = self.otp.clock()
        # The message a challenge sends, rendered once: the send is what is measured, not the templates.
        self.message = self.otp.render_message(
            self.transport, Member("m", email="member@example.com", name="Member"), "email:code", "challenge",
            {"payload": "123456", "recipient": "member@example.com", "purpose": "verify", "issued_at": now,
             "expires_at": now})
        assert (self.message.html is not None) is html

    def enrol(self, ids: list[str], channel: str) -> list[bytes]:
        return []

    def email_op(self, i: int) -> None:
        self.transport.send(self.message)

    def close(self) -> None:
        self.otp.close()


class BareSide:
    """``smtplib`` alone, a connection per message: the floor of a send on a new connection."""

    name = BARE
    prefix = "bare"
    statements = 0

    def __init__(self, sink: SmtpSink, mode: str) -> None:
        self.port = sink.port(mode)
        self.tls = mode == TLS
        self.login = (sink.info["user"], sink.info["password"])
        self.context = ssl.create_default_context()  # made once: kinder to the floor than a context per send

    def enrol(self, ids: list[str], channel: str) -> list[bytes]:
        return []

    def email_op(self, i: int) -> None:
        client = smtplib.SMTP("127.0.0.1", self.port, timeout=10)
        if self.tls:
            client.starttls(context=self.context)
            client.login(*self.login)
        client.sendmail("bench@example.com", ["member@example.com"], SMALL)
        client.quit()

    def close(self) -> None:
        pass


# --------------------------------------------------------------------- runs


def run_delivery(args: Any, folder: Path, scratch: Any, measure: Callable[..., dict[str, Any]],
                 row: Callable[..., Any]) -> list[Any]:
    """Both scenarios on both servers; ``measure`` and ``row`` are compare.py's (batches alternate)."""
    import time

    members = max(20, args.members // 5)  # an SMTP operation costs milliseconds: smaller batches, more of them
    repeats = args.repeats * 2
    rows = []
    sink = SmtpSink(folder)
    try:
        databases = [("wal", "SQLite, WAL for all")]
        if scratch is not None:
            databases.append(("pg", "PostgreSQL"))
        for mode in (PLAIN, TLS):
            for alias, label in databases:
                target = (Target("postgresql", pg_dsn=scratch.dsn) if alias == "pg"
                          else Target("sqlite", sqlite_path=str(folder / f"otp-pro-smtp-{SLUG[mode]}.sqlite3")))
                sink.django(mode)
                sides = [OtpProSide(target, email=sink.otp_pro(mode)), DjangoOtpSide(alias, smtp=True)]
                started = time.perf_counter()
                try:
                    figures = measure(sides, f"smtp-{SLUG[mode]}-{alias}", members, repeats, args.warmup)
                finally:
                    for side in sides:
                        side.close()
                rows.append(row(f"email challenge + verify through SMTP, {mode}", label, figures))
                print(f"  email through SMTP ({mode}) {label:<24} done in {time.perf_counter() - started:5.1f} s",
                      flush=True)
        for mode in (PLAIN, TLS):
            sends = [SendSide(POOLED, sink, mode, folder, pooled=True, html=False),
                     SendSide(POOLED_HTML, sink, mode, folder, pooled=True, html=True),
                     SendSide(NEW, sink, mode, folder, pooled=False, html=False), BareSide(sink, mode)]
            started = time.perf_counter()
            try:
                figures = measure(sends, f"send-{SLUG[mode]}", members, repeats, args.warmup)
            finally:
                for side in sends:
                    side.close()
            rows.append(row(f"one send, {mode}", "-", figures))
            print(f"  one send ({mode}) done in {time.perf_counter() - started:5.1f} s", flush=True)
    finally:
        sink.close()
    return rows


def delivery_checks(rows: list[Any]) -> list[tuple[str, bool, str]]:
    """The issue's delivery targets: ``(name, met, figure)``."""
    out = []
    for r in rows:
        if r.scenario.startswith("email challenge + verify through SMTP"):
            own, peer = r.sides["otp-pro"].median, r.sides["django-otp"].median
            mode = r.scenario.rsplit(", ", 1)[1]
            out.append((f"email through SMTP ({mode}, {r.database}): >= 1.5x django-otp", peer / own >= 1.5,
                        f"{peer / own:.2f}x"))
        elif r.scenario.startswith("one send"):
            mode = r.scenario.rsplit(", ", 1)[1]
            bare = r.sides[BARE].median
            pooled, new = r.sides[POOLED].median, r.sides[NEW].median
            out.append((f"one send over a pooled connection ({mode}): >= 2x faster than bare smtplib",
                        bare / pooled >= 2, f"{bare / pooled:.2f}x faster"))
            out.append((f"one send on a new connection ({mode}): within 1.2x of bare smtplib", new / bare <= 1.2,
                        f"{new / bare:.2f}x the bare send"))
    return out


def delivery_table(rows: list[Any]) -> list[str]:
    """One line per side: median and spread, and the ratio to the reference side of the row."""
    lines = ["| scenario | database | side | us/op (min-max) | ratio |", "|---|---|---|---|---|"]
    for r in rows:
        reference = "django-otp" if "django-otp" in r.sides else BARE
        ref = r.sides[reference].median
        for name, figures in r.sides.items():
            ratio = "reference" if name == reference else (
                f"{ref / figures.median:.2f}x faster" if figures.median <= ref else f"{figures.median / ref:.2f}x slower")
            lines.append(f"| {r.scenario} | {r.database} | {name} | {figures.median * 1e6:,.0f} ({figures.spread()}) "
                         f"| {ratio} |")
    return lines
