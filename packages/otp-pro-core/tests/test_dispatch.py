"""Delivery dispatchers: the hook, the settings, and the Celery dispatcher end to end.

The Celery tests use the real Redis at 127.0.0.1:6379 (``OTP_PRO_TEST_REDIS_URL``
overrides it; a queue name unique to the test, so parallel runs don't meet) and a
real Celery worker (``celery.contrib.testing.worker.start_worker``, solo pool, in a
thread of this process, so the worker shares the test's clock). Mail goes to the
loopback SMTP server, which is made to answer 451 or 550 for the fault tests.
Without Redis the Celery tests are skipped with the reason (under CI they fail).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flow_client import flow_client

from otp_pro import ConfigurationError, DeliveryError, Member, OtpPro, ThrottledError, hookimpl
from otp_pro.celery import TASK_NAME, CeleryDispatcher
from otp_pro.dispatch import Dispatcher, InlineDispatcher
from otp_pro.results import DeliveryStatus
from otp_pro.storage.schema import challenges
from otp_pro.testing import Mailbox, enrol, in_ci, mailed_code, outbox_code

REDIS_URL = os.environ.get("OTP_PRO_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def _redis() -> Any:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        reason = f"Celery tests need Redis at {REDIS_URL} (set OTP_PRO_TEST_REDIS_URL): {exc}"
        if in_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return client


@pytest.fixture
def redis_client() -> Iterator[Any]:
    client = _redis()
    yield client
    client.close()


@pytest.fixture
def queue(redis_client: Any) -> Iterator[str]:
    """A queue name of this test only; its keys are removed afterwards."""
    name = f"otp_pro_test_{secrets.token_hex(6)}"
    yield name
    for key in redis_client.scan_iter(f"*{name}*"):
        redis_client.delete(key)


@pytest.fixture
def make_queued(make_otp: Callable[..., OtpPro], smtp_server: tuple[str, int, Mailbox],
                queue: str) -> Callable[..., OtpPro]:
    """OtpPro instances with ``dispatcher = "celery"`` on the test's database, queue and SMTP server."""
    host, port, _ = smtp_server

    def factory(**overrides: Any) -> OtpPro:
        overrides.setdefault("delivery_retry_backoff_seconds", 0.2)
        return make_otp(dispatcher="celery", providers={
            "email": {"smtp_host": host, "smtp_port": port, "from_address": "otp@example.com"},
            "celery": {"broker_url": REDIS_URL, "queue": queue},
        }, **overrides)

    return factory


@contextmanager
def worker(otp: OtpPro, queue: str) -> Iterator[None]:
    """A real Celery worker consuming ``queue`` in a thread, stopped at the end."""
    from celery.contrib.testing.worker import start_worker

    dispatcher = otp.dispatcher
    assert isinstance(dispatcher, CeleryDispatcher)
    with start_worker(dispatcher.app, pool="solo", concurrency=1, perform_ping_check=False, queues=[queue],
                      loglevel="WARNING", shutdown_timeout=10):
        yield


def settle(otp: OtpPro, member: Member, challenge_id: int, *, timeout: float = 20.0) -> DeliveryStatus:
    """Wait until the challenge's delivery is final (sent, failed or replaced)."""
    deadline = time.monotonic() + timeout
    while True:
        status = otp.delivery_status(member, challenge_id)
        assert status is not None
        if status.done or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def row(otp: OtpPro, challenge_id: int) -> Any:
    from sqlalchemy import select

    with otp.db.read() as conn:
        return conn.execute(select(challenges).where(challenges.c.id == challenge_id)).one()


def outbox(otp: OtpPro) -> list[Any]:
    return list(otp.transports["outbox"].messages)  # type: ignore[attr-defined]


# ------------------------------------------------------------------ the hook and the settings


def test_inline_is_the_default_and_sends_in_the_request(otp: OtpPro, member: Member) -> None:
    assert isinstance(otp.dispatcher, InlineDispatcher) and otp.dispatcher.queued is False
    enrol(otp, member)
    challenge = otp.send_challenge(member)
    assert challenge.status == "sent"
    status = otp.delivery_status(member)
    assert status is not None and status.status == "sent" and status.challenge_id == challenge.id
    assert row(otp, challenge.id).message is None  # inline never stores the message


