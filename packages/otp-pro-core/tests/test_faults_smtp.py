"""SMTP faults against the built-in ``email`` transport, on real loopback servers.

aiosmtpd (configured per test) answers 4xx/5xx at MAIL, RCPT and DATA and
refuses logins; a small scripted socket server does what aiosmtpd cannot be
made to do: close the connection in the middle of DATA or after it, stall past
the timeout, answer QUIT with an error. For every fault the member gets a
typed :class:`~otp_pro.DeliveryError`, the challenge is ``failed`` (its code,
read off the wire, is refused), a ``delivery_failed`` audit event records it,
the cooldown is not spent, the failure counters do not move, and the next send
through a healthy server works.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pyotp
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from core_support import base_settings, give_delivered_factor
from flow_client import flow_client

from otp_pro import DeliveryError, Member, OtpPro, PermanentDeliveryError, TransientDeliveryError
from otp_pro.storage.schema import challenges, members
from otp_pro.testing import free_port, page_csrf, tls_server_context

SMTP_USER = "mailer"
SMTP_PASSWORD = "smtp-pa55word-never-shown"
CODE = re.compile(rb"\b(\d{6})\b")


# ------------------------------------------------------------------ servers


class FaultyHandler:
    """aiosmtpd handler whose replies at MAIL, RCPT and DATA a test sets; ``None`` accepts."""

    def __init__(self) -> None:
        self.mail_reply: str | None = None
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None
        self.auth_reply: str | None = None  # None: the right password logs in, anything else gets 535
        self.delivered: list[bytes] = []
        self.refused_data: list[bytes] = []  # what the server saw of messages it refused at DATA

    def heal(self) -> None:
        self.mail_reply = self.rcpt_reply = self.data_reply = self.auth_reply = None

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            self.refused_data.append(envelope.content)
            return self.data_reply
        self.delivered.append(envelope.content)
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if self.auth_reply:
            return AuthResult(success=False, handled=False, message=self.auth_reply)
        ok = data.login == SMTP_USER.encode() and data.password == SMTP_PASSWORD.encode()
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def aiosmtpd_server() -> Iterator[tuple[int, FaultyHandler]]:
    handler = FaultyHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), authenticator=handler.authenticate,
                            auth_require_tls=False)
    controller.start()
    try:
        yield controller.port, handler
    finally:
        controller.stop()


class ScriptedSmtp:
    """A minimal SMTP server on 127.0.0.1 that misbehaves on cue (``fault``); ``None`` behaves.

    Faults: ``close_mid_data`` (read part of the message, then drop the connection),
    ``close_after_data`` (read all of it, then drop it without a reply), ``stall_greeting``,
    ``stall_after_data`` (read all of it, never answer), ``quit_error`` (accept, then answer
    QUIT with 500), ``trickle_greeting`` (a greeting of 200 bytes, one every 50 ms: each read
    is answered well inside any timeout, the whole greeting takes 10 s).
    """

    def __init__(self) -> None:
        self._fault: str | None = None
        self._open: set[socket.socket] = set()  # the sessions in progress (the transport's pool keeps them open)
        self.seen: list[bytes] = []  # the DATA bytes received, whole or in part
        self.delivered: list[bytes] = []
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def fault(self) -> str | None:
        return self._fault

    @fault.setter
    def fault(self, value: str | None) -> None:
        """A fault is read when a session starts; setting one ends the open sessions, as a server restarted
        with new behaviour would (the transport's next send finds its pooled connection closed)."""
        self._fault = value
        for conn in list(self._open):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> ScriptedSmtp:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        self._open.add(conn)
        try:
            self._converse(conn)
        finally:
            self._open.discard(conn)

    def _converse(self, conn: socket.socket) -> None:
        fault = self.fault
        with conn, conn.makefile("rb") as lines:
            if fault == "stall_greeting":
                self._stop.wait(10)
                return
            if fault == "trickle_greeting":
                for byte in b"220-" + b"x" * 194 + b"\r\n":
                    if self._stop.wait(0.05):
                        return
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:  # the client gave up
                        return
            conn.sendall(b"220 scripted ESMTP\r\n")
            for raw in lines:
                verb = raw.split(b" ", 1)[0].strip().upper()
                if verb in (b"EHLO", b"HELO"):
                    conn.sendall(b"250-scripted\r\n250 8BITMIME\r\n")
                elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                    conn.sendall(b"250 OK\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    if not self._data(conn, lines, fault):
                        return
                elif verb == b"QUIT":
                    conn.sendall(b"500 5.0.0 no goodbye for you\r\n" if fault == "quit_error" else b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"502 not implemented\r\n")

    def _data(self, conn: socket.socket, lines: Any, fault: str | None) -> bool:
        """Read the message; answer (True) or misbehave (False: the session ends)."""
        data = bytearray()
        for raw in lines:
            if raw == b".\r\n":
                break
            data += raw
            if fault == "close_mid_data" and raw == b"\r\n":  # the headers are in, the body is not
                self.seen.append(bytes(data))
                conn.shutdown(socket.SHUT_RDWR)
                return False
        self.seen.append(bytes(data))
        if fault == "close_after_data":
            conn.shutdown(socket.SHUT_RDWR)
            return False
        if fault == "stall_after_data":
            self._stop.wait(10)
            return False
        self.delivered.append(bytes(data))
        conn.sendall(b"250 2.0.0 queued\r\n")
        return True


@pytest.fixture
def scripted() -> Iterator[ScriptedSmtp]:
    with ScriptedSmtp() as server:
        yield server


# ------------------------------------------------------------------ helpers

ANN = Member(id="ann", email="ann@example.com", name="Ann")


@pytest.fixture
def smtp_otp(backend: str, clock: Any) -> Iterator[Callable[..., OtpPro]]:
    made: list[OtpPro] = []

    def factory(port: int, **email_settings: Any) -> OtpPro:
        providers = {"email": {"smtp_host": "127.0.0.1", "smtp_port": port, "from_address": "otp@example.com",
                               "smtp_timeout_seconds": 0.5, **email_settings}}
        settings = base_settings(backend, channels=["email:code", "totp"], default_channel="email:code",
                                 providers=providers, resend_cooldown_seconds=30, max_attempts=5)
        otp = OtpPro(settings, clock=clock, entry_points=False)
        made.append(otp)
        # A member with an authenticator app and an email factor who asks for a code by email (the email
        # factor written as its setup would: the servers here are scripted to fail).
        setup = otp.begin_setup(ANN, "totp")
        assert setup.secret is not None
        otp.complete_setup(ANN, pyotp.TOTP(setup.secret).at(clock()))
        give_delivered_factor(otp, ANN, "email:code")
        clock.advance(60)
        return otp

    yield factory
    for otp in made:
        otp.close()


def code_in(data: bytes) -> str | None:
    """The one-time code in (part of) a raw message, read from the body only."""
    head, _, body = data.partition(b"\r\n\r\n")
    if b"verification code" not in head:
        return None  # a security notice, not a code
    found = CODE.search(body)
    return found.group(1).decode() if found else None


def ours(caplog: pytest.LogCaptureFixture) -> str:
    """What otp-pro and the libraries it calls logged (the test servers' own DEBUG lines left out)."""
    return "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail.log"))


