"""Fixtures: a real SMTP server on 127.0.0.1 (aiosmtpd) and OtpPro instances pointed at it.

Copied in small from the core's test fixtures: this package's tests run with
only the core and this package installed, where the core's conftest is not importable.
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from otp_pro import OtpPro

SECRET_KEY = "html-email-test-key-" + "x" * 32
NOW = datetime(2026, 11, 23, 12, 0, 10, tzinfo=timezone.utc)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mailbox:
    """Messages received by the loopback SMTP server, parsed with the stdlib email package."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.messages.append(
                email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[arg-type]
            )
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if address in str(m["To"])]

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[str, int, Mailbox]]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 for the whole run."""
    from aiosmtpd.controller import Controller

    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.hostname, controller.port, mailbox
    finally:
        controller.stop()


@pytest.fixture
def mailbox(smtp_server: tuple[str, int, Mailbox]) -> Mailbox:
    smtp_server[2].clear()
    return smtp_server[2]


def base_settings(database_url: str, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "secret_key": SECRET_KEY,
        "database_url": database_url,
        "site_name": "Example",
        "support_email": "help@example.com",
        "channels": ["email:code", "outbox:code"],
        "default_channel": "email:code",
        "resend_cooldown_seconds": 0,
        "max_sends_per_hour": 1000,
        "max_sends_per_hour_per_recipient": 1000,
    }
    settings.update(overrides)
    return settings


@pytest.fixture
def make_otp(
    tmp_path: Path, smtp_server: tuple[str, int, Mailbox]
) -> Iterator[Callable[..., OtpPro]]:
    """Build OtpPro instances (each on its own SQLite file) whose ``email`` transport uses the loopback server.

    ``make_otp(html_email={...}, plugins=[...], **core_settings)``.
    """
    made: list[OtpPro] = []
    host, port, _ = smtp_server

    def factory(*, plugins: Any = (), html_email: dict[str, Any] | None = None, **overrides: Any) -> OtpPro:
        providers = {"email": {"smtp_host": host, "smtp_port": port, "from_address": "otp@example.com"}}
        if html_email is not None:
            providers["html_email"] = html_email
        overrides.setdefault("providers", providers)
        url = f"sqlite:///{tmp_path}/otp{len(made)}.sqlite3"
        otp = OtpPro(base_settings(url, **overrides), plugins=plugins, clock=lambda: NOW)
        made.append(otp)
        return otp

    yield factory
    for otp in made:
        otp.close()
