"""The wire form of the ``email`` transport's messages, written directly instead of through ``EmailMessage``.

``email.message.EmailMessage`` with ``email.policy.default`` parses every header it
is given through the header registry and folds it again when the message is
flattened; for a one-time code that is most of the cost of a send. A code message is
always the same shape (a text part, maybe an HTML alternative, a handful of
headers), so :class:`MessageWriter` writes that shape as bytes:

- what never changes between messages (the encoded ``From``, the fixed headers) is
  prepared once, when the transport is made;
- ``Subject`` and long or non-ASCII header values are encoded with ``email.header``
  (RFC 2047, folded); short ASCII values are written as they are;
- bodies are ``7bit`` when they are ASCII with short lines, else quoted-printable
  (``binascii.b2a_qp``, C code): 7-bit clean, so no server needs ``8BITMIME``.

A recipient or an extra header that is not ASCII (an internationalised address needs
``SMTPUTF8``) is rare: such a message is built by ``EmailMessage`` as before
(:func:`mime_message`), flattened with the UTF-8 policy.
"""

from __future__ import annotations

import binascii
import email.utils
import secrets
from dataclasses import dataclass
from email.header import Header
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from email.message import EmailMessage

    from ..transports import Message

_CRLF = "\r\n"
#: RFC 5322's limit for a line (998 characters and CRLF); a longer body line is quoted-printable.
_MAX_LINE = 998
#: A header line at most this long is written as it is; a longer one is folded by ``email.header``.
_FOLD_AT = 78


@dataclass(frozen=True)
class OutgoingMail:
    """One message ready for SMTP: the envelope, the bytes of the message and its ``Message-ID``."""

    sender: str
    recipient: str
    data: bytes
    message_id: str
    #: True when an address is not ASCII: the server must offer ``SMTPUTF8``.
    smtputf8: bool = False


def _no_line_breaks(name: str, value: str) -> str:
    # The same refusal as EmailMessage's: a line break in a value would start a header of its own.
    if "\r" in value or "\n" in value:
        raise ValueError(f"header {name!r}: values may not contain linefeed or carriage return characters")
    return value


def header_line(name: str, value: str) -> str:
    """``Name: value`` and CRLF, RFC 2047-encoded and folded when the value is not short ASCII."""
    _no_line_breaks(name, value)
    if value.isascii() and len(name) + 2 + len(value) <= _FOLD_AT:
        return f"{name}: {value}{_CRLF}"
    encoded = Header(value, "us-ascii" if value.isascii() else "utf-8", header_name=name).encode(linesep=_CRLF)
    return f"{name}: {encoded}{_CRLF}"


