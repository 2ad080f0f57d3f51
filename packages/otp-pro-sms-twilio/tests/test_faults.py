"""Twilio faults through the public OtpPro API: the official client against real loopback servers.

Every error class the transport maps (each permanent Twilio code, other 4xx,
429, 5xx, unreadable 2xx answers, timeouts, refused and dropped connections,
TLS failures), 429 storms with and without ``Retry-After``. For each: the
member gets a typed :class:`~otp_pro.DeliveryError`, the challenge is
``failed`` and the code that went over the wire is refused, one
``delivery_failed`` audit event says why, the resend cooldown is not spent, the
failure counters do not move, and the next send through a healthy API works.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from twilio_support import AUTH_TOKEN, FakeTwilio, Reply, twilio_error

from otp_pro import DeliveryError, Member, OtpPro, PermanentDeliveryError, TransientDeliveryError
from otp_pro.storage.schema import challenges, members
from otp_pro.testing import free_port, tls_server_context
from otp_pro_sms_twilio.errors import PERMANENT_CODES
from otp_pro_sms_twilio.transport import parse_retry_after

CHANNEL = "sms_twilio:code"


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


def codes_in(bodies: list[str]) -> list[str]:
    return [m.group(1) for b in bodies if (m := re.search(r"\b(\d{6})\b", b))]


def enrolled(otp: OtpPro, ann: Member, clock: Any, twilio: FakeTwilio, *, via: OtpPro | None = None) -> None:
    """``ann`` set up with an SMS factor at her phone; the tests ask for codes by SMS (``channel=CHANNEL``).

    Only a factor the member proved is sent to, so the setup's code goes through the
    working fake ``twilio``: by ``via`` (an instance on the same database) when ``otp``
    itself points at a server that fails.
    """
    setup = via or otp
    setup.begin_setup(ann, CHANNEL)
    setup.complete_setup(ann, twilio.last_code())
    clock.advance(60)


def send(otp: OtpPro, ann: Member) -> Any:
    return otp.send_challenge(ann, channel=CHANNEL, ip="203.0.113.5")


def failures_of(otp: OtpPro, ann: Member) -> tuple[int, int]:
    with otp.db.read() as conn:
        row = conn.execute(members.select().where(members.c.member_id == ann.id)).one()
    return row.failures, row.consecutive_failures


def verify_challenges(otp: OtpPro) -> list[Any]:
    with otp.db.read() as conn:
        return conn.execute(challenges.select().where(challenges.c.purpose == "verify")
                            .order_by(challenges.c.id)).all()


def assert_failed_cleanly(otp: OtpPro, ann: Member, error: DeliveryError, *, provider_code: str, permanent: bool,
                          wire_codes: list[str], caplog: pytest.LogCaptureFixture) -> None:
    """One failed challenge, one delivery_failed event, no usable code, counters untouched, no secret shown."""
    assert error.transport == "sms_twilio" and error.provider_code == provider_code
    assert error.permanent is permanent
    assert isinstance(error, PermanentDeliveryError if permanent else TransientDeliveryError)
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    [row] = verify_challenges(otp)
    assert row.status == "failed" and row.error_code == provider_code and row.consumed_at is None
    [event] = otp.events(ann, kinds=["delivery_failed"])
    assert event.details["challenge_id"] == row.id and event.details["provider_code"] == provider_code
    assert event.details["permanent"] is permanent and event.details["error"] == type(error).__name__
    assert event.details["transport"] == "sms_twilio" and event.channel == CHANNEL
    assert failures_of(otp, ann) == (0, 0)
    texts = [str(error), repr(error), caplog.text, *(repr(e) for e in otp.events(limit=1000))]
    for text in texts:
        assert AUTH_TOKEN not in text
        for code in wire_codes:
            assert code not in text
        assert "+15005550001" not in text  # Twilio's own error text (it names numbers) is not copied
    for code in set(wire_codes):  # the code reached Twilio (and may reach the phone): it is refused
        result = otp.verify(ann, code)
        assert not result.ok and result.reason == "invalid"
    assert failures_of(otp, ann) == (len(set(wire_codes)), len(set(wire_codes)))


def assert_next_send_works(otp: OtpPro, twilio: FakeTwilio, ann: Member) -> None:
    """The 30 s cooldown was not spent by the failed challenge: a send right away goes through."""
    challenge = send(otp, ann)
    assert challenge.provider_message_id == twilio.created[-1]["sid"]
    result = otp.verify(ann, codes_in(twilio.bodies())[-1])
    assert result.ok and result.method == "code"


def _cases() -> list[Any]:
    permanent = [pytest.param(twilio_error(code, 401 if code == 20003 else 403 if code == 60605 else 400), code,
                              str(code), True, 1, meaning, id=f"permanent-{code}")
                 for code, meaning in PERMANENT_CODES.items()]
    return [
        *permanent,
        pytest.param(twilio_error(21606, 400), None, "21606", True, 1, "https://www.twilio.com/docs/errors/21606",
                     id="other-4xx"),
        pytest.param(twilio_error(20404, 404), None, "20404", True, 1, "Twilio refused the message", id="404"),
        pytest.param(Reply(400, "<html>Bad Request</html>"), None, "400", True, 1, "HTTP 400", id="4xx-not-json"),
        pytest.param(twilio_error(20429, 429, "Too Many Requests"), None, "20429", False, 3, "rate limiting",
                     id="429"),
        pytest.param(Reply(429, "slow down"), None, "429", False, 3, "rate limiting", id="429-not-json"),
        pytest.param(twilio_error(20500, 500), None, "20500", False, 3, "Twilio's API failed", id="500"),
        pytest.param(Reply(502, "<html>Bad Gateway</html>"), None, "502", False, 3, "HTTP 502", id="502"),
        pytest.param(Reply(503, "<html>Service Unavailable</html>"), None, "503", False, 3, "HTTP 503", id="503"),
        pytest.param(Reply(201, "<html>captive portal</html>"), None, "bad_response", False, 1, "not JSON",
                     id="2xx-not-json"),
        pytest.param(Reply(200, {"status": "queued"}), None, "bad_response", False, 1, "without a message SID",
                     id="2xx-without-sid"),
    ]


@pytest.mark.parametrize(("reply", "code", "provider_code", "permanent", "requests", "text"), _cases())
def test_every_api_error_class(make_otp, twilio, ann, clock, caplog, reply, code, provider_code, permanent, requests,
                               text):
    otp = make_otp(resend_cooldown_seconds=30)
    enrolled(otp, ann, clock, twilio)
    before = len(twilio.requests)
    twilio.reply(*[reply] * 3)
    with pytest.raises(DeliveryError) as info:
        send(otp, ann)
    error = info.value
    assert text in str(error)
    if code is not None:
        assert str(error).startswith(f"Twilio error {code}: ")
    sent = twilio.requests[before:]
    assert len(sent) == requests  # permanent errors and unreadable success answers are not retried
    wire = codes_in([r.form.get("Body", "") for r in sent])
    assert len(set(wire)) == 1  # retries carry the same code
    assert_failed_cleanly(otp, ann, error, provider_code=provider_code, permanent=permanent, wire_codes=wire,
                          caplog=caplog)
    twilio.replies.clear()
    assert_next_send_works(otp, twilio, ann)


# ----------------------------------------------------------- network faults


class DroppingServer:
    """Accepts a connection, reads the request, closes without an answer (or after a TLS handshake attempt)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.connections = 0
        self.bodies: list[str] = []
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.settimeout(2)
            try:
                if self.tls is not None:
                    try:
                        self.tls.wrap_socket(conn, server_side=True).close()
                    except (ssl.SSLError, OSError):
                        pass  # the client refuses the certificate: that is the point
                    continue
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
                while len(body) < length:
                    body += conn.recv(65536)
                self.bodies.append(body.decode())
            except OSError:
                pass
            finally:
                conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