def failures_of(otp: OtpPro) -> tuple[int, int]:
    with otp.db.read() as conn:
        row = conn.execute(members.select().where(members.c.member_id == ANN.id)).one()
    return row.failures, row.consecutive_failures


def assert_failed_cleanly(otp: OtpPro, error: DeliveryError, *, provider_code: str, permanent: bool,
                          seen_code: str | None, caplog: pytest.LogCaptureFixture) -> None:
    """The delivery failed and nothing of the challenge is left usable, counted or unrecorded."""
    assert error.transport == "email" and error.provider_code == provider_code
    assert error.permanent is permanent
    assert isinstance(error, PermanentDeliveryError if permanent else TransientDeliveryError)
    # No chained smtplib exception (its text can hold the server's reply to the password).
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    with otp.db.read() as conn:
        rows = conn.execute(challenges.select().where(challenges.c.purpose == "verify")).all()
    [row] = rows
    assert row.status == "failed" and row.sent_at is None and row.consumed_at is None
    assert row.error_code == provider_code
    [event] = otp.events(ANN, kinds=["delivery_failed"])
    assert event.outcome == "failed" and event.channel == "email:code"
    assert event.details["challenge_id"] == row.id
    assert event.details["provider_code"] == provider_code and event.details["permanent"] is permanent
    assert event.details["error"] == type(error).__name__
    assert not [e for e in otp.events(ANN, kinds=["challenge_sent"]) if e.details.get("purpose") == "verify"]
    assert failures_of(otp) == (0, 0)  # a delivery failure is not a failed attempt
    texts = [str(error), repr(error), ours(caplog), *(str(e.details) for e in otp.events(limit=1000))]
    for text in texts:
        assert SMTP_PASSWORD not in text
        if seen_code:
            assert seen_code not in text
    if seen_code is not None:
        # The server saw the code; the member may even have it. It is refused, and counted as one wrong code.
        result = otp.verify(ANN, seen_code)
        assert not result.ok and result.reason == "invalid"
        assert failures_of(otp) == (1, 1) and result.attempts_remaining == 4


