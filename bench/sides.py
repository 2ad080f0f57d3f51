"""The sides of the comparison (otp-pro, django-otp, the raw floor, the floor + sent record), one class each.

Each side offers ``enrol(ids)`` (not timed: members with an email device or an
authenticator seed) and ``op(i)`` (timed: one email challenge + verify, or one
TOTP verify for member ``ids[i]``). What each side does per operation is what
docs/benchmarks.md describes; keep the two in step.

Imported by ``bench/compare.py``; django-otp's side needs
:func:`configure_django` first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

SECRET_KEY = "bench-secret-key-" + "k" * 40
CODE = re.compile(r"\b(\d{6})\b")
TOTP_PERIOD = 30


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def totp_code(raw_key: bytes, when: float | None = None) -> str:
    """RFC 6238 code (SHA1, 6 digits, 30 s) for ``raw_key``: how the bench plays the member's phone."""
    counter = int(when if when is not None else time.time()) // TOTP_PERIOD
    digest = hmac.new(raw_key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = (struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{value:06d}"


@dataclass(frozen=True)
class Target:
    """Where a scenario runs: ``kind`` sqlite or postgresql; ``wal`` for the WAL-mode SQLite rows."""

    kind: str
    sqlite_path: str = ""
    pg_dsn: str = ""  # libpq form, for psycopg
    wal: bool = False

    def sqlalchemy_url(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.sqlite_path}"
        return "postgresql+psycopg://" + self.pg_dsn.split("://", 1)[1]


# ----------------------------------------------------------------- otp-pro


class OtpProSide:
    """otp-pro's public API: ``send_challenge`` + ``verify`` (email), ``verify`` (TOTP).

    Each ``verify`` is one write transaction: the conditional UPDATE that
    consumes the code (or moves the TOTP step), the failure counters reset and
    the ``verify_ok`` audit row. ``send_challenge`` also runs the send
    throttling (cooldown, hourly caps per member and recipient), writes the
    challenge as a keyed hash and a ``challenge_sent`` audit row, and voids the
    member's earlier unused challenges.
    """

    name = "otp-pro"

    def __init__(self, target: Target, email: dict[str, Any] | None = None) -> None:
        """``email``: ``providers.email`` settings; the members then get their codes through that SMTP server."""
        from otp_pro import Member, OtpPro

        self.Member = Member
        self.channel = "email:code" if email else "outbox:code"
        settings: dict[str, Any] = {
            "secret_key": SECRET_KEY,
            "database_url": target.sqlalchemy_url(),
            "site_name": "Bench",
            "channels": [self.channel, "totp"],
            "default_channel": self.channel,
        }
        if email:
            settings["providers"] = {"email": email}
        self.otp = OtpPro(settings, migrate_database=True)
        self.outbox = self.otp.transports["outbox"]
        self.sent: list[str] = []  # the codes the email transport sent (the member reads them from the message)
        if email:
            transport = self.otp.transports["email"]
            send = transport.send

            def keep_code(message: Any) -> Any:
                self.sent.append(message.sensitive[0])
                return send(message)

            transport.send = keep_code  # type: ignore[method-assign]
        self.ids: list[str] = []
        self.members: list[Any] = []
        self.statements = 0

    @contextmanager
    def count_statements(self) -> Iterator[None]:
        """Count the statements sent while the block runs (SQLAlchemy's ``before_cursor_execute``, which
        otp-pro's hot statements fire too); removed afterwards, as django-otp's counter is."""
        from sqlalchemy import event

        def count(*_args: Any) -> None:
            self.statements += 1

        event.listen(self.otp.db.engine, "before_cursor_execute", count)
        try:
            yield
        finally:
            event.remove(self.otp.db.engine, "before_cursor_execute", count)

    def enrol(self, ids: list[str], channel: str) -> list[bytes]:
        """Enrolled members, written straight into otp_members and otp_factors (the setup flow is not what is
        measured): one factor each, the default, bound to the member's address (a delivered one)."""
        from otp_pro.storage.schema import factors, members

        now = utcnow()
        raw_keys = [secrets.token_bytes(20) for _ in ids]
        rows, owned = [], []
        if channel != "totp":
            channel = self.channel
        for member_id, raw in zip(ids, raw_keys):
            seed = base64.b32encode(raw).decode()
            address = f"{member_id}@example.com"
            rows.append({
                "member_id": member_id, "enrolled_at": now, "failures": 0,
                "consecutive_failures": 0, "created_at": now, "updated_at": now,
            })
            owned.append({
                "member_id": member_id, "kind": channel, "is_default": True, "created_at": now,
                "secret": self.otp.keys.encrypt(seed) if channel == "totp" else None,
                "recipient": None if channel == "totp" else self.otp.keys.encrypt(address),
                "recipient_hash": None if channel == "totp" else self.otp.keys.hash("recipient", address),
                "recipient_hint": None if channel == "totp" else f"{member_id[:1]}***@example.com",
            })
        with self.otp.db.write() as conn:
            conn.execute(members.insert(), rows)
            conn.execute(factors.insert(), owned)
        self.ids = ids
        self.members = [self.Member(member_id, email=f"{member_id}@example.com", name="Member") for member_id in ids]
        return raw_keys

    def email_op(self, i: int) -> None:
        member = self.members[i]
        self.otp.send_challenge(member)
        code = self.sent.pop() if self.channel == "email:code" else self.outbox.messages[-1].sensitive[0]
        result = self.otp.verify(member, code)
        if not result.ok:
            raise AssertionError(f"otp-pro refused a fresh code: {result.reason}")

    def totp_op(self, i: int, code: str) -> None:
        result = self.otp.verify(self.members[i], code)
        if not result.ok:
            raise AssertionError(f"otp-pro refused a TOTP code: {result.reason}")

    def close(self) -> None:
        self.otp.close()


# -------------------------------------------------------------- django-otp


def configure_django(targets: dict[str, Target]) -> None:
    """Configure Django in-process: one database alias per target, django-otp's email and TOTP plugins."""
    import django
    from django.conf import settings

    databases: dict[str, Any] = {}
    for alias, target in targets.items():
        if target.kind == "sqlite":
            entry: dict[str, Any] = {"ENGINE": "django.db.backends.sqlite3", "NAME": target.sqlite_path}
            if target.wal:
                # Same durability as otp-pro's SQLite: WAL with synchronous=NORMAL.
                entry["OPTIONS"] = {"init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL"}
        else:
            from psycopg.conninfo import conninfo_to_dict

            info = conninfo_to_dict(target.pg_dsn)
            entry = {"ENGINE": "django.db.backends.postgresql", "NAME": info.get("dbname"),
                     "USER": info.get("user", "postgres"), "HOST": info.get("host", "127.0.0.1"),
                     "PORT": str(info.get("port", "5432"))}
        databases[alias] = entry
    if "default" not in databases:
        databases["default"] = {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
    settings.configure(
        DEBUG=False,
        SECRET_KEY=SECRET_KEY,
        USE_TZ=True,
        DATABASES=databases,
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "django_otp",
                        "django_otp.plugins.otp_email", "django_otp.plugins.otp_totp"],
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}],
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        OTP_EMAIL_SENDER="no-reply@example.com",
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()
    from django.core import mail
    from django.core.management import call_command

    mail.outbox = []
    for alias in databases:
        call_command("migrate", database=alias, verbosity=0)


class DjangoOtpSide:
    """django-otp's documented path: load the user's device, ``generate_challenge``, load it again, ``verify_token``.

    ``EmailDevice.generate_challenge`` checks its cooldown, stores the token and
    sends it with Django's mail (the locmem backend); ``verify_token`` checks the
    throttle, compares, clears the token and saves the device.
    ``TOTPDevice.verify_token`` checks the throttle, matches the code after
    ``last_t`` (replay protection) and saves ``last_t``. Django runs in its
    default autocommit mode; nothing is audited.
    """

    name = "django-otp"

    def __init__(self, alias: str, smtp: bool = False) -> None:
        """``smtp``: Django's email settings point at an SMTP server (``bench/delivery.py`` sets them)."""
        from django.core import mail
        from django.db import connections
        from django_otp.plugins.otp_email.models import EmailDevice
        from django_otp.plugins.otp_totp.models import TOTPDevice

        self.alias = alias
        self.smtp = smtp
        self.mail = mail
        self.EmailDevice = EmailDevice
        self.TOTPDevice = TOTPDevice
        self.user_ids: list[int] = []
        self.statements = 0
        self.connection = connections[alias]

    def count_statements(self) -> Any:
        def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            self.statements += 1
            return execute(sql, params, many, context)

        return self.connection.execute_wrapper(wrapper)

    def enrol(self, ids: list[str], channel: str) -> list[bytes]:
        from django.contrib.auth.models import User

        users = User.objects.using(self.alias).bulk_create(
            [User(username=member_id, email=f"{member_id}@example.com", password="!") for member_id in ids])
        if users[0].pk is None:  # pragma: no cover - every supported backend returns the keys
            users = list(User.objects.using(self.alias).filter(username__in=ids).order_by("id"))
        self.user_ids = [u.pk for u in users]
        raw_keys = [secrets.token_bytes(20) for _ in ids]
        if channel == "totp":
            self.TOTPDevice.objects.using(self.alias).bulk_create(
                [self.TOTPDevice(user=u, name="phone", key=raw.hex(), confirmed=True) for u, raw in zip(users, raw_keys)])
        else:
            # The device's own address: sending then needs no query for the user.
            self.EmailDevice.objects.using(self.alias).bulk_create(
                [self.EmailDevice(user=u, name="email", email=u.email, confirmed=True) for u in users])
        return raw_keys

    def email_op(self, i: int) -> None:
        uid = self.user_ids[i]
        device = self.EmailDevice.objects.using(self.alias).get(user_id=uid)
        device.generate_challenge()
        if self.smtp:  # the message went to the SMTP server; the token is on the device, in clear
            code = device.token
        else:
            match = CODE.search(self.mail.outbox[-1].body)
            self.mail.outbox.clear()
            assert match is not None
            code = match.group(1)
        device = self.EmailDevice.objects.using(self.alias).get(user_id=uid)  # the verify request loads it again
        if not device.verify_token(code):
            raise AssertionError("django-otp refused a fresh code")

    def totp_op(self, i: int, code: str) -> None:
        device = self.TOTPDevice.objects.using(self.alias).get(user_id=self.user_ids[i])
        if not device.verify_token(code):
            raise AssertionError("django-otp refused a TOTP code")

    def close(self) -> None:
        self.connection.close()


# ---------------------------------------------------------------- raw floor

RAW_SCHEMA = {
    "sqlite": [
        "CREATE TABLE IF NOT EXISTS raw_members (member_id TEXT PRIMARY KEY, seed TEXT, last_step BIGINT)",
        "CREATE TABLE IF NOT EXISTS raw_challenges (id INTEGER PRIMARY KEY, member_id TEXT NOT NULL, "
        "secret_hash TEXT NOT NULL, created_at TIMESTAMP NOT NULL, expires_at TIMESTAMP NOT NULL, "
        "sent_at TIMESTAMP, consumed_at TIMESTAMP)",
        "CREATE INDEX IF NOT EXISTS ix_raw_challenges_member ON raw_challenges (member_id)",
        "CREATE TABLE IF NOT EXISTS raw_audit (id INTEGER PRIMARY KEY, at TIMESTAMP NOT NULL, kind TEXT NOT NULL, "
        "member_id TEXT, details TEXT NOT NULL)",
    ],
    "postgresql": [
        "CREATE TABLE IF NOT EXISTS raw_members (member_id VARCHAR(255) PRIMARY KEY, seed TEXT, last_step BIGINT)",
        "CREATE TABLE IF NOT EXISTS raw_challenges (id BIGSERIAL PRIMARY KEY, member_id VARCHAR(255) NOT NULL, "
        "secret_hash VARCHAR(64) NOT NULL, created_at TIMESTAMP NOT NULL, expires_at TIMESTAMP NOT NULL, "
        "sent_at TIMESTAMP, consumed_at TIMESTAMP)",
        "CREATE INDEX IF NOT EXISTS ix_raw_challenges_member ON raw_challenges (member_id)",
        "CREATE TABLE IF NOT EXISTS raw_audit (id BIGSERIAL PRIMARY KEY, at TIMESTAMP NOT NULL, "
        "kind VARCHAR(50) NOT NULL, member_id VARCHAR(255), details TEXT NOT NULL)",
    ],
}


class RawSide:
    """The floor: the fewest statements doing the same durable work, with the DB-API driver directly.

    Email: transaction 1 inserts the challenge (HMAC-SHA256 of the code);
    transaction 2 consumes it with one conditional UPDATE (member, hash, not
    consumed, not expired) and inserts an audit row. TOTP: one transaction
    reads the seed and last step, moves the step with a conditional UPDATE and
    inserts an audit row. SQLite as otp-pro sets it up (WAL, synchronous=NORMAL,
    BEGIN IMMEDIATE); PostgreSQL at the server's defaults.
    """

    name = "raw floor"
    records_delivery = False

    def __init__(self, target: Target) -> None:
        self.kind = target.kind
        self.key = hashlib.sha256(b"raw-floor-key").digest()
        if target.kind == "sqlite":
            self.conn: Any = sqlite3.connect(target.sqlite_path, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA busy_timeout=10000")
            self.begin = "BEGIN IMMEDIATE"
            self.p = "?"
        else:
            import psycopg

            self.conn = psycopg.connect(target.pg_dsn, autocommit=True)
            self.begin = "BEGIN"
            self.p = "%s"
        for statement in RAW_SCHEMA[target.kind]:
            self.conn.execute(statement)
        p = self.p
        self.sql_insert = (f"INSERT INTO raw_challenges (member_id, secret_hash, created_at, expires_at) "
                           f"VALUES ({p}, {p}, {p}, {p})" + (" RETURNING id" if self.records_delivery else ""))
        self.sql_sent = f"UPDATE raw_challenges SET sent_at = {p} WHERE id = {p}"
        self.sql_consume = (f"UPDATE raw_challenges SET consumed_at = {p} WHERE member_id = {p} AND secret_hash = {p} "
                            f"AND consumed_at IS NULL AND expires_at > {p}")
        self.sql_audit = f"INSERT INTO raw_audit (at, kind, member_id, details) VALUES ({p}, {p}, {p}, {p})"
        self.sql_seed = f"SELECT seed, last_step FROM raw_members WHERE member_id = {p}"
        self.sql_step = (f"UPDATE raw_members SET last_step = {p} WHERE member_id = {p} "
                         f"AND (last_step IS NULL OR last_step < {p})")
        self.ids: list[str] = []
        self.statements = 0

    def _now(self) -> Any:
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        return now.isoformat(" ") if self.kind == "sqlite" else now

    def _exec(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        self.statements += 1
        return self.conn.execute(sql, params)

    def enrol(self, ids: list[str], channel: str) -> list[bytes]:
        raw_keys = [secrets.token_bytes(20) for _ in ids]
        p = self.p
        cur = self.conn.cursor()
        cur.execute(self.begin)
        cur.executemany(f"INSERT INTO raw_members (member_id, seed) VALUES ({p}, {p})",
                        [(m, base64.b32encode(raw).decode()) for m, raw in zip(ids, raw_keys)])
        cur.execute("COMMIT")
        self.ids = ids
        return raw_keys

    def email_op(self, i: int) -> None:
        member_id = self.ids[i]
        code = f"{secrets.randbelow(10**6):06d}"
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        stamp = now.isoformat(" ") if self.kind == "sqlite" else now
        expires = now + timedelta(minutes=10)
        self._exec(self.begin)
        inserted = self._exec(self.sql_insert, (
            member_id, hmac.new(self.key, code.encode(), hashlib.sha256).hexdigest(), stamp,
            expires.isoformat(" ") if self.kind == "sqlite" else expires))
        challenge_id = inserted.fetchone()[0] if self.records_delivery else None  # read before COMMIT (SQLite)
        self._exec("COMMIT")
        if self.records_delivery:
            self.sent(member_id, challenge_id)
        # ... the code travels to the member and comes back ...
        secret_hash = hmac.new(self.key, code.encode(), hashlib.sha256).hexdigest()
        now2 = self._now()
        self._exec(self.begin)
        won = self._exec(self.sql_consume, (now2, member_id, secret_hash, now2)).rowcount == 1
        self._exec(self.sql_audit, (now2, "verify_ok", member_id, json.dumps({"method": "code"})))
        self._exec("COMMIT")
        if not won:
            raise AssertionError("raw floor refused a fresh code")

    def sent(self, member_id: str, challenge_id: int) -> None:
        """Once the message is out: :class:`RawSentSide` records it; the plain floor records nothing (and
        its insert returns no id): it stays the bare minimum the targets are measured against."""
        raise NotImplementedError

    def totp_op(self, i: int, code: str) -> None:
        member_id = self.ids[i]
        now = time.time()
        self._exec(self.begin)
        seed, last_step = self._exec(self.sql_seed, (member_id,)).fetchone()
        raw = base64.b32decode(seed)
        step = int(now) // TOTP_PERIOD
        matched = None
        for candidate in (step - 1, step, step + 1):
            if (last_step is None or candidate > last_step) and hmac.compare_digest(
                    totp_code(raw, candidate * TOTP_PERIOD), code) and matched is None:
                matched = candidate
        won = matched is not None and self._exec(self.sql_step, (matched, member_id, matched)).rowcount == 1
        self._exec(self.sql_audit, (self._now(), "verify_ok", member_id, json.dumps({"method": "totp"})))
        self._exec("COMMIT")
        if not won:
            raise AssertionError("raw floor refused a TOTP code")

    def close(self) -> None:
        self.conn.close()


class RawSentSide(RawSide):
    """The floor plus otp-pro's record of the delivery: the durable work of otp-pro's email operation.

    Between the floor's two transactions, once the message is out, a third one
    marks the challenge sent (one ``UPDATE`` by id) and inserts a
    ``challenge_sent`` audit row, as otp-pro does (otp-pro's ``UPDATE`` also
    voids the member's earlier unused challenges). Three commits: five
    statements plus ``BEGIN`` and ``COMMIT``, eleven in all. Email only: for
    TOTP the floor already does otp-pro's durable work.
    """

    name = "raw floor + sent record"
    prefix = "rws"
    records_delivery = True

    def sent(self, member_id: str, challenge_id: int) -> None:
        now = self._now()
        self._exec(self.begin)
        if self._exec(self.sql_sent, (now, challenge_id)).rowcount != 1:  # as the floor checks its consume
            raise AssertionError("raw floor + sent record marked no challenge sent")
        self._exec(self.sql_audit, (now, "challenge_sent", member_id, json.dumps({"challenge_id": challenge_id})))
        self._exec("COMMIT")