@pytest.fixture
def dropping() -> Iterator[DroppingServer]:
    server = DroppingServer()
    yield server
    server.stop()


def test_a_dropped_connection_is_retried_then_fails(make_otp, twilio, ann, clock, caplog, dropping):
    otp = make_otp(resend_cooldown_seconds=30, sms={"api_base_url": f"http://127.0.0.1:{dropping.port}"})
    enrolled(otp, ann, clock, twilio, via=make_otp())
    with pytest.raises(TransientDeliveryError) as info:
        send(otp, ann)
    assert str(info.value) == f"127.0.0.1:{dropping.port} could not be reached"
    assert dropping.connections == 3
    wire = codes_in(dropping.bodies)
    assert len(wire) == 3 and len(set(wire)) == 1
    assert_failed_cleanly(otp, ann, info.value, provider_code="connection_error", permanent=False, wire_codes=wire,
                          caplog=caplog)


def test_a_certificate_that_does_not_verify_is_not_retried(make_otp, twilio, ann, clock, caplog, tmp_path):
    server = DroppingServer(tls=tls_server_context(tmp_path))
    try:
        otp = make_otp(resend_cooldown_seconds=30, sms={"api_base_url": f"https://127.0.0.1:{server.port}"})
        enrolled(otp, ann, clock, twilio, via=make_otp())
        with pytest.raises(TransientDeliveryError) as info:
            send(otp, ann)
        assert str(info.value) == f"TLS handshake with 127.0.0.1:{server.port} failed"
        assert server.connections == 1  # a certificate problem does not pass in a second
        assert_failed_cleanly(otp, ann, info.value, provider_code="tls_error", permanent=False, wire_codes=[],
                              caplog=caplog)
    finally:
        server.stop()


