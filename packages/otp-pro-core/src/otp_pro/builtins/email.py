"""The ``email`` transport: SMTP through the standard library, plain text (HTML when a plugin renders one)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import PermanentDeliveryError, RecipientUnavailable, TransientDeliveryError
from ..hookspecs import hookimpl
from ..member import Member
from ..settings import Setting
from ..transports import Message, Receipt, Transport, mask_recipient

if TYPE_CHECKING:
    import smtplib
    from email.message import EmailMessage

_Client = TypeVar("_Client", bound="smtplib.SMTP")

# smtplib, ssl and email are imported where a message is built or sent, not here: plugin
# discovery (``otp-pro providers list``) imports this module and needs none of them.


def _check_address(value: str) -> None:
    import email.utils

    _, addr = email.utils.parseaddr(value)
    if not _looks_like_address(addr):
        raise ValueError(f"must be an email address, got {value!r}")


def _looks_like_address(addr: str) -> bool:
    if not addr or any(c.isspace() or c in "\r\n<>,;" for c in addr) or addr.count("@") != 1:
        return False
    local, domain = addr.split("@")
    return bool(local) and "." in domain.strip(".") and len(addr) <= 254


class EmailTransport(Transport):
    """Sends mail over SMTP (``smtplib``): STARTTLS or implicit TLS, optional login."""

    name = "email"
    label = "Email"
    message_format = "email"
    settings = (
        Setting("smtp_host", str, "localhost", "SMTP server"),
        Setting("smtp_port", int, None, "port (default 465 with smtp_ssl, else 587 with smtp_starttls, else 25)",
                minimum=1, maximum=65535),
        Setting("smtp_username", str, None, "login name"),
        Setting("smtp_password", str, None, "login password", secret=True),
        Setting("smtp_starttls", bool, False, "upgrade the connection with STARTTLS"),
        Setting("smtp_ssl", bool, False, "connect with implicit TLS"),
        Setting("smtp_timeout_seconds", float, 10.0, "connect and command timeout", minimum=0.1, maximum=300),
        Setting("smtp_deadline_seconds", float, 30.0,
                "the whole SMTP session must end within this, however slowly the server answers",
                minimum=0.1, maximum=600),
        Setting("from_address", str, "otp-pro@localhost", "sender address", check=_check_address),
        Setting("from_name", str, None, "sender display name (default: site_name)"),
    )

    def recipient(self, member: Member) -> str:
        if not member.email:
            raise RecipientUnavailable("no email address on file")
        if not _looks_like_address(member.email):
            raise RecipientUnavailable("the email address on file is not valid")
        return member.email

    def normalize_recipient(self, recipient: str) -> str:
        if not _looks_like_address(recipient):
            raise RecipientUnavailable(f"{recipient!r} is not an email address")
        return recipient

    def check(self) -> list[str]:
        if self.config["smtp_ssl"] and self.config["smtp_starttls"]:
            return ["providers.email: smtp_ssl and smtp_starttls cannot both be on"]
        if self.config.get("smtp_password") and not self.config.get("smtp_username"):
            return ["providers.email: smtp_password is set but smtp_username is not"]
        return []

    @property
    def port(self) -> int:
        if self.config["smtp_port"]:
            return int(self.config["smtp_port"])
        if self.config["smtp_ssl"]:
            return 465
        return 587 if self.config["smtp_starttls"] else 25

    def build(self, message: Message) -> EmailMessage:
        """The MIME message: text, plus an HTML alternative when present."""
        import email.utils
        from email.message import EmailMessage

        mail = EmailMessage()
        from_name = self.config.get("from_name") or self.otp.settings.site_name
        mail["From"] = email.utils.formataddr((from_name, self.config["from_address"]))
        mail["To"] = message.recipient
        mail["Subject"] = message.subject
        mail["Date"] = email.utils.formatdate(localtime=False)
        domain = self.config["from_address"].rpartition("@")[2] or "localhost"
        mail["Message-ID"] = email.utils.make_msgid(domain=domain)
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

    def send(self, message: Message) -> Receipt:
        import smtplib

        mail = self.build(message)
        client: smtplib.SMTP | None = None
        # smtp_timeout_seconds bounds each read; a server that answers a byte at a time could still
        # hold the request for ever, so the whole session also has a deadline (_Deadline).
        deadline = _Deadline(self.config["smtp_deadline_seconds"])
        try:
            client, refused = self._submit(mail, deadline)
            # The message is accepted: a failed goodbye (QUIT answered with an error, a dropped
            # connection, the deadline) must not turn a delivered code into a failed one.
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                pass
        finally:
            deadline.cancel()
            if client is not None:
                client.close()
        if refused:
            code, reply = next(iter(refused.values()))
            words = reply_text(str(code), reply)
            raise PermanentDeliveryError(
                "SMTP server refused the recipient" + (f": {words}" if words else ""), transport=self.name,
                provider_code="refused", provider_reply=words,
            )
        return Receipt(provider_message_id=mail["Message-ID"])

    def _submit(self, mail: EmailMessage, deadline: _Deadline) -> tuple[smtplib.SMTP, dict[str, Any]]:
        """Connect, log in and hand ``mail`` over; every failure raised as a typed :class:`DeliveryError`."""
        import smtplib
        import ssl

        host, port = self.config["smtp_host"], self.port
        timeout = self.config["smtp_timeout_seconds"]
        stage = "connect"
        client: smtplib.SMTP | None = None
        try:
            if self.config["smtp_ssl"]:
                client = deadline.watching(smtplib.SMTP_SSL)(host, port, timeout=timeout,
                                                             context=ssl.create_default_context())
            else:
                client = deadline.watching(smtplib.SMTP)(host, port, timeout=timeout)
            deadline.client = client
            if self.config["smtp_starttls"]:
                stage = "STARTTLS"
                client.starttls(context=ssl.create_default_context())
            username = self.config.get("smtp_username")
            if username:
                stage = "login (AUTH)"
                client.login(username, self.config.secret("smtp_password") or "")
            stage = "send"
            return client, client.send_message(mail)
        except smtplib.SMTPAuthenticationError as exc:
            # 535 (wrong credentials) is permanent; 454 (temporary authentication failure) may pass.
            error = _by_code(str(exc.smtp_code), f"SMTP login to {host}:{port} was refused", self.name)
        except smtplib.SMTPNotSupportedError:
            error = PermanentDeliveryError(f"SMTP server {host}:{port} does not offer {stage}", transport=self.name,
                                           provider_code="not_supported")
        except smtplib.SMTPRecipientsRefused as exc:
            answers = sorted((str(code), reply) for code, reply in exc.recipients.values())
            code, reply = answers[0] if answers else ("550", b"")
            error = _by_code(code, f"SMTP server {host}:{port} refused the recipient", self.name, reply)
        except smtplib.SMTPSenderRefused as exc:
            error = _by_code(str(exc.smtp_code), f"SMTP server {host}:{port} refused the sender", self.name,
                             exc.smtp_error)
        except smtplib.SMTPResponseException as exc:
            error = _by_code(str(exc.smtp_code), f"SMTP server {host}:{port} answered", self.name, exc.smtp_error)
        except smtplib.SMTPServerDisconnected as exc:
            # smtplib turns a read that timed out into "Connection unexpectedly closed: timed out".
            if isinstance(exc.__context__, TimeoutError):
                error = self._timeout(host, port, timeout)
            else:
                error = TransientDeliveryError(f"SMTP server {host}:{port} closed the connection", transport=self.name,
                                               provider_code="disconnected")
        except TimeoutError:
            error = self._timeout(host, port, timeout)
        except ssl.SSLCertVerificationError:
            # A certificate that does not verify (self-signed, wrong host name) will not verify on a retry.
            error = PermanentDeliveryError(f"SMTP server {host}:{port} sent a TLS certificate that does not verify",
                                           transport=self.name, provider_code="tls_certificate")
        except ssl.SSLError:
            error = TransientDeliveryError(f"TLS with SMTP server {host}:{port} failed", transport=self.name,
                                           provider_code="tls_error")
        except ConnectionRefusedError:
            error = TransientDeliveryError(f"SMTP server {host}:{port} refused the connection", transport=self.name,
                                           provider_code="connection_refused")
        except (OSError, smtplib.SMTPException) as exc:
            error = TransientDeliveryError(f"SMTP delivery to {host}:{port} failed: {type(exc).__name__}",
                                           transport=self.name, provider_code="error")
        if deadline.expired.is_set():
            error = TransientDeliveryError(
                f"SMTP server {host}:{port} did not finish the session within {deadline.seconds:g} s",
                transport=self.name, provider_code="timeout")
        if client is not None:
            client.close()
        raise error

    def _timeout(self, host: str, port: int, timeout: float) -> TransientDeliveryError:
        return TransientDeliveryError(
            f"SMTP server {host}:{port} did not answer within {timeout:g} s", transport=self.name,
            provider_code="timeout",
        )

    def dry_run_parameters(self, message: Message) -> dict[str, Any]:
        return {
            "smtp_host": self.config["smtp_host"],
            "smtp_port": self.port,
            "smtp_starttls": self.config["smtp_starttls"],
            "smtp_ssl": self.config["smtp_ssl"],
            "smtp_username": self.config.get("smtp_username"),
            "smtp_password": "********" if self.config.get("smtp_password") else None,
            "from": self.config["from_address"],
            "to": message.recipient,
            "subject": message.subject,
            "html": message.html is not None,
        }


class _Deadline:
    """Ends an SMTP session that runs past ``seconds``: a timer shuts its socket down, which wakes
    the read that is waiting (``expired`` then says why the session failed)."""

    def __init__(self, seconds: float) -> None:
        import threading

        self.seconds = seconds
        self.expired = threading.Event()
        self.client: Any = None  # the smtplib client once made: its socket changes with STARTTLS
        self._socket: Any = None  # the socket it connected with, before the client is known
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watching(self, base: type[_Client]) -> type[_Client]:
        """``base`` (smtplib.SMTP or SMTP_SSL) whose connection is known to this deadline as soon as it is made."""
        deadline = self

        class Watched(base):  # type: ignore[valid-type,misc]
            def _get_socket(self, host: str, port: int, timeout: float) -> Any:
                sock = super()._get_socket(host, port, timeout)
                deadline._socket = sock
                if deadline.expired.is_set():  # expired while connecting
                    deadline._shut(sock)
                return sock

        return Watched

    def _expire(self) -> None:
        self.expired.set()
        current = getattr(self.client, "sock", None)
        self._shut(current if current is not None else self._socket)

    @staticmethod
    def _shut(sock: Any) -> None:
        import socket

        if sock is None:
            return
        try:
            # The plain socket call, also on a TLS socket: the TLS state stays with the reader.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:  # already closed
            pass

    def cancel(self) -> None:
        self._timer.cancel()


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


@hookimpl
def otp_pro_register_transports(register):  # type: ignore[no-untyped-def]
    register(EmailTransport)