def send_failing(otp: OtpPro, kind: type[DeliveryError] = DeliveryError, within: float = 5.0) -> DeliveryError:
    started = time.monotonic()
    with pytest.raises(kind) as info:
        otp.send_challenge(ANN, channel="email:code", ip="203.0.113.7")
    assert time.monotonic() - started < within
    return info.value


def last_code_in(messages: list[bytes]) -> str:
    """The code of the newest code message in ``messages``."""
    for data in reversed(messages):
        code = code_in(data if b"\r\n" in data else data.replace(b"\n", b"\r\n"))
        if code is not None:
            return code
    raise AssertionError("no code message")


def assert_next_send_works(otp: OtpPro, delivered: list[bytes]) -> None:
    """Not throttled by the 30 s cooldown (the failed challenge was never sent), and its code works."""
    before = len(delivered)
    challenge = otp.send_challenge(ANN, channel="email:code")
    assert len(delivered) == before + 1
    code = last_code_in(delivered)
    result = otp.verify(ANN, code)
    assert result.ok and result.method == "code"
    [sent] = [e for e in otp.events(ANN, kinds=["challenge_sent"]) if e.details["challenge_id"] == challenge.id]
    assert sent.details["recipient"] == "a***@example.com"


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


# -------------------------------------------------------------------- tests


def test_refused_connection(smtp_otp, caplog, aiosmtpd_server):
    otp = smtp_otp(free_port())
    error = send_failing(otp, TransientDeliveryError)
    assert str(error).endswith("refused the connection")
    assert_failed_cleanly(otp, error, provider_code="connection_refused", permanent=False, seen_code=None,
                          caplog=caplog)


@pytest.mark.parametrize(("stage", "reply", "kind", "text"), [
    ("mail", "451 4.3.0 sender check deferred", TransientDeliveryError, "refused the sender"),
    ("mail", "553 5.1.8 sender domain does not exist", PermanentDeliveryError, "refused the sender"),
    ("mail", "421 4.3.2 shutting down", TransientDeliveryError, "refused the sender"),
    ("rcpt", "452 4.2.2 mailbox full", TransientDeliveryError, "refused the recipient"),
    ("rcpt", "550 5.1.1 no such user", PermanentDeliveryError, "refused the recipient"),
    ("data", "451 4.3.0 try again later", TransientDeliveryError, "answered"),
    ("data", "554 5.7.1 message rejected as spam", PermanentDeliveryError, "answered"),
])
def test_error_replies_at_mail_rcpt_and_data(smtp_otp, caplog, aiosmtpd_server, stage, reply, kind, text):
    port, handler = aiosmtpd_server
    otp = smtp_otp(port)
    setattr(handler, f"{stage}_reply", reply)
    error = send_failing(otp, kind)
    code = reply[:3]
    assert text in str(error) and f"127.0.0.1:{port}" in str(error)
    # The server's own words say what to do ("mailbox full" against "no such user"): in the error and the audit.
    assert str(error).endswith(f": {reply}") and error.provider_reply == reply
    assert otp.events(ANN, kinds=["delivery_failed"])[0].details["provider_reply"] == reply
    seen = code_in(handler.refused_data[-1]) if stage == "data" else None
    assert (seen is not None) is (stage == "data")
    assert_failed_cleanly(otp, error, provider_code=code, permanent=kind is PermanentDeliveryError, seen_code=seen,
                          caplog=caplog)
    handler.heal()
    assert_next_send_works(otp, handler.delivered)


