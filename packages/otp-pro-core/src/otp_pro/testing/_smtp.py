"""Real SMTP servers on loopback (aiosmtpd), the mailbox they fill, and reading codes from it."""

from __future__ import annotations

import email
import email.policy
import re
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest

from ._network import free_port

#: Login the ``smtp_login_server`` fixture accepts (the password is distinctive so a leak is found).
SMTP_USERNAME = "otp-sender"
SMTP_PASSWORD = "smtp-pa55-" + "w0rd" * 4 + "-never-logged"


def pytest_configure(config: pytest.Config) -> None:
    """Silence aiosmtpd's warning about AUTH without TLS, which ``smtp_login_server`` offers on loopback."""
    # aiosmtpd warns at every connection; the warning says nothing a test could act on.
    config.addinivalue_line("filterwarnings", "ignore:Requiring AUTH while not requiring TLS:UserWarning")


class Mailbox:
    """Messages received by the loopback SMTP server, parsed with the standard library's ``email``."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        #: Set to an SMTP reply ("451 try later") to refuse the next DATA with it.
        self.reply: str | None = None
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """aiosmtpd's handler hook: keep the message, or answer with :attr:`reply` once."""
        with self._lock:
            if self.reply is not None:
                reply, self.reply = self.reply, None
                return reply
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        """Messages whose To header contains ``address``, oldest first."""
        with self._lock:
            return [m for m in self.messages if address in str(m["To"])]

    def clear(self) -> None:
        """Forget every message and envelope, and any pending :attr:`reply`."""
        with self._lock:
            self.messages.clear()
            self.envelopes.clear()
            self.reply = None


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[str, int, Mailbox]]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 for the whole run: ``(host, port, mailbox)``."""
    # Imported here: aiosmtpd is in the test extra, not in the testing extra that loads this plugin.
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
    """The loopback server's mailbox, emptied for this test."""
    smtp_server[2].clear()
    return smtp_server[2]


@pytest.fixture(scope="session")
def smtp_login_server() -> Iterator[tuple[str, int, Mailbox]]:
    """A real SMTP server on 127.0.0.1 that requires AUTH (PLAIN/LOGIN without TLS, loopback only)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == SMTP_USERNAME.encode()
              and auth_data.password == SMTP_PASSWORD.encode())
        return AuthResult(success=ok, handled=False)

    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), authenticator=authenticator,
                            auth_required=True, auth_require_tls=False)
    controller.start()
    try:
        yield controller.hostname, controller.port, mailbox
    finally:
        controller.stop()


def mailed_text(mailbox: Mailbox, to: str) -> str:
    """The plain-text body of the newest message ``mailbox`` received for ``to``."""
    messages = mailbox.to(to)
    assert messages, f"no message to {to}"
    body = messages[-1].get_body(preferencelist=("plain",))
    assert body is not None, f"the newest message to {to} has no plain-text part"
    return str(body.get_content())


def mailed_code(mailbox: Mailbox, to: str, *, digits: int = 6) -> str:
    """The ``digits``-digit code in the plain-text body of the newest message ``mailbox`` received for ``to``."""
    match = re.search(rf"\b(\d{{{digits}}})\b", mailed_text(mailbox, to))
    assert match, "no code in the mail"
    return match.group(1)
