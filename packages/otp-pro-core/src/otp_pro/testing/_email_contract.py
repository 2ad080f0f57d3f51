"""The transport contract set up for the core's ``email`` transport, for templating and payload plugins."""

from __future__ import annotations

from typing import Any

import pytest

from .. import Member
from ._smtp import SMTP_PASSWORD, SMTP_USERNAME, Mailbox
from ._spies import PERMANENT, SUCCESS, TRANSIENT, Received
from ._transport_contract import TransportContract


class EmailTransportContract(TransportContract):
    """:class:`TransportContract` for the core's ``email`` transport, ready to subclass.

    The provider is a real SMTP server on loopback that checks the login
    (``smtp_password`` is the secret the contract looks for). Permanent and
    transient failures are the server's ``550`` and ``451`` answers to the message.
    A templating or payload plugin subclasses it in its own tests to show the
    ``email`` transport still keeps the contract with the plugin installed.
    """

    transport = "email"
    distribution = "otp-pro-core"
    secret_settings = ("smtp_password",)
    recipient_member = Member("contract-ann", email="ann@example.com", name="Ann Example")
    recipient = "ann@example.com"
    invalid_recipients = ("not-an-address", "ann@@example.com", "ann@example.com, bob@example.com", "")
    ignored_loggers = ("mail.log",)  # aiosmtpd logs what it receives, at DEBUG

    @pytest.fixture
    def provider(self, smtp_login_server: tuple[str, int, Mailbox]) -> tuple[str, int, Mailbox]:
        """The run's ``smtp_login_server``, its mailbox emptied for this test."""
        smtp_login_server[2].clear()
        return smtp_login_server

    @pytest.fixture
    def transport_settings(self, provider: tuple[str, int, Mailbox]) -> dict[str, Any]:
        """``providers.email`` pointing at the login server, with its username and password."""
        host, port, _ = provider
        return {"smtp_host": host, "smtp_port": port, "smtp_username": SMTP_USERNAME, "smtp_password": SMTP_PASSWORD,
                "from_address": "otp@example.com", "smtp_timeout_seconds": 5.0}

    def arrange(self, provider: tuple[str, int, Mailbox], outcome: str) -> None:
        """Make the server accept the next message, or refuse it with ``550`` (permanent) or ``451`` (transient)."""
        provider[2].reply = {
            SUCCESS: None, PERMANENT: "550 5.1.1 mailbox unavailable", TRANSIENT: "451 4.3.0 try again later",
        }[outcome]

    def received(self, provider: tuple[str, int, Mailbox]) -> list[Received]:
        """Every message the server accepted, with its plain-text part."""
        mailbox = provider[2]
        out = []
        for message in list(mailbox.messages):
            body = message.get_body(("plain",))
            out.append(Received(str(message["To"]), str(body.get_content()) if body is not None else ""))
        return out
