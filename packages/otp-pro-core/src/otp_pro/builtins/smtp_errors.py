"""What an SMTP failure means: the typed error a member and an operator see, and whether a retry is safe.

Used by the ``email`` transport (``email.py``). ``smtplib`` and ``ssl`` are imported
inside the functions: plugin discovery imports the transport, which imports this.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from ..transports import mask_recipient

if TYPE_CHECKING:
    from .smtp_deadline import Deadline


class Stage:
    """How far a send got: the step named in a "does not offer" error, and whether ``DATA`` was sent."""

    __slots__ = ("data_sent", "name")

    def __init__(self) -> None:
        self.name = "connect"
        self.data_sent = False


def dropped_before_data(exc: BaseException, stage: Stage) -> bool:
    """Whether ``exc``, raised on a reused session, shows a session the server ended before it took the message.

    True only before ``DATA`` was sent (the server cannot have queued anything) and for a
    closed connection (a reset, a broken pipe, end of file, TLS ended) or ``421`` ("closing
    the channel", what a server that timed out an idle session answers). A timeout is not
    one: the server may be alive and slow, and the deadline is partly spent.
    """
    import smtplib
    import ssl

    if stage.data_sent:
        return False
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return not isinstance(exc.__context__, TimeoutError)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return any(code == 421 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code == 421
    return isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, ssl.SSLEOFError,
                            ssl.SSLZeroReturnError))


def delivery_error(exc: BaseException, stage: Stage, deadline: Deadline, *, host: str, port: int, timeout: float,
                   transport: str) -> DeliveryError:
    """``exc`` (from smtplib, ssl or the socket) as the typed error a member and an operator see."""
    import smtplib
    import ssl

    error: DeliveryError
    if deadline.expired.is_set():
        return TransientDeliveryError(
            f"SMTP server {host}:{port} did not finish the session within {deadline.seconds:g} s",
            transport=transport, provider_code="timeout")
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        # 535 (wrong credentials) is permanent; 454 (temporary authentication failure) may pass.
        error = _by_code(str(exc.smtp_code), f"SMTP login to {host}:{port} was refused", transport)
    elif isinstance(exc, smtplib.SMTPNotSupportedError):
        error = PermanentDeliveryError(f"SMTP server {host}:{port} does not offer {stage.name}",
                                       transport=transport, provider_code="not_supported")
    elif isinstance(exc, smtplib.SMTPRecipientsRefused):
        answers = sorted((str(code), reply) for code, reply in exc.recipients.values())
        code, reply = answers[0] if answers else ("550", b"")
        error = _by_code(code, f"SMTP server {host}:{port} refused the recipient", transport, reply)
    elif isinstance(exc, smtplib.SMTPSenderRefused):
        error = _by_code(str(exc.smtp_code), f"SMTP server {host}:{port} refused the sender", transport,
                         exc.smtp_error)
    elif isinstance(exc, smtplib.SMTPResponseException):
        error = _by_code(str(exc.smtp_code), f"SMTP server {host}:{port} answered", transport, exc.smtp_error)
    elif isinstance(exc, smtplib.SMTPServerDisconnected):
        # smtplib turns a read that timed out into "Connection unexpectedly closed: timed out".
        if isinstance(exc.__context__, TimeoutError):
            error = _timeout(host, port, timeout, transport)
        else:
            error = TransientDeliveryError(f"SMTP server {host}:{port} closed the connection",
                                           transport=transport, provider_code="disconnected")
    elif isinstance(exc, TimeoutError):
        error = _timeout(host, port, timeout, transport)
    elif isinstance(exc, ssl.SSLCertVerificationError):
        # A certificate that does not verify (self-signed, wrong host name) will not verify on a retry.
        error = PermanentDeliveryError(f"SMTP server {host}:{port} sent a TLS certificate that does not verify",
                                       transport=transport, provider_code="tls_certificate")
    elif isinstance(exc, ssl.SSLError):
        error = TransientDeliveryError(f"TLS with SMTP server {host}:{port} failed", transport=transport,
                                       provider_code="tls_error")
    elif isinstance(exc, ConnectionRefusedError):
        error = TransientDeliveryError(f"SMTP server {host}:{port} refused the connection", transport=transport,
                                       provider_code="connection_refused")
    else:
        error = TransientDeliveryError(f"SMTP delivery to {host}:{port} failed: {type(exc).__name__}",
                                       transport=transport, provider_code="error")
    return error


def _timeout(host: str, port: int, timeout: float, transport: str) -> TransientDeliveryError:
    return TransientDeliveryError(f"SMTP server {host}:{port} did not answer within {timeout:g} s",
                                  transport=transport, provider_code="timeout")


#: Longest server reply kept in an error and its audit record: a reply names a cause in a line; more is
#: usually a quoted message or a URL.
REPLY_MAX = 160
# A server's reply may quote what it refused: an address (masked), a code or a link token (redacted).
_ADDRESS = re.compile(r"[^\s<>\"'(),;:\[\]]+@[^\s<>\"'(),;:\[\]]+")
_DIGITS = re.compile(r"\d{6,}")
_TOKEN = re.compile(r"[A-Za-z0-9_\-+/=]{20,}")


def reply_text(code: str, reply: bytes | str | None) -> str | None:
    """The server's reply as one clean line, ``550 5.1.1 mailbox unavailable``, with nothing secret in it.

    Kept: printable characters, at most :data:`REPLY_MAX` of them. Masked: email addresses.
    Redacted: runs of 6 or more digits (a one-time code has at least 6) and of 20 or more
    token characters (a sign-in link's token). Never called with the reply to a login,
    which can quote the credentials.
    """
    if reply is None:
        return None
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    text = _ADDRESS.sub(lambda m: mask_recipient(m.group(0)), text)
    text = _TOKEN.sub("[redacted]", _DIGITS.sub("[redacted]", text))
    line = f"{code} {text}".strip()
    return line if len(line) <= REPLY_MAX else line[:REPLY_MAX - 3] + "..."


def _by_code(code: str, text: str, transport: str,
             reply: bytes | str | None = None) -> TransientDeliveryError | PermanentDeliveryError:
    words = reply_text(code, reply)
    # Operators need the server's own words ("mailbox unavailable" against "message rejected as spam")
    # to act on a refusal; the code alone does not say which.
    if words:
        text = f"{text}: {words}"
    kind = TransientDeliveryError if code.startswith("4") else PermanentDeliveryError
    return kind(text, transport=transport, provider_code=code, provider_reply=words)
