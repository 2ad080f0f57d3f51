"""The ``outbox`` transport: keeps messages in memory for development, demos and tests.

It is never offered unless listed in ``channels`` (it delivers nothing to a real
person). Messages live in the instance's memory only, and in ``directory`` as
``.eml`` files when that is set (so a second process, such as a demo page, can show them).
"""

from __future__ import annotations

import email.utils
import threading
from email.message import EmailMessage
from pathlib import Path

from ..hookspecs import hookimpl
from ..i18n import N_
from ..member import Member
from ..settings import Setting
from ..transports import Message, Receipt, Transport


class OutboxTransport(Transport):
    """Development transport: nothing leaves the process."""

    name = "outbox"
    label = N_("Development outbox")
    message_format = "email"
    offered_by_default = False
    settings = (
        Setting("directory", str, None, "folder to also write each message to as an .eml file"),
        Setting("max_messages", int, 1000, "messages kept in memory (oldest dropped)", minimum=1, maximum=1_000_000),
    )

    def __init__(self, config, otp):  # type: ignore[no-untyped-def]
        super().__init__(config, otp)
        self.messages: list[Message] = []
        self._lock = threading.Lock()
        self._counter = 0

    def recipient(self, member: Member) -> str:
        return member.email or f"{member.id}@outbox.invalid"

    def send(self, message: Message) -> Receipt:
        with self._lock:
            self._counter += 1
            number = self._counter
            self.messages.append(message)
            del self.messages[: -self.config["max_messages"]]
        directory = self.config.get("directory")
        if directory:
            folder = Path(directory)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{number:06d}.eml").write_bytes(bytes(self._mime(message)))
        return Receipt(provider_message_id=f"outbox-{number}")

    def _mime(self, message: Message) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = email.utils.formataddr((self.otp.settings.site_name, "outbox@localhost"))
        mail["To"] = message.recipient
        mail["Subject"] = message.subject
        mail["Date"] = email.utils.formatdate()
        mail.set_content(message.text)
        if message.html:
            mail.add_alternative(message.html, subtype="html")
        return mail

    def last(self, recipient: str | None = None) -> Message | None:
        """The newest message, optionally to ``recipient``."""
        with self._lock:
            for message in reversed(self.messages):
                if recipient is None or message.recipient == recipient:
                    return message
        return None

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()


@hookimpl
def otp_pro_register_transports(register):  # type: ignore[no-untyped-def]
    register(OutboxTransport)
