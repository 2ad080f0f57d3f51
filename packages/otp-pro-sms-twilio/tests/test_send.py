"""The official twilio client against a real HTTP server on 127.0.0.1: requests, errors, retries, timeouts."""

from __future__ import annotations

import logging
import time

import pytest
from twilio_support import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, MOBILE_GB, SERVICE_SID, FakeTwilio, Reply, twilio_error

from otp_pro import DeliveryError, Message, PermanentDeliveryError, TransientDeliveryError
from otp_pro.testing import free_port

CODE = "493817"
BODY = f"{CODE} is your Example verification code. It expires in 10 min."


def message(to: str = MOBILE_GB) -> Message:
    return Message(recipient=to, subject="", text=BODY, channel="sms_twilio:code", sensitive=(CODE,))


@pytest.fixture
def transport(otp):
    return otp.transports["sms_twilio"]


@pytest.fixture(autouse=True)
def _debug_logs(caplog):
    # Everything the twilio client, requests and urllib3 log is captured, so that
    # each test can check that no secret reached a log line.
    caplog.set_level(logging.DEBUG)


def assert_nothing_secret(*texts: str) -> None:
    for text in texts:
        assert AUTH_TOKEN not in text
        assert CODE not in text
        assert BODY not in text


def send_failing(transport, kind=DeliveryError) -> DeliveryError:
    with pytest.raises(kind) as info:
        transport.send(message())
    assert info.value.transport == "sms_twilio"
    # No Twilio or requests exception chained: their texts and URLs stay out of tracebacks.
    assert info.value.__cause__ is None and (info.value.__context__ is None or info.value.__suppress_context__)
    return info.value


def test_a_message_is_created_with_the_official_client(transport, twilio, caplog):
    receipt = transport.send(message())
    [request] = twilio.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.auth == (ACCOUNT_SID, AUTH_TOKEN)  # HTTP Basic, as Twilio wants
    assert request.form == {"To": MOBILE_GB, "From": FROM_NUMBER, "Body": BODY}
    assert request.headers["User-Agent"].startswith("twilio-python/")
    assert receipt.provider_message_id == twilio.created[0]["sid"]
    assert receipt.provider_message_id.startswith("SM")
    assert receipt.detail == {"status": "queued", "segments": "1"}
    assert_nothing_secret(caplog.text)


def test_messaging_service_sid_replaces_from(make_otp, twilio):
    transport = make_otp(sms={"from_number": None, "messaging_service_sid": SERVICE_SID}).transports["sms_twilio"]
    transport.send(message())
    assert twilio.requests[0].form == {"To": MOBILE_GB, "MessagingServiceSid": SERVICE_SID, "Body": BODY}


def test_twilio_edge_and_region_variables_do_not_move_the_configured_url(make_otp, twilio, monkeypatch):
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    make_otp().transports["sms_twilio"].send(message())
    assert len(twilio.requests) == 1


def test_api_base_url_may_carry_a_path(make_otp):
    proxy = FakeTwilio(prefix="/twilio/v1").start()
    try:
        transport = make_otp(sms={"api_base_url": proxy.url + "/"}).transports["sms_twilio"]
        assert transport.send(message()).provider_message_id == proxy.created[0]["sid"]
        assert proxy.requests[0].path == f"/twilio/v1/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    finally:
        proxy.stop()


def test_a_wrong_url_is_a_permanent_404(make_otp, twilio):
    transport = make_otp(sms={"api_base_url": twilio.url + "/nothing-here"}).transports["sms_twilio"]
    error = send_failing(transport, PermanentDeliveryError)
    assert error.provider_code == "20404" and len(twilio.requests) == 1


@pytest.mark.parametrize(("code", "status", "meaning"), [
    (21211, 400, "not a valid phone number"),
    (21610, 400, "unsubscribed"),
    (21614, 400, "not a mobile number"),
    (21608, 400, "trial account"),
    (21408, 400, "geographic permissions"),
    (60605, 403, "geographic permissions"),
    (20003, 401, "auth token"),
])
def test_permanent_errors_fail_at_once_with_the_twilio_code(transport, twilio, caplog, code, status, meaning):
    twilio.reply(twilio_error(code, status))
    error = send_failing(transport, PermanentDeliveryError)
    assert error.permanent and error.provider_code == str(code)
    assert f"Twilio error {code}" in str(error) and meaning in str(error)
    assert len(twilio.requests) == 1  # not retried
    # Twilio's own text (which names the number) is not copied into the error.
    assert "+15005550001" not in str(error)
    assert_nothing_secret(str(error), repr(error), caplog.text)


def test_a_wrong_auth_token_is_refused_by_the_server_as_20003(make_otp, twilio, caplog):
    transport = make_otp(sms={"auth_token": "wrong-" + AUTH_TOKEN[::-1]}).transports["sms_twilio"]
    error = send_failing(transport, PermanentDeliveryError)
    assert error.provider_code == "20003" and len(twilio.requests) == 1
    assert "wrong-" not in str(error) and "wrong-" not in caplog.text


def test_other_client_errors_are_permanent_and_point_at_twilios_page(transport, twilio):
    twilio.reply(twilio_error(21606, 400, "The From phone number is not a valid, SMS-capable inbound phone number"))
    error = send_failing(transport, PermanentDeliveryError)
    assert error.provider_code == "21606" and "https://www.twilio.com/docs/errors/21606" in str(error)
    assert len(twilio.requests) == 1


