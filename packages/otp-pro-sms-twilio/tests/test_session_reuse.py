"""The transport's HTTP session (the official client's ``TwilioHttpClient``) is kept between sends.

Seen from the fake Messaging API's side: every request records the client's
(host, port), which stays the same while a kept-alive connection is reused.
"""

from __future__ import annotations

import os
import threading

import pytest
from twilio_support import MOBILE_GB

from otp_pro import Message


def message(n: int) -> Message:
    return Message(recipient=MOBILE_GB, subject="", text=f"{100000 + n} is your Example verification code.",
                   channel="sms_twilio:code")


@pytest.fixture
def transport(otp):
    return otp.transports["sms_twilio"]


def peers(twilio) -> list[tuple[str, int]]:
    return [r.peer for r in twilio.requests]


def test_sends_reuse_one_connection(transport, twilio):
    for n in range(5):
        transport.send(message(n))
    assert len(twilio.created) == 5 and len(set(peers(twilio))) == 1
    transport.close()
    transport.send(message(5))  # closed: the next send opens a new session
    assert len(set(peers(twilio))) == 2


def test_each_thread_keeps_its_own_session(transport, twilio):
    errors: list[BaseException] = []

    def sender(t: int) -> None:
        try:
            for n in range(4):
                transport.send(message(t * 10 + n))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and len(twilio.created) == 16
    assert sorted(m["body"][:6] for m in twilio.created) == sorted(str(100000 + t * 10 + n)
                                                                  for t in range(4) for n in range(4))
    assert len(set(peers(twilio))) == 4  # one kept-alive connection per thread, four messages on each


def test_a_forked_child_opens_its_own_connection(transport, twilio):
    transport.send(message(1))
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            transport.send(message(2))
            status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    transport.send(message(3))  # the parent's connection is still its own, and still works
    first, child, third = peers(twilio)
    assert child != first == third