def _body(text: str) -> tuple[str, bytes]:
    """``(Content-Transfer-Encoding, encoded body with CRLF line ends)`` for ``text``."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n")
    if not lines.endswith("\n"):
        lines += "\n"  # as EmailMessage.set_content: a body ends with a line break
    if lines.isascii() and max(map(len, lines.split("\n"))) <= _MAX_LINE:
        return "7bit", lines.replace("\n", _CRLF).encode("ascii")
    encoded = binascii.b2a_qp(lines.encode("utf-8"), istext=True)  # keeps "\n" line ends, soft-breaks at 76
    return "quoted-printable", encoded.replace(b"\n", b"\r\n")


def _part_headers(subtype: str, cte: str) -> bytes:
    return (f'Content-Type: text/{subtype}; charset="utf-8"{_CRLF}'
            f"Content-Transfer-Encoding: {cte}{_CRLF}").encode("ascii")


class MessageWriter:
    """Writes the ``email`` transport's messages; one per transport, made with its settings."""

    def __init__(self, from_name: str, from_address: str) -> None:
        self.from_name = from_name
        # The envelope's sender is the bare address, also when the setting was given as "Name <address>".
        self.sender = email.utils.parseaddr(from_address)[1] or from_address
        self.domain = from_address.rpartition("@")[2] or "localhost"
        # formataddr with a charset encodes a non-ASCII display name (RFC 2047) and quotes specials.
        self.from_header = email.utils.formataddr((from_name, self.sender), charset="utf-8")
        # The headers every message carries unchanged, written once (a plugin's header of the same name
        # replaces one of them, as EmailMessage.replace_header did).
        self._fixed_lines = (f"From: {self.from_header}{_CRLF}Auto-Submitted: auto-generated{_CRLF}"
                             f"X-Auto-Response-Suppress: All{_CRLF}")

    def write(self, message: Message) -> OutgoingMail:
        """``message`` as an :class:`OutgoingMail`; a :class:`ValueError` for a header value with a line break."""
        message_id = email.utils.make_msgid(domain=self.domain)
        if not (message.recipient.isascii() and self.sender.isascii()
                and all(k.isascii() and v.isascii() for k, v in message.headers.items())):
            return self._international(message, message_id)
        date = email.utils.formatdate(localtime=False)
        if message.headers:
            message_id, head = self._head_with(message, message_id, date)
        else:
            head = (self._fixed_lines + f"To: {_no_line_breaks('To', message.recipient)}{_CRLF}"
                    + header_line("Subject", message.subject) + f"Date: {date}{_CRLF}Message-ID: {message_id}{_CRLF}")
        head += f"MIME-Version: 1.0{_CRLF}"
        text_cte, text = _body(message.text)
        if not message.html:
            data = head.encode("ascii") + _part_headers("plain", text_cte) + b"\r\n" + text
        else:
            html_cte, html = _body(message.html)
            # The CRLF before each delimiter belongs to the delimiter, not to the part (RFC 2046 5.1.1).
            # 128 random bits: no body can hold the marker by chance, and quoted-printable escapes every "=".
            boundary = "===============" + secrets.token_hex(16) + "=="
            marker = b"--" + boundary.encode("ascii")
            head += f'Content-Type: multipart/alternative; boundary="{boundary}"{_CRLF}'
            data = b"".join((
                head.encode("ascii"), b"\r\n",
                marker, b"\r\n", _part_headers("plain", text_cte), b"\r\n", text,
                b"\r\n", marker, b"\r\n", _part_headers("html", html_cte), b"\r\n", html,
                b"\r\n", marker, b"--\r\n",
            ))
        return OutgoingMail(self.sender, message.recipient, data, message_id)

    def _head_with(self, message: Message, message_id: str, date: str) -> tuple[str, str]:
        """The header lines when a plugin adds headers (``Message.headers``): its values win over the transport's."""
        values = {name.lower(): (name, value) for name, value in (
            ("From", self.from_header), ("To", message.recipient), ("Subject", message.subject), ("Date", date),
            ("Message-ID", message_id), ("Auto-Submitted", "auto-generated"), ("X-Auto-Response-Suppress", "All"))}
        for name, value in message.headers.items():
            values[name.lower()] = (values.get(name.lower(), (name, ""))[0], value)
        head = "".join(f"{n}: {v}{_CRLF}" if n == "From" and v == self.from_header else header_line(n, v)
                       for n, v in values.values())
        return values["message-id"][1], head

    def _international(self, message: Message, message_id: str) -> OutgoingMail:
        import email.policy
        from email.generator import BytesGenerator
        from io import BytesIO

        mail = mime_message(self, message, message_id)
        out = BytesIO()
        BytesGenerator(out, policy=email.policy.SMTPUTF8).flatten(mail, linesep=_CRLF)
        return OutgoingMail(self.sender, message.recipient, out.getvalue(), str(mail["Message-ID"]), smtputf8=True)


def mime_message(writer: MessageWriter, message: Message, message_id: str | None = None) -> EmailMessage:
    """``message`` as an ``EmailMessage`` (``email.policy.default``): the readable, slower construction."""
    from email.message import EmailMessage

    mail = EmailMessage()
    mail["From"] = email.utils.formataddr((writer.from_name, writer.sender))
    mail["To"] = message.recipient
    mail["Subject"] = message.subject
    mail["Date"] = email.utils.formatdate(localtime=False)
    mail["Message-ID"] = message_id or email.utils.make_msgid(domain=writer.domain)
    mail["Auto-Submitted"] = "auto-generated"
    mail["X-Auto-Response-Suppress"] = "All"
    for key, value in message.headers.items():
        if key in mail:
            mail.replace_header(key, value)
        else:
            mail[key] = value
    mail.set_content(message.text)
    if message.html:
        mail.add_alternative(message.html, subtype="html")
    return mail
