"""The ``email`` transport's pooled SMTP sessions, against real servers on loopback.

aiosmtpd (plain, STARTTLS + AUTH, implicit TLS + AUTH, with a self-signed certificate
the client is told to trust) counts the connections it accepts, so reuse is seen from
the server's side; a small scripted server fails on cue in the middle of a session
that is already open (after ``DATA``, at ``MAIL``), which aiosmtpd cannot do. Every
message carries a serial number in its subject, so "delivered exactly once" is read
off what the server received.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from core_support import base_settings

from otp_pro import ConfigurationError, Member, OtpPro, TransientDeliveryError
from otp_pro.builtins.email import EmailTransport
from otp_pro.testing import free_port, tls_server_context
from otp_pro.transports import Message

USER, PASSWORD = "mailer", "pool-pa55word-never-shown"


class Counting:
    """aiosmtpd handler: the subjects delivered, the connection (peer) each came on, NOOPs and QUITs seen."""

    def __init__(self) -> None:
        self.delivered: list[tuple[str, Any]] = []
        self.noops = 0
        self.quits = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        subject = next((line for line in envelope.content.split(b"\r\n") if line.startswith(b"Subject: ")), b"")
        with self._lock:
            self.delivered.append((subject[9:].decode(), session.peer))
        return "250 OK"

    async def handle_NOOP(self, server: Any, session: Any, envelope: Any, arg: str) -> str:
        self.noops += 1
        return "250 OK"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        self.quits += 1
        return "221 Bye"

    def subjects(self) -> list[str]:
        return [subject for subject, _ in self.delivered]

    def peers(self) -> list[Any]:
        return [peer for _, peer in self.delivered]


class CountingController(Controller):
    """aiosmtpd's controller, counting the connections it accepted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections = 0

    def factory(self) -> Any:
        self.connections += 1
        return super().factory()


def login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    return AuthResult(success=data.login == USER.encode() and data.password == PASSWORD.encode(), handled=False)


@pytest.fixture
def serve(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., tuple[CountingController,
                                                                                          Counting]]]:
    """``serve(kind, **smtp_kwargs)``: a started aiosmtpd of ``kind`` plain, starttls or implicit_tls."""
    started: list[Controller] = []

    def make(kind: str = "plain", **kwargs: Any) -> tuple[CountingController, Counting]:
        handler = Counting()
        options: dict[str, Any] = {"hostname": "127.0.0.1", "port": free_port(), **kwargs}
        if kind != "plain":
            context = tls_server_context(tmp_path)
            monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "cert.pem"))  # the client trusts it
            options.update(authenticator=login, auth_required=True)
            if kind == "starttls":
                options.update(tls_context=context, require_starttls=True)
            else:
                # aiosmtpd counts only STARTTLS as TLS for AUTH; this whole connection is TLS.
                options.update(ssl_context=context, auth_require_tls=False)
        controller = CountingController(handler, **options)
        controller.start()
        controller.connections = 0  # start() made one itself, to see the server answer
        started.append(controller)
        return controller, handler

    yield make
    for controller in started:
        controller.stop()


@pytest.fixture
def transport(tmp_path: Any) -> Iterator[Callable[..., EmailTransport]]:
    """``transport(port, **email_settings)``: the ``email`` transport of a fresh OtpPro, closed afterwards."""
    made: list[OtpPro] = []

    def make(port: int, **email: Any) -> EmailTransport:
        providers = {"email": {"smtp_host": "127.0.0.1", "smtp_port": port, "from_address": "otp@example.com",
                               "smtp_timeout_seconds": 2.0, **email}}
        otp = OtpPro(base_settings(f"sqlite:///{tmp_path}/pool-{len(made)}.sqlite3", providers=providers),
                     entry_points=False)
        made.append(otp)
        return otp.transports["email"]  # type: ignore[return-value]

    yield make
    for otp in made:
        otp.close()


def eventually(condition: Callable[[], bool], within: float = 3.0) -> bool:
    """``condition`` turns true within ``within`` seconds (the transport sends QUIT without waiting for the answer)."""
    end = time.monotonic() + within
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def message(n: int | str) -> Message:
    return Message(recipient="ann@example.com", subject=f"message {n}", text=f"Your code is 1234{n}.\n")


# -------------------------------------------------------------- reuse


@pytest.mark.parametrize(("kind", "secure"), [
    ("plain", {}),
    ("starttls", {"smtp_starttls": True, "smtp_username": USER, "smtp_password": PASSWORD}),
    ("implicit_tls", {"smtp_ssl": True, "smtp_username": USER, "smtp_password": PASSWORD}),
])
def test_one_connection_carries_every_message(serve, transport, kind, secure):
    controller, handler = serve(kind)
    email = transport(controller.port, **secure)
    for n in range(5):
        email.send(message(n))
    assert handler.subjects() == [f"message {n}" for n in range(5)]
    # TLS and the login stay on the reused connection (the server requires both for every message).
    assert controller.connections == 1 and len(set(handler.peers())) == 1
    email.close()
    assert eventually(lambda: handler.quits == 1)  # closed politely with the OtpPro