def test_connection_refused(make_otp, twilio, ann, clock, caplog):
    port = free_port()
    otp = make_otp(resend_cooldown_seconds=30, sms={"api_base_url": f"http://127.0.0.1:{port}"})
    enrolled(otp, ann, clock, twilio, via=make_otp())
    started = time.monotonic()
    with pytest.raises(TransientDeliveryError) as info:
        send(otp, ann)
    assert time.monotonic() - started < 2.0
    assert str(info.value) == f"127.0.0.1:{port} refused the connection"
    assert_failed_cleanly(otp, ann, info.value, provider_code="connection_refused", permanent=False, wire_codes=[],
                          caplog=caplog)


def test_a_server_that_stalls_past_the_timeout(make_otp, twilio, ann, clock, caplog):
    # Twilio may have created the message before the answer was lost: the member may get the
    # code, and it is refused like any code of a failed challenge.
    otp = make_otp(resend_cooldown_seconds=30, sms={"timeout_seconds": 0.2, "max_retries": 1})
    enrolled(otp, ann, clock, twilio)
    before = len(twilio.requests)
    twilio.reply(Reply(201, delay=3), Reply(201, delay=3))
    started = time.monotonic()
    with pytest.raises(TransientDeliveryError) as info:
        send(otp, ann)
    assert time.monotonic() - started < 2.0  # two attempts of 0.2 s, not two of 3 s
    assert str(info.value) == f"{twilio.url.removeprefix('http://')} did not answer within 0.2 s"
    wire = codes_in([r.form["Body"] for r in twilio.requests[before:]])
    assert len(wire) == 2
    assert_failed_cleanly(otp, ann, info.value, provider_code="timeout", permanent=False, wire_codes=wire,
                          caplog=caplog)
    assert_next_send_works(otp, twilio, ann)


# ---------------------------------------------------------------- 429 storms


def test_a_429_storm_without_retry_after_is_bounded_per_send(make_otp, twilio, ann, clock, caplog):
    otp = make_otp(resend_cooldown_seconds=30, max_sends_per_hour=5, max_attempts=20)
    enrolled(otp, ann, clock, twilio)
    before = len(twilio.requests)
    twilio.reply(*[twilio_error(20429, 429)] * 30)
    started = time.monotonic()
    for _ in range(10):  # ten sends while Twilio answers nothing but 429
        with pytest.raises(TransientDeliveryError) as info:
            send(otp, ann)
        assert info.value.provider_code == "20429" and info.value.retry_after is None
    assert time.monotonic() - started < 10
    assert len(twilio.requests) - before == 30  # 1 + max_retries each, never more
    rows = verify_challenges(otp)
    assert [r.status for r in rows] == ["failed"] * 10
    failed = otp.events(ann, kinds=["delivery_failed"])
    assert len(failed) == 10 and {e.details["provider_code"] for e in failed} == {"20429"}
    # None of the failed sends counted against the cooldown or the hourly cap of 5.
    assert otp.events(ann, kinds=["send_throttled"]) == []
    wire = set(codes_in([r.form["Body"] for r in twilio.requests[before:]]))
    assert len(wire) == 10
    for code in wire:
        assert otp.verify(ann, code).reason == "invalid"
    assert failures_of(otp, ann) == (10, 10)  # exactly the ten wrong codes, nothing for the failed sends
    assert AUTH_TOKEN not in caplog.text
    assert_next_send_works(otp, twilio, ann)


