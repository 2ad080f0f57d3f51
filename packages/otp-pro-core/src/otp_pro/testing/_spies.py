"""What the transport contract arranges and observes: outcomes, received messages, payloads, leaks."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from .. import hookimpl

#: How the fake provider answers the next send (``TransportContract.arrange``).
SUCCESS = "success"
PERMANENT = "permanent"
TRANSIENT = "transient"


@dataclass(frozen=True)
class Received:
    """One message as the provider's fake received it: to whom, and its text (where the code or link is)."""

    recipient: str
    text: str


class PayloadSpy:
    """A listener the contract adds to its instance: every payload (code, link) put in a message."""

    __name__ = "otp_pro_testing_payload_spy"

    def __init__(self) -> None:
        self.payloads: list[str] = []

    @hookimpl
    def otp_pro_message_variables(self, variables: Mapping[str, Any]) -> None:
        """Record the message's payload, if it has one."""
        if variables.get("payload"):
            self.payloads.append(str(variables["payload"]))


def assert_no_leak(secrets_: Sequence[str], texts: Mapping[str, str]) -> None:
    """Fail, naming where, if any of ``secrets_`` appears in one of ``texts`` (``{where: text}``).

    A secret made of digits counts only as a whole number, so a code does not match
    inside a longer one (a timestamp, an id).
    """
    for secret in {s for s in secrets_ if s}:
        pattern = rf"(?<!\d){re.escape(secret)}(?!\d)" if secret.isdigit() else re.escape(secret)
        for where, text in texts.items():
            assert not re.search(pattern, text), f"a secret ({len(secret)} characters) appears in {where}"


def captured_log(caplog: pytest.LogCaptureFixture, ignored_loggers: Sequence[str]) -> str:
    """The records ``caplog`` took during the test's setup and call, as text, without ``ignored_loggers``'."""
    records = [*caplog.get_records("setup"), *caplog.get_records("call")]
    kept = [r for r in records
            if not any(r.name == n or r.name.startswith(n + ".") for n in ignored_loggers)]
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(r) for r in kept)