def test_pool_size_zero_opens_a_connection_per_message_and_quits_each(serve, transport):
    controller, handler = serve()
    email = transport(controller.port, smtp_pool_size=0)
    for n in range(3):
        email.send(message(n))
    assert controller.connections == 3 and handler.quits == 3 and len(handler.subjects()) == 3


def test_max_messages_and_max_age_retire_a_connection(serve, transport):
    controller, handler = serve()
    email = transport(controller.port, smtp_pool_max_messages=2)
    for n in range(5):
        email.send(message(n))
    assert controller.connections == 3  # 2 + 2 + 1
    assert eventually(lambda: handler.quits == 2)  # the first two ended with QUIT
    aged = transport(controller.port, smtp_pool_max_age_seconds=1)
    aged.send(message("a"))
    time.sleep(1.1)
    aged.send(message("b"))
    assert controller.connections == 5 and eventually(lambda: handler.quits == 3)


def test_a_connection_idle_long_enough_is_checked_with_noop(serve, transport):
    controller, handler = serve()
    email = transport(controller.port, smtp_pool_check_after_seconds=0.2)
    email.send(message(1))
    email.send(message(2))  # straight after: no check
    assert handler.noops == 0
    time.sleep(0.3)
    email.send(message(3))
    assert handler.noops == 1 and controller.connections == 1


def test_a_connection_the_server_dropped_while_idle_is_replaced_after_the_noop(serve, transport, caplog):
    caplog.set_level(logging.INFO, logger="otp_pro")
    controller, handler = serve(timeout=0.3)  # aiosmtpd closes a connection idle for 0.3 s, without a word
    email = transport(controller.port, smtp_pool_check_after_seconds=0.1)
    email.send(message(1))
    time.sleep(0.6)
    email.send(message(2))
    assert handler.subjects() == ["message 1", "message 2"] and controller.connections == 2
    assert "sending on a new one" not in caplog.text  # the NOOP found it: nothing had to be retried


def test_a_dropped_idle_connection_without_a_check_is_retried_once_and_delivers_once(serve, transport, caplog):
    caplog.set_level(logging.INFO, logger="otp_pro")
    controller, handler = serve(timeout=0.3)
    email = transport(controller.port, smtp_pool_check_after_seconds=60)  # no NOOP: MAIL finds the drop
    email.send(message(1))
    time.sleep(0.6)
    receipt = email.send(message(2))
    assert handler.subjects() == ["message 1", "message 2"] and controller.connections == 2
    assert receipt.provider_message_id
    assert "the server closed an idle SMTP connection" in caplog.text


def test_the_pool_is_closed_with_the_otp_pro_instance(serve, tmp_path):
    controller, handler = serve()
    otp = OtpPro(base_settings(f"sqlite:///{tmp_path}/close.sqlite3", channels=["email:code"],
                               default_channel="email:code",
                               providers={"email": {"smtp_host": "127.0.0.1", "smtp_port": controller.port}}),
                 entry_points=False)
    ann = Member(id="ann", email="ann@example.com")
    otp.begin_setup(ann, "email:code")
    assert controller.connections == 1 and handler.quits == 0
    otp.close()
    assert eventually(lambda: handler.quits == 1)


# ------------------------------------------------- failures on a reused connection