def test_a_short_retry_after_is_waited_out(make_otp, twilio, ann, clock):
    otp = make_otp(resend_cooldown_seconds=30, sms={"timeout_seconds": 2.0, "backoff_seconds": 0.01})
    enrolled(otp, ann, clock, twilio)
    before = len(twilio.requests)
    twilio.reply(Reply(429, {"code": 20429, "message": "Too Many Requests", "status": 429},
                       headers={"Retry-After": "1"}))
    started = time.monotonic()
    challenge = send(otp, ann)
    assert time.monotonic() - started >= 1.0  # Retry-After, not the 0.01 s backoff
    assert len(twilio.requests) - before == 2 and challenge.provider_message_id == twilio.created[-1]["sid"]
    assert otp.verify(ann, codes_in(twilio.bodies())[-1]).ok


def test_a_429_storm_with_a_long_retry_after_holds_further_sends_back(make_otp, twilio, ann, clock, caplog):
    otp = make_otp(resend_cooldown_seconds=30, sms={"timeout_seconds": 0.5})
    enrolled(otp, ann, clock, twilio)
    before = len(twilio.requests)
    twilio.reply(*[Reply(429, {"code": 20429, "message": "Too Many Requests", "status": 429},
                         headers={"Retry-After": "2"})] * 20)
    started = time.monotonic()
    with pytest.raises(TransientDeliveryError) as first:
        send(otp, ann)
    # 2 s is longer than this site waits in a request (timeout_seconds = 0.5): no retry, no sleep.
    assert str(first.value) == "Twilio is rate limiting requests (HTTP 429, error 20429); it asks to wait 2 s"
    assert first.value.retry_after == 2.0 and len(twilio.requests) - before == 1
    held = []
    for _ in range(9):
        with pytest.raises(TransientDeliveryError) as info:
            send(otp, ann)
        held.append(info.value)
    assert time.monotonic() - started < 1.5
    assert len(twilio.requests) - before == 1  # the storm did not grow: nine sends made no request
    assert all(e.provider_code == "20429" and 0.5 < (e.retry_after or 0) <= 2 for e in held)
    assert all(str(e).startswith("not sent: Twilio asked for no more requests for ") for e in held)
    failed = otp.events(ann, kinds=["delivery_failed"])
    assert len(failed) == 10 and all(not e.details["permanent"] for e in failed)
    assert [r.status for r in verify_challenges(otp)] == ["failed"] * 10
    assert failures_of(otp, ann) == (0, 0)
    # The last half second of the rest is short enough to wait out; then sends reach Twilio again.
    time.sleep(max(0.0, 1.6 - (time.monotonic() - started)))
    twilio.replies.clear()
    waiting = time.monotonic()
    assert_next_send_works(otp, twilio, ann)
    assert time.monotonic() - started >= 2.0 and time.monotonic() - waiting < 1.0
    assert len(twilio.requests) - before == 2


@pytest.mark.parametrize(("value", "expected"), [
    ("120", 120.0), (" 3 ", 3.0), ("0", 0.0), ("-5", 0.0), ("", None), (None, None), ("soon", None),
    ("nan", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0), ("999999999", 86_400.0),
])
def test_retry_after_parsing(value, expected):
    assert parse_retry_after(value) == expected


def test_retry_after_as_an_http_date():
    now = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.timezone.utc)
    assert parse_retry_after("Tue, 24 Nov 2026 12:00:30 GMT", now=now.timestamp()) == 30.0