def test_unknown_dispatcher_is_a_configuration_error_naming_the_installed_ones(make_otp: Callable[..., OtpPro]) -> None:
    with pytest.raises(ConfigurationError, match=r"dispatcher: .*'carrier_pigeon'.*installed: celery, inline"):
        make_otp(dispatcher="carrier_pigeon")


def test_celery_not_installed_names_the_fix(tmp_path: Any) -> None:
    """In a fresh interpreter where ``import celery`` fails, the setting is refused with the pip command."""
    probe = (
        "import sys\n"
        "sys.modules['celery'] = None  # as if not installed\n"
        "from otp_pro import OtpPro, ConfigurationError\n"
        "try:\n"
        f"    OtpPro({{'secret_key': 'k' * 40, 'database_url': 'sqlite:///{tmp_path}/c.sqlite3', "
        "'dispatcher': 'celery'}, entry_points=False)\n"
        "except ConfigurationError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert "dispatcher:" in done.stdout and "pip install 'otp-pro-core[celery]'" in done.stdout


def test_discovery_does_not_import_celery() -> None:
    probe = ("import sys\n"
             "from otp_pro.plugins import PluginHost\n"
             "host = PluginHost(entry_points=False)\n"
             "host.collect_providers()\n"
             "from otp_pro import dispatch\n"
             "print(sorted(dispatch.collect(host)), 'celery' in sys.modules, 'kombu' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.split() == ["['celery',", "'inline']", "False", "False"]


class Postbox(Dispatcher):
    """A third party's queue: keeps the ids it was given; the test plays the worker."""

    name = "postbox"

    def __init__(self, otp: OtpPro) -> None:
        super().__init__(otp)
        self.ids: list[int] = []

    def enqueue(self, challenge_id: int) -> None:
        self.ids.append(challenge_id)


class PostboxPlugin:
    __name__ = "acme_postbox"

    @hookimpl
    def otp_pro_register_dispatchers(self, register: Callable[[type[Dispatcher]], None]) -> None:
        register(Postbox)


def enrol_through_the_queue(otp: OtpPro, member: Member) -> None:
    """Set ``member`` up on the outbox with a queue dispatcher, playing the worker for the setup code."""
    setup = otp.begin_setup(member, "outbox:code")
    assert setup.challenge is not None
    otp.deliver_queued(setup.challenge.id)
    otp.complete_setup(member, outbox_code(otp))


def test_a_third_party_dispatcher_queues_and_its_worker_sends(make_otp: Callable[..., OtpPro], member: Member,
                                                               clock: Any) -> None:
    otp = make_otp(dispatcher="postbox", plugins=[PostboxPlugin()], resend_cooldown_seconds=30)
    dispatcher = otp.dispatcher
    assert isinstance(dispatcher, Postbox)
    setup = otp.begin_setup(member, "outbox:code")
    assert setup.challenge is not None and setup.challenge.status == "queued"
    assert dispatcher.ids == [setup.challenge.id]
    assert outbox(otp) == []  # nothing left the request
    queued_row = row(otp, setup.challenge.id)
    assert queued_row.status == "queued" and queued_row.message  # the message waits, encrypted
    assert "ann@example.com" not in queued_row.message
    # Queued counts against the cooldown.
    with pytest.raises(ThrottledError, match="wait"):
        otp.begin_setup(member, "outbox:code")
    assert otp.deliver_queued(setup.challenge.id).action == "sent"
    assert otp.deliver_queued(setup.challenge.id).action == "skipped"  # a duplicate does nothing
    assert len(outbox(otp)) == 1
    sent_row = row(otp, setup.challenge.id)
    assert sent_row.status == "sent" and sent_row.message is None and sent_row.attempts == 1
    otp.complete_setup(member, outbox_code(otp))
    kinds = [e.kind for e in otp.events(member, kinds=["challenge_queued", "challenge_sent"])]
    assert kinds == ["challenge_sent", "challenge_queued"]


def test_a_code_cannot_be_verified_before_it_is_sent_and_expires_in_the_queue(
        make_otp: Callable[..., OtpPro], member: Member, clock: Any) -> None:
    otp = make_otp(dispatcher="postbox", plugins=[PostboxPlugin()])
    enrol_through_the_queue(otp, member)
    queued = otp.send_challenge(member)
    # The code exists only in the encrypted row: read it the way the worker would, and try it early.
    message = json.loads(otp.keys.decrypt(row(otp, queued.id).message))
    code = re.search(r"\b(\d{6})\b", message["text"]).group(1)  # type: ignore[union-attr]
    assert not otp.verify(member, code).ok  # queued: not sent, so not verifiable
    clock.advance(otp.settings.code_ttl_seconds + 1)
    status = otp.delivery_status(member, queued.id)
    assert status is not None and (status.status, status.error_code) == ("failed", "expired")
    result = otp.deliver_queued(queued.id)
    assert (result.action, result.error_code) == ("failed", "expired")
    assert len(outbox(otp)) == 1  # only the setup code was ever sent
    failed = otp.events(member, kinds=["delivery_failed"])[0]
    assert failed.details["provider_code"] == "expired" and failed.details["challenge_id"] == queued.id


def test_a_code_that_reached_the_member_before_sent_was_recorded_is_accepted(
        make_otp: Callable[..., OtpPro], member: Member) -> None:
    """The race the load test found: the provider hands the code over, the member types it, and only
    then does the worker record ``sent``. The code is accepted once, and the late record changes nothing."""
    otp = make_otp(dispatcher="postbox", plugins=[PostboxPlugin()])
    enrol_through_the_queue(otp, member)
    queued = otp.send_challenge(member)
    transport = otp.transports["outbox"]
    original = transport.send
    results: list[bool] = []

    def member_types_it_at_once(message: Any) -> Any:
        receipt = original(message)
        assert row(otp, queued.id).status == "sending"
        code = re.search(r"\b(\d{6})\b", message.text).group(1)  # type: ignore[union-attr]
        results.append(otp.verify(member, code).ok)
        results.append(otp.verify(member, code).ok)  # and a replay
        return receipt

    transport.send = member_types_it_at_once  # type: ignore[method-assign]
    try:
        assert otp.deliver_queued(queued.id).action == "sent"
    finally:
        del transport.send
    assert results == [True, False]
    final = row(otp, queued.id)
    assert final.status == "sent" and final.consumed_at is not None
    assert [e.kind for e in otp.events(member, kinds=["verify_ok"])] == ["verify_ok"]


# ------------------------------------------------------------------ Celery, Redis and a real worker


def test_celery_queued_then_sent_and_verified(make_queued: Callable[..., OtpPro], queue: str,
                                              member: Member, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG)  # every logger, Celery's and kombu's too
    otp = make_queued()
    with worker(otp, queue):
        setup = otp.begin_setup(member, "outbox:code")
        assert setup.challenge is not None and setup.challenge.status == "queued"
        assert settle(otp, member, setup.challenge.id).status == "sent"
        otp.complete_setup(member, outbox_code(otp))
        challenge = otp.send_challenge(member)
        assert challenge.status == "queued"
        status = settle(otp, member, challenge.id)
    assert (status.status, status.attempts, status.fallback_channels) == ("sent", 1, ())
    assert otp.verify(member, outbox_code(otp)).ok
    assert row(otp, challenge.id).message is None  # the ciphertext is wiped once sent
    sent = otp.events(member, kinds=["challenge_sent"])[0]
    assert sent.details["dispatcher"] == "celery" and sent.details["attempts"] == 1
    # No code in a log line (at DEBUG, the worker's included) or an audit record.
    code = outbox_code(otp)
    records = json.dumps([[e.kind, dict(e.details), e.channel] for e in otp.events(member)], default=str)
    assert "celery" in caplog.text  # Celery's own DEBUG lines were captured
    for secret in (code, "ann@example.com"):
        assert secret not in caplog.text and secret not in records


def enrol_by_email_through_the_worker(otp: OtpPro, member: Member, mailbox: Mailbox) -> None:
    """Set ``member`` up by email while a worker runs; the worker sends the setup code, read from the mailbox."""
    setup = otp.begin_setup(member, "email:code")
    assert setup.challenge is not None and settle(otp, member, setup.challenge.id).status == "sent"
    otp.complete_setup(member, mailed_code(mailbox, "ann@example.com"))


def enrol_on_the_outbox_through_the_worker(otp: OtpPro, member: Member) -> None:
    """Set ``member`` up on the outbox while a worker runs; the worker sends the setup code."""
    setup = otp.begin_setup(member, "outbox:code")
    assert setup.challenge is not None and settle(otp, member, setup.challenge.id).status == "sent"
    otp.complete_setup(member, outbox_code(otp))


def test_celery_transient_error_is_retried_then_sent(make_queued: Callable[..., OtpPro], queue: str,
                                                     member: Member, mailbox: Mailbox) -> None:
    otp = make_queued()
    with worker(otp, queue):
        enrol_by_email_through_the_worker(otp, member, mailbox)
        before = len(mailbox.to("ann@example.com"))  # the setup code and, maybe, a notification
        mailbox.reply = "451 4.3.0 try again later"  # the next DATA only
        challenge = otp.send_challenge(member)
        status = settle(otp, member, challenge.id)
    assert (status.status, status.attempts) == ("sent", 2)
    assert len(mailbox.to("ann@example.com")) == before + 1  # this code, once
    code = mailed_code(mailbox, "ann@example.com")
    assert otp.verify(member, code).ok
    retried = otp.events(member, kinds=["delivery_retried"])
    assert len(retried) == 1 and retried[0].details["provider_code"] == "451"
    assert retried[0].details["retry_after"] == pytest.approx(0.2)


def test_celery_permanent_error_fails_with_an_audit_event_and_offers_fallback(
        make_queued: Callable[..., OtpPro], queue: str, member: Member, mailbox: Mailbox) -> None:
    otp = make_queued()
    with worker(otp, queue):
        enrol_by_email_through_the_worker(otp, member, mailbox)
        # The member's other factors: only their own are offered as a fallback (an app's among them, not offered).
        enrol_on_the_outbox_through_the_worker(otp, member)
        assert enrol(otp, member, "totp") == []
        assert [f.kind for f in otp.factors(member)] == ["email:code", "outbox:code", "totp"]
        mailbox.reply = "550 5.1.1 no such mailbox"
        challenge = otp.send_challenge(member)
        status = settle(otp, member, challenge.id)
        assert (status.status, status.error_code, status.attempts) == ("failed", "550", 1)
        assert status.fallback_channels == ("outbox:code",)  # policy order, without totp and the failed one
        failed = otp.events(member, kinds=["delivery_failed"])[0]
        assert failed.outcome == "failed" and failed.details["permanent"] is True
        assert failed.details["challenge_id"] == challenge.id and failed.details["attempts"] == 1
        # The fallback: another channel, at once (a failed send does not count against the cooldown).
        fallback = otp.send_challenge(member, channel="outbox:code")
        assert settle(otp, member, fallback.id).status == "sent"
    assert otp.verify(member, outbox_code(otp)).ok
    event = otp.events(member, kinds=["delivery_fallback"])[0]
    assert event.details["from_channel"] == "email:code" and event.details["to_channel"] == "outbox:code"
    assert event.details["failed_challenge_id"] == challenge.id and event.details["error_code"] == "550"


def test_celery_retries_are_bounded_by_delivery_max_attempts(make_queued: Callable[..., OtpPro], queue: str,
                                                             member: Member) -> None:
    from otp_pro import TransientDeliveryError

    otp = make_queued(delivery_max_attempts=3, delivery_retry_backoff_seconds=0.05)
    transport = otp.transports["outbox"]
    calls: list[float] = []

    def always_busy(message: Any) -> Any:  # a provider that keeps answering "busy": no real part shows that on cue
        calls.append(time.monotonic())
        raise TransientDeliveryError("provider busy", transport="outbox", provider_code="busy")

    with worker(otp, queue):
        enrol_on_the_outbox_through_the_worker(otp, member)
        transport.send = always_busy  # type: ignore[method-assign]
        challenge = otp.send_challenge(member)
        status = settle(otp, member, challenge.id)
    assert (status.status, status.error_code, status.attempts) == ("failed", "busy", 3)
    assert len(calls) == 3
    assert calls[2] - calls[1] >= calls[1] - calls[0] * 1.0 - 0.5  # backoff grows (loosely: CI timing)
    assert len(otp.events(member, kinds=["delivery_retried"])) == 2
    assert len(otp.events(member, kinds=["delivery_failed"])) == 1


def test_celery_duplicate_tasks_send_once(make_queued: Callable[..., OtpPro], queue: str, member: Member) -> None:
    otp = make_queued()
    dispatcher = otp.dispatcher
    assert isinstance(dispatcher, CeleryDispatcher)
    with worker(otp, queue):
        enrol_on_the_outbox_through_the_worker(otp, member)
    before = len(outbox(otp))
    challenge = otp.send_challenge(member)
    for _ in range(3):  # a broker redelivery, a retry racing a duplicate: the same id several times
        dispatcher.enqueue(challenge.id)
    with worker(otp, queue):
        assert settle(otp, member, challenge.id).status == "sent"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _queue_length(otp, queue):
            time.sleep(0.05)
        time.sleep(0.3)  # the last duplicate has run
    assert len(outbox(otp)) == before + 1
    assert row(otp, challenge.id).attempts == 1
    assert len(otp.events(member, kinds=["challenge_sent"])) == 2  # setup and this one


@contextmanager
def database_outage(otp: OtpPro) -> Iterator[Callable[[], None]]:
    """``otp``'s database refuses work until the ``restore`` it yields is called (or the block ends).

    SQLite: another connection holds the write lock (past the busy timeout the test set);
    PostgreSQL: the database refuses connections and its backends are ended.
    """
    url = otp.db.engine.url
    if otp.db.is_sqlite:
        import sqlite3

        other = sqlite3.connect(str(url.database), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")

        def restore() -> None:
            if other.in_transaction:
                other.execute("ROLLBACK")
    else:
        import psycopg

        name = str(url.database)
        other = psycopg.connect(url.set(drivername="postgresql", database="postgres").render_as_string(
            hide_password=False), autocommit=True)
        other.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        other.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        away = [True]  # emptied by the first restore: the block's end may restore again

        def restore() -> None:
            if away:
                away.clear()
                other.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
                otp.db.engine.dispose()  # the pooled connections the server ended
    try:
        yield restore
    finally:
        restore()
        other.close()


def test_celery_worker_retries_while_the_database_is_away(make_queued: Callable[..., OtpPro], queue: str,
                                                          member: Member, monkeypatch: pytest.MonkeyPatch) -> None:
    from otp_pro import StorageError
    from otp_pro.storage import db as storage_db

    monkeypatch.setattr(storage_db, "SQLITE_BUSY_TIMEOUT_MS", 200)
    otp = make_queued()
    with worker(otp, queue):
        enrol_on_the_outbox_through_the_worker(otp, member)
    before = len(outbox(otp))
    challenge = otp.send_challenge(member)  # queued; no worker yet
    tries: list[str] = []
    deliver_queued = otp.deliver_queued

    def counted(challenge_id: int) -> Any:
        try:
            outcome = deliver_queued(challenge_id)
        except StorageError as exc:
            tries.append(exc.reason)
            raise
        tries.append(outcome.action)
        return outcome

    otp.deliver_queued = counted  # type: ignore[method-assign]
    with database_outage(otp) as restore, worker(otp, queue):
        deadline = time.monotonic() + 15
        while not tries and time.monotonic() < deadline:
            time.sleep(0.05)
        assert tries and tries[0] in ("locked", "unavailable", "connection_lost"), tries
        restore()
        status = settle(otp, member, challenge.id)
    # The task went back to the queue and ran again once the database answered: sent once.
    assert tries[-1] == "sent" and len(tries) >= 2
    assert (status.status, row(otp, challenge.id).attempts) == ("sent", 1)  # the failed claim was rolled back
    assert len(outbox(otp)) == before + 1
    assert otp.verify(member, outbox_code(otp)).ok


def _queue_length(otp: OtpPro, queue: str) -> int:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return int(client.llen(queue))
    finally:
        client.close()


def test_celery_replaced_challenge_task_does_nothing_and_nothing_secret_is_in_redis(
        make_queued: Callable[..., OtpPro], queue: str, member: Member, redis_client: Any) -> None:
    otp = make_queued()
    with worker(otp, queue):
        enrol_on_the_outbox_through_the_worker(otp, member)
    before = len(outbox(otp))
    first = otp.send_challenge(member)  # no worker: it waits in Redis
    second = otp.send_challenge(member)
    replaced = otp.delivery_status(member, first.id)
    assert replaced is not None and replaced.status == "replaced"
    assert row(otp, first.id).message is None  # a replaced row's ciphertext is wiped at once
    raw = [redis_client.lindex(queue, i) for i in range(redis_client.llen(queue))]
    assert len(raw) == 2
    with worker(otp, queue):
        assert settle(otp, member, second.id).status == "sent"
        time.sleep(0.3)
    assert len(outbox(otp)) == before + 1  # the replaced challenge's task sent nothing
    assert otp.delivery_status(member, first.id).status == "replaced"  # type: ignore[union-attr]
    code = outbox_code(otp)
    # What went through the broker: the challenge id, and nothing secret or personal.
    blob = b"\n".join(raw)
    decoded = b"\n".join(base64.b64decode(json.loads(r)["body"]) for r in raw)
    assert sorted(json.loads(base64.b64decode(json.loads(r)["body"]))[0][0] for r in raw) == [first.id, second.id]
    assert json.loads(raw[0])["headers"]["task"] == TASK_NAME
    for secret in (code, "ann@example.com", "a***@example.com", "+447911123456", otp.settings.secret_key.reveal()):
        assert secret.encode() not in blob and secret.encode() not in decoded, f"{secret!r} went through Redis"
    assert b"Ann" not in decoded
    assert otp.verify(member, code).ok


def test_celery_unreachable_broker_fails_the_delivery_cleanly(make_otp: Callable[..., OtpPro], member: Member) -> None:
    from otp_pro.testing import free_port

    otp = make_otp(dispatcher="celery", providers={"celery": {
        "broker_url": f"redis://127.0.0.1:{free_port()}/0", "queue": "nowhere", "enqueue_timeout_seconds": 0.5}})
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="queue is not reachable") as caught:
        otp.begin_setup(member, "outbox:code")
    assert time.monotonic() - started < 15
    assert caught.value.provider_code == "enqueue" and caught.value.challenge_id is not None
    status = otp.delivery_status(member)
    assert status is not None and (status.status, status.error_code) == ("failed", "enqueue")
    assert row(otp, status.challenge_id).message is None


def test_celery_settings_are_redacted_and_validated(make_otp: Callable[..., OtpPro]) -> None:
    otp = make_otp(dispatcher="celery", providers={"celery": {"broker_url": "redis://:hunter2-pass@127.0.0.1:6379/3"}})
    shown = otp.redacted_settings()
    assert shown["dispatcher"] == "celery"
    assert shown["providers"]["celery"]["broker_url"] == "********"
    assert "hunter2-pass" not in repr(otp.dispatcher) and "hunter2-pass" not in repr(otp.plugin_settings["celery"])
    with pytest.raises(ConfigurationError, match=r"providers\.celery\.queue"):
        make_otp(dispatcher="celery", providers={"celery": {"queue": 5}})


# ------------------------------------------------------------------ races and the web page, without a broker


def test_concurrent_workers_claim_a_challenge_once(make_otp: Callable[..., OtpPro], member: Member) -> None:
    """Eight threads deliver the same queued challenge at once (PostgreSQL: eight connections): one sends."""
    import threading

    otp = make_otp(dispatcher="postbox", plugins=[PostboxPlugin()])
    setup = otp.begin_setup(member, "outbox:code")
    assert setup.challenge is not None
    barrier = threading.Barrier(8)
    actions: list[str] = []

    def work() -> None:
        barrier.wait()
        actions.append(otp.deliver_queued(setup.challenge.id).action)  # type: ignore[union-attr]

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(actions) == ["sent"] + ["skipped"] * 7
    assert len(outbox(otp)) == 1 and row(otp, setup.challenge.id).attempts == 1


def test_the_verify_page_says_sending_and_polls_until_sent(make_otp: Callable[..., OtpPro], member: Member) -> None:
    otp = make_otp(dispatcher="postbox", plugins=[PostboxPlugin()])
    enrol_through_the_queue(otp, member)
    client = flow_client(otp, member)
    client.get("/login")
    page = client.get("/otp/verify")
    assert page.status_code == 200
    assert "Sending your code by Development outbox" in page.text and 'data-status="sending"' in page.text
    assert "on its way" in page.text and "otp_pro_delivery.js" in page.text and "/otp/api/delivery" in page.text
    polled = client.get("/otp/api/delivery")
    assert polled.status_code == 200 and polled.json["status"] == "sending" and polled.json["done"] is False
    assert client.get("/otp/static/otp_pro_delivery.js").status_code == 200
    dispatcher = otp.dispatcher
    assert isinstance(dispatcher, Postbox)
    assert otp.deliver_queued(dispatcher.ids[-1]).action == "sent"  # the worker's turn
    polled = client.get("/otp/api/delivery")
    assert polled.json["status"] == "sent" and polled.json["done"] is True
    page = client.get("/otp/verify")
    assert "We sent a 6-digit code by Development outbox" in page.text and "otp_pro_delivery.js" not in page.text
    found = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert found
    done = client.post("/otp/verify", data={"code": outbox_code(otp), "csrf_token": found.group(1)})
    assert done.status_code == 303 and done.headers["Location"] == "/home"


def test_a_celery_worker_process_sends_with_the_same_settings_file(tmp_path: Any, queue: str, member: Member) -> None:
    """``celery -A otp_pro.celery worker`` in its own process, configured by ``$OTP_PRO_CONFIG`` alone:
    the request and the worker share only the database, the secret key and the broker."""
    import email
    import email.policy
    import shutil
    from pathlib import Path

    from otp_pro.testing import settings_toml

    spool = tmp_path / "outbox"
    settings = {
        "secret_key": "worker-process-secret-" + "w" * 32, "database_url": f"sqlite:///{tmp_path}/shared.sqlite3",
        "channels": ["outbox:code"], "default_channel": "outbox:code", "resend_cooldown_seconds": 0,
        "dispatcher": "celery", "delivery_retry_backoff_seconds": 0.2,
        "providers": {"celery": {"broker_url": REDIS_URL, "queue": queue}, "outbox": {"directory": str(spool)}},
    }
    config = tmp_path / "otp-pro.toml"
    config.write_text(settings_toml(settings), encoding="utf-8")
    otp = OtpPro.from_file(str(config))  # the real clock: the worker process has no other
    celery_bin = shutil.which("celery", path=str(Path(sys.executable).parent))
    assert celery_bin, "the celery command is installed with the celery extra"
    process = subprocess.Popen(
        [celery_bin, "-A", "otp_pro.celery", "worker", "-Q", queue, "--pool", "solo", "--loglevel", "WARNING",
         "--without-heartbeat", "--without-gossip", "--without-mingle"],
        env={**os.environ, "OTP_PRO_CONFIG": str(config)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        cwd=tmp_path)
    try:
        setup = otp.begin_setup(member, "outbox:code")
        assert setup.challenge is not None and setup.challenge.status == "queued"
        status = settle(otp, member, setup.challenge.id, timeout=60)
        assert status.status == "sent", f"worker did not send: {status}"
        files = sorted(spool.glob("*.eml"))
        assert len(files) == 1
        mail = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
        body = mail.get_body(preferencelist=("plain",))
        assert body is not None
        found = re.search(r"\b(\d{6})\b", body.get_content())
        assert found
        assert otp.complete_setup(member, found.group(1))  # the backup codes: the worker's code was right
        here = otp.transports["outbox"].messages  # type: ignore[attr-defined]
        assert [m for m in here if m.kind == "challenge"] == []  # the code left from the other process
    finally:
        process.terminate()
        try:
            output = process.communicate(timeout=30)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            process.kill()
            output = process.communicate()[0].decode(errors="replace")
        otp.close()
    assert "Traceback" not in output, output