class Scripted:
    """A minimal SMTP server whose answers at MAIL and after DATA a test changes while a session is open.

    ``at_mail``: None (250), a reply line sent instead, or ``b"stall"`` (never answer); ``after_data``: None (250),
    ``"close"`` (read the message, drop the connection without a reply) or ``"stall"``
    (read it, never answer). ``received`` holds every message body read, answered or not.
    """

    def __init__(self) -> None:
        self.at_mail: bytes | None = None
        self.after_data: str | None = None
        self.received: list[bytes] = []
        self.connections = 0
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"220 scripted ESMTP\r\n")
            for raw in lines:
                verb = raw.split(b" ", 1)[0].strip().upper()
                if verb == b"EHLO":
                    conn.sendall(b"250-scripted\r\n250 8BITMIME\r\n")
                elif verb == b"MAIL":
                    if self.at_mail == b"stall":
                        self._stop.wait(10)
                        return
                    conn.sendall(self.at_mail or b"250 OK\r\n")
                elif verb in (b"RCPT", b"RSET", b"NOOP"):
                    conn.sendall(b"250 OK\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    body = b"".join(iter(lines.readline, b".\r\n"))
                    self.received.append(body)
                    if self.after_data == "close":
                        conn.shutdown(socket.SHUT_RDWR)
                        return
                    if self.after_data == "stall":
                        self._stop.wait(10)
                        return
                    conn.sendall(b"250 queued\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    yield server
    server.stop()


def subjects_in(server: Scripted) -> list[str]:
    return [next(line for line in body.split(b"\r\n") if line.startswith(b"Subject: "))[9:].decode()
            for body in server.received]


@pytest.mark.parametrize("fault", ["close", "stall"])
def test_a_failure_after_data_on_a_reused_connection_is_not_retried(scripted, transport, fault):
    email = transport(scripted.port, smtp_timeout_seconds=0.3)
    email.send(message(1))
    scripted.after_data = fault
    with pytest.raises(TransientDeliveryError) as info:
        email.send(message(2))
    # The server has the message and may deliver it: sending it again could give the member the code twice.
    assert info.value.provider_code == ("disconnected" if fault == "close" else "timeout")
    assert subjects_in(scripted) == ["message 1", "message 2"] and scripted.connections == 1
    scripted.after_data = None
    email.send(message(3))  # the broken connection was thrown away: a new one
    assert subjects_in(scripted) == ["message 1", "message 2", "message 3"] and scripted.connections == 2


def test_421_at_mail_on_a_reused_connection_is_retried_once_on_a_new_one(scripted, transport):
    email = transport(scripted.port)
    email.send(message(1))
    scripted.at_mail = b"421 4.4.2 idle too long, closing\r\n"
    with pytest.raises(TransientDeliveryError) as info:  # the new connection gets 421 too: one retry, no more
        email.send(message(2))
    assert info.value.provider_code == "421" and scripted.connections == 2
    assert subjects_in(scripted) == ["message 1"]
    scripted.at_mail = None
    email.send(message(3))
    assert subjects_in(scripted) == ["message 1", "message 3"] and scripted.connections == 3


def test_the_deadline_cuts_off_a_reused_connection_and_nothing_is_retried(scripted, transport):
    email = transport(scripted.port, smtp_timeout_seconds=5, smtp_deadline_seconds=0.5)
    email.send(message(1))
    scripted.at_mail = b"stall"
    started = time.monotonic()
    with pytest.raises(TransientDeliveryError) as info:
        email.send(message(2))
    assert 0.5 <= time.monotonic() - started < 2.0
    assert str(info.value) == f"SMTP server 127.0.0.1:{scripted.port} did not finish the session within 0.5 s"
    assert scripted.connections == 1
    scripted.at_mail = None
    email.send(message(3))
    assert subjects_in(scripted) == ["message 1", "message 3"] and scripted.connections == 2


def test_a_refusal_at_mail_on_a_live_connection_is_not_retried(scripted, transport):
    email = transport(scripted.port)
    email.send(message(1))
    scripted.at_mail = b"451 4.3.0 sender check deferred\r\n"
    with pytest.raises(TransientDeliveryError) as info:
        email.send(message(2))
    assert info.value.provider_code == "451" and scripted.connections == 1  # the server answered: no retry


# --------------------------------------------------------- threads and fork


def test_many_threads_share_one_pool_and_every_message_arrives_once(serve, transport):
    controller, handler = serve()
    email = transport(controller.port, smtp_pool_size=4)
    errors: list[BaseException] = []
    start = threading.Barrier(12)

    def sender(t: int) -> None:
        try:
            start.wait()
            for n in range(10):
                email.send(message(f"{t}-{n}"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender, args=(t,)) for t in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    subjects = handler.subjects()
    assert sorted(subjects) == sorted(f"message {t}-{n}" for t in range(12) for n in range(10))
    assert len(set(subjects)) == 120  # exactly once each
    assert controller.connections < 120  # reused, though threads that found no idle connection opened one
    assert len(email._smtp_pool or ()) <= 4


def test_a_forked_child_never_uses_the_parents_connection(serve, transport):
    controller, handler = serve()
    email = transport(controller.port)
    email.send(message("parent-1"))
    pid = os.fork()
    if pid == 0:  # the child: its own connection, and the parent's left alone
        status = 1
        try:
            email.send(message("child"))
            email.close()
            status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    email.send(message("parent-2"))  # the parent's pooled session still works
    by_subject = dict(handler.delivered)
    assert by_subject["message child"] != by_subject["message parent-1"] == by_subject["message parent-2"]
    assert controller.connections == 2
    assert eventually(lambda: handler.quits == 1)  # the child's own session; the parent's was not ended by it


# ------------------------------------------------------------------ settings


@pytest.mark.parametrize(("key", "value"), [
    ("smtp_pool_size", -1), ("smtp_pool_size", 65), ("smtp_pool_max_age_seconds", 0),
    ("smtp_pool_max_messages", 0), ("smtp_pool_check_after_seconds", -1), ("smtp_pool_size", "many"),
])
def test_pool_settings_are_checked(tmp_path, key, value):
    with pytest.raises(ConfigurationError) as info:
        OtpPro(base_settings(f"sqlite:///{tmp_path}/s.sqlite3", providers={"email": {key: value}}),
               entry_points=False)
    assert info.value.key == f"providers.email.{key}"