def test_a_refusal_quoting_the_address_a_code_or_a_token_is_cleaned(smtp_otp, caplog, aiosmtpd_server):
    port, handler = aiosmtpd_server
    otp = smtp_otp(port)
    handler.rcpt_reply = ("550 5.1.1 <ann@example.com>: mailbox unavailable\tref 12345678 "
                          "token AbCdEfGhIjKlMnOpQrStUvWxYz0123 " + "see our policy " * 30)
    error = send_failing(otp, PermanentDeliveryError)
    words = error.provider_reply
    assert words is not None and words.startswith("550 5.1.1 <a***@example.com>: mailbox unavailable ref [redacted]")
    assert "token [redacted] see our policy" in words and len(words) == 160 and words.endswith("...")
    assert "ann@" not in str(error) and "12345678" not in str(error) and "AbCdEf" not in str(error)
    assert str(error).endswith(": " + words)
    [event] = otp.events(ANN, kinds=["delivery_failed"])
    assert event.details["provider_reply"] == words
    assert_failed_cleanly(otp, error, provider_code="550", permanent=True, seen_code=None, caplog=caplog)


@pytest.mark.parametrize(("reply", "kind", "code"), [
    (None, PermanentDeliveryError, "535"),  # the wrong password: aiosmtpd's own 535
    ("454 4.7.0 Temporary authentication failure", TransientDeliveryError, "454"),
])
def test_login_failures(smtp_otp, caplog, aiosmtpd_server, reply, kind, code):
    port, handler = aiosmtpd_server
    wrong = smtp_otp(port, smtp_username=SMTP_USER, smtp_password="wrong-" + SMTP_PASSWORD[::-1])
    handler.auth_reply = reply
    error = send_failing(wrong, kind)
    assert str(error) == f"SMTP login to 127.0.0.1:{port} was refused"
    assert_failed_cleanly(wrong, error, provider_code=code, permanent=kind is PermanentDeliveryError, seen_code=None,
                          caplog=caplog)
    assert "wrong-" not in ours(caplog)
    assert handler.delivered == [] and handler.refused_data == []
    # The right password through the same server works.
    handler.heal()
    right = smtp_otp(port, smtp_username=SMTP_USER, smtp_password=SMTP_PASSWORD)
    assert_next_send_works(right, handler.delivered)


def test_login_to_a_server_without_auth_is_a_clear_permanent_error(smtp_otp, caplog, scripted):
    otp = smtp_otp(scripted.port, smtp_username=SMTP_USER, smtp_password=SMTP_PASSWORD)
    error = send_failing(otp, PermanentDeliveryError)
    assert str(error) == f"SMTP server 127.0.0.1:{scripted.port} does not offer login (AUTH)"
    assert_failed_cleanly(otp, error, provider_code="not_supported", permanent=True, seen_code=None, caplog=caplog)


def test_starttls_with_a_certificate_that_does_not_verify(smtp_otp, caplog, tmp_path):
    handler = FaultyHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), tls_context=tls_server_context(tmp_path))
    controller.start()
    try:
        otp = smtp_otp(controller.port, smtp_starttls=True, smtp_username=SMTP_USER, smtp_password=SMTP_PASSWORD)
        error = send_failing(otp, PermanentDeliveryError)
        assert str(error) == f"SMTP server 127.0.0.1:{controller.port} sent a TLS certificate that does not verify"
        assert_failed_cleanly(otp, error, provider_code="tls_certificate", permanent=True, seen_code=None,
                              caplog=caplog)
        assert handler.delivered == []  # nothing, and no password, went over the unverified connection
    finally:
        controller.stop()