def test_a_429_storm_is_retried_with_backoff_until_it_passes(make_otp, twilio, caplog):
    transport = make_otp(sms={"max_retries": 3, "backoff_seconds": 0.05}).transports["sms_twilio"]
    twilio.reply(twilio_error(20429, 429, "Too Many Requests"), twilio_error(20429, 429), Reply(429, "slow down"))
    started = time.monotonic()
    receipt = transport.send(message())
    elapsed = time.monotonic() - started
    assert len(twilio.requests) == 4 and receipt.provider_message_id == twilio.created[0]["sid"]
    # Waits of 0.05, 0.1 and 0.2 s, each less up to a quarter of jitter.
    assert elapsed >= 0.75 * (0.05 + 0.1 + 0.2)
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 3
    assert "attempt 1 of 4 failed (20429)" in retries[0] and "attempt 3 of 4 failed (429)" in retries[2]
    assert_nothing_secret(caplog.text)


def test_retries_are_bounded(transport, twilio):
    twilio.reply(*[twilio_error(20429, 429)] * 5)
    error = send_failing(transport, TransientDeliveryError)
    assert error.provider_code == "20429" and not error.permanent
    assert len(twilio.requests) == 3  # max_retries = 2


def test_max_retries_zero_tries_once(make_otp, twilio):
    transport = make_otp(sms={"max_retries": 0}).transports["sms_twilio"]
    twilio.reply(twilio_error(20429, 429))
    assert send_failing(transport, TransientDeliveryError).provider_code == "20429"
    assert len(twilio.requests) == 1


@pytest.mark.parametrize(("reply", "provider_code"), [
    (twilio_error(20500, 500, "An internal server error has occurred"), "20500"),
    (Reply(502, "<html>Bad Gateway</html>"), "502"),
    (Reply(503, "<html>Service Unavailable</html>"), "503"),
])
def test_server_errors_are_transient_and_retried(transport, twilio, reply, provider_code):
    twilio.reply(reply, reply, reply)
    error = send_failing(transport, TransientDeliveryError)
    assert error.provider_code == provider_code and len(twilio.requests) == 3
    twilio.reply(reply)
    assert transport.send(message()).provider_message_id  # one failure, then the retry succeeds
    assert len(twilio.requests) == 5


def test_a_slow_server_times_out(make_otp, twilio, caplog):
    transport = make_otp(sms={"timeout_seconds": 0.2, "max_retries": 0}).transports["sms_twilio"]
    twilio.reply(Reply(201, delay=2))
    started = time.monotonic()
    error = send_failing(transport, TransientDeliveryError)
    assert time.monotonic() - started < 1.5
    assert error.provider_code == "timeout" and "did not answer within 0.2 s" in str(error)
    assert_nothing_secret(str(error), caplog.text)


def test_a_timeout_is_retried(make_otp, twilio):
    # Twilio may have accepted the first request before the answer was lost: the retry
    # can deliver the same code twice, which costs a message but is harmless.
    transport = make_otp(sms={"timeout_seconds": 0.2}).transports["sms_twilio"]
    twilio.reply(Reply(201, delay=2))
    assert transport.send(message()).provider_message_id == twilio.created[-1]["sid"]
    assert len(twilio.requests) == 2


def test_a_closed_port_is_connection_refused(make_otp, caplog):
    transport = make_otp(sms={"api_base_url": f"http://127.0.0.1:{free_port()}"}).transports["sms_twilio"]
    error = send_failing(transport, TransientDeliveryError)
    assert error.provider_code == "connection_refused" and "refused the connection" in str(error)
    assert len([r for r in caplog.records if "retrying" in r.getMessage()]) == 2
    assert_nothing_secret(str(error), caplog.text)


@pytest.mark.parametrize("reply", [Reply(201, "<html>hello</html>"), Reply(200, {"status": "queued"})])
def test_an_unreadable_success_answer_is_not_retried(transport, twilio, reply):
    twilio.reply(reply)
    error = send_failing(transport, TransientDeliveryError)
    assert error.provider_code == "bad_response" and len(twilio.requests) == 1


def test_an_unconfigured_transport_refuses_to_send(make_otp):
    otp = make_otp(providers={}, channels=["totp"], default_channel="totp")
    error = send_failing(otp.transports["sms_twilio"], PermanentDeliveryError)
    assert error.provider_code == "not_configured"


def test_backoff_doubles_with_jitter(make_otp):
    transport = make_otp(sms={"backoff_seconds": 1.0}).transports["sms_twilio"]
    for attempt, full in [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0)]:
        delays = [transport.backoff(attempt) for _ in range(50)]
        assert all(0.75 * full <= d <= full for d in delays)
        assert len(set(delays)) > 1
    assert make_otp(sms={"backoff_seconds": 0}).transports["sms_twilio"].backoff(3) == 0


def test_each_thread_has_its_own_client(transport, twilio):
    import threading

    results = []
    threads = [threading.Thread(target=lambda: results.append(transport.send(message()))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and len({r.provider_message_id for r in results}) == 4
    assert len(twilio.requests) == 4


def test_close_drops_the_connections_and_a_later_send_reconnects(transport, twilio):
    transport.send(message())
    transport.close()
    transport.close()  # twice is fine
    assert transport.send(message()).provider_message_id == twilio.created[-1]["sid"]
    assert len(twilio.requests) == 2


def test_dry_run_parameters(transport):
    params = transport.dry_run_parameters(message())
    assert params["url"] == f"{transport.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert params["account_sid"] == ACCOUNT_SID and params["auth_token"] == "********"
    assert params["To"] == MOBILE_GB and params["From"] == FROM_NUMBER and "MessagingServiceSid" not in params
    assert params["body_characters"] == len(BODY) and params["encoding"] == "GSM-7" and params["segments"] == 1
    assert_nothing_secret(str(params))