@pytest.mark.parametrize("fault", ["close_mid_data", "close_after_data"])
def test_server_closes_the_connection_during_data(smtp_otp, caplog, scripted, fault):
    otp = smtp_otp(scripted.port)
    scripted.fault = fault
    error = send_failing(otp, TransientDeliveryError)
    assert str(error) == f"SMTP server 127.0.0.1:{scripted.port} closed the connection"
    seen = code_in(scripted.seen[-1])
    # After the whole message the server holds the code, and might still deliver it: it is refused anyway.
    assert seen is not None or fault == "close_mid_data"
    assert_failed_cleanly(otp, error, provider_code="disconnected", permanent=False, seen_code=seen, caplog=caplog)
    scripted.fault = None
    assert_next_send_works(otp, scripted.delivered)


@pytest.mark.parametrize("fault", ["stall_greeting", "stall_after_data"])
def test_a_server_slower_than_the_timeout(smtp_otp, caplog, scripted, fault):
    otp = smtp_otp(scripted.port, smtp_timeout_seconds=0.3)
    scripted.fault = fault
    started = time.monotonic()
    error = send_failing(otp, TransientDeliveryError, within=2.0)
    assert time.monotonic() - started >= 0.3
    assert str(error) == f"SMTP server 127.0.0.1:{scripted.port} did not answer within 0.3 s"
    seen = code_in(scripted.seen[-1]) if fault == "stall_after_data" else None
    assert_failed_cleanly(otp, error, provider_code="timeout", permanent=False, seen_code=seen, caplog=caplog)
    scripted.fault = None
    assert_next_send_works(otp, scripted.delivered)


def test_a_server_that_answers_a_byte_at_a_time_is_cut_off_at_the_deadline(smtp_otp, caplog, scripted):
    # Every read gets a byte within 50 ms, far inside the 0.5 s timeout: only the session's
    # deadline stops it (the greeting alone would take 10 s).
    otp = smtp_otp(scripted.port, smtp_deadline_seconds=0.8)
    scripted.fault = "trickle_greeting"
    started = time.monotonic()
    error = send_failing(otp, TransientDeliveryError, within=2.5)
    assert time.monotonic() - started >= 0.8
    assert str(error) == f"SMTP server 127.0.0.1:{scripted.port} did not finish the session within 0.8 s"
    assert_failed_cleanly(otp, error, provider_code="timeout", permanent=False, seen_code=None, caplog=caplog)
    scripted.fault = None
    assert_next_send_works(otp, scripted.delivered)


def test_the_deadline_also_cuts_off_a_server_trickling_inside_tls(smtp_otp, caplog, tmp_path, monkeypatch):
    # Implicit TLS, with the server's certificate trusted: the timer shuts down the socket under the
    # TLS layer, which wakes the read that waits inside it.
    context = tls_server_context(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "cert.pem"))
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()

    def trickle(conn: socket.socket) -> None:
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"220-")
                for _ in range(100):  # 5 s, then the connection closes: a missing deadline fails, not hangs
                    if stop.wait(0.05):
                        break
                    tls.sendall(b"x")
        except OSError:  # the client gave up
            pass

    def serve() -> None:  # every connection (the setup's security notice connects too)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=trickle, args=(conn,), daemon=True).start()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        port = listener.getsockname()[1]
        otp = smtp_otp(port, smtp_ssl=True, smtp_deadline_seconds=0.8)
        started = time.monotonic()
        error = send_failing(otp, TransientDeliveryError, within=2.5)
        assert time.monotonic() - started >= 0.8
        assert str(error) == f"SMTP server 127.0.0.1:{port} did not finish the session within 0.8 s"
        assert_failed_cleanly(otp, error, provider_code="timeout", permanent=False, seen_code=None, caplog=caplog)
    finally:
        stop.set()
        server.join(5)
        listener.close()


def test_an_error_after_the_message_was_accepted_does_not_fail_the_delivery(smtp_otp, scripted):
    """QUIT answered with 500: the message was queued (250 after DATA), so the code was delivered."""
    otp = smtp_otp(scripted.port)
    scripted.fault = "quit_error"
    before = len(scripted.delivered)
    challenge = otp.send_challenge(ANN, channel="email:code")
    assert len(scripted.delivered) == before + 1 and otp.events(ANN, kinds=["delivery_failed"]) == []
    assert challenge.provider_message_id
    assert otp.verify(ANN, last_code_in(scripted.delivered)).ok


def test_the_setup_code_is_not_usable_after_a_failed_delivery(smtp_otp, caplog, aiosmtpd_server, clock):
    port, handler = aiosmtpd_server
    otp = smtp_otp(port)
    otp.remove_factor(ANN, next(f.id for f in otp.factors(ANN) if f.kind == "email:code"))  # set up again below
    handler.data_reply = "451 4.3.0 try again later"
    with pytest.raises(TransientDeliveryError):
        otp.begin_setup(ANN, "email:code")
    seen = code_in(handler.refused_data[-1])
    assert seen is not None
    with pytest.raises(Exception) as info:
        otp.complete_setup(ANN, seen)
    assert type(info.value).__name__ == "InvalidCode"
    assert [f.kind for f in otp.factors(ANN)] == ["totp"]  # still the authenticator app alone
    handler.heal()
    otp.begin_setup(ANN, "email:code")  # not throttled: the failed setup code was never sent
    assert otp.complete_setup(ANN, last_code_in(handler.delivered)) == []  # a second factor: no new backup codes
    assert [f.kind for f in otp.factors(ANN)] == ["totp", "email:code"]


# ---------------------------------------------------------------- the web page


def test_the_verify_page_says_the_code_could_not_be_sent(tmp_path, clock, scripted):
    otp = OtpPro(base_settings(f"sqlite:///{tmp_path}/web.sqlite3", channels=["email:code", "totp"],
                               default_channel="email:code", providers={"email": {
                                   "smtp_host": "127.0.0.1", "smtp_port": scripted.port,
                                   "smtp_timeout_seconds": 0.3}}), clock=clock, entry_points=False)
    try:
        otp.begin_setup(ANN, "email:code")
        otp.complete_setup(ANN, last_code_in(scripted.delivered))
        clock.advance(60)
        client = flow_client(otp, ANN)
        for fault in ("close_after_data", "stall_greeting"):
            scripted.fault = fault
            signed_in = client.get("/login")
            assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/otp/verify"
            page = client.get("/otp/verify")
            assert page.status_code == 200
            resent = client.post("/otp/send", data={"csrf_token": page_csrf(page.text)}, follow_redirects=True)
            assert resent.status_code == 200
            # The wording (and the fallback it offers) belongs to the web layer; the page must say it failed.
            assert "The code could not be sent" in resent.text and "Email" in resent.text
            api = client.post("/otp/api/send", json={}, headers={"X-CSRF-Token": page_csrf(page.text)})
            assert api.status_code == 502 and api.get_json()["error"] == "delivery"
            seen = code_in(scripted.seen[-1]) if scripted.seen else None
            if seen and fault == "close_after_data":
                wrong = client.post("/otp/verify", data={"code": seen, "csrf_token": page_csrf(page.text)})
                assert wrong.status_code == 200 and "That code is not correct." in wrong.text
        assert len(otp.events(ANN, kinds=["delivery_failed"])) == 6  # login, the button and the API, twice
        scripted.fault = None
        page = client.get("/otp/verify")
        sent = client.post("/otp/send", data={"csrf_token": page_csrf(page.text)}, follow_redirects=True)
        assert "We sent a code by Email to a***@example.com." in sent.text
        done = client.post("/otp/verify", data={"code": last_code_in(scripted.delivered),
                                                "csrf_token": page_csrf(page.text)})
        assert done.status_code == 303
    finally:
        otp.close()
