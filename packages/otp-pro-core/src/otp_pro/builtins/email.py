"""The ``email`` transport: SMTP through the standard library, plain text (HTML when a plugin renders one)."""

from __future__ import annotations

import email.utils
import smtplib
import ssl
from email.message import EmailMessage
from typing import Any

from ..errors import PermanentDeliveryError, RecipientUnavailable, TransientDeliveryError
from ..hookspecs import hookimpl
from ..member import Member
from ..settings import Setting
from ..transports import Message, Receipt, Transport


def _check_address(value: str) -> None:
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
        mail = self.build(message)
        host, port = self.config["smtp_host"], self.port
        timeout = self.config["smtp_timeout_seconds"]
        try:
            client: smtplib.SMTP
            if self.config["smtp_ssl"]:
                client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(host, port, timeout=timeout)
            with client:
                if self.config["smtp_starttls"]:
                    client.starttls(context=ssl.create_default_context())
                username = self.config.get("smtp_username")
                if username:
                    client.login(username, self.config.secret("smtp_password") or "")
                refused = client.send_message(mail)
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentDeliveryError(
                f"SMTP login to {host}:{port} was refused", transport=self.name, provider_code=str(exc.smtp_code)
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({str(code) for code, _ in exc.recipients.values()})
            code = codes[0] if codes else "550"
            raise _by_code(code, f"SMTP server {host}:{port} refused the recipient", self.name) from None
        except smtplib.SMTPSenderRefused as exc:
            raise _by_code(str(exc.smtp_code), f"SMTP server {host}:{port} refused the sender", self.name) from None
        except smtplib.SMTPResponseException as exc:
            raise _by_code(
                str(exc.smtp_code), f"SMTP server {host}:{port} answered {exc.smtp_code}", self.name
            ) from None
        except smtplib.SMTPServerDisconnected:
            raise TransientDeliveryError(
                f"SMTP server {host}:{port} closed the connection", transport=self.name, provider_code="disconnected"
            ) from None
        except TimeoutError:
            raise TransientDeliveryError(
                f"SMTP server {host}:{port} did not answer within {timeout:g} s",
                transport=self.name,
                provider_code="timeout",
            ) from None
        except ConnectionRefusedError:
            raise TransientDeliveryError(
                f"SMTP server {host}:{port} refused the connection",
                transport=self.name,
                provider_code="connection_refused",
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientDeliveryError(
                f"SMTP delivery to {host}:{port} failed: {type(exc).__name__}",
                transport=self.name,
                provider_code="error",
            ) from None
        if refused:
            raise PermanentDeliveryError(
                "SMTP server refused the recipient", transport=self.name, provider_code="refused"
            )
        return Receipt(provider_message_id=mail["Message-ID"])

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


def _by_code(code: str, text: str, transport: str) -> TransientDeliveryError | PermanentDeliveryError:
    if code.startswith("4"):
        return TransientDeliveryError(text, transport=transport, provider_code=code)
    return PermanentDeliveryError(text, transport=transport, provider_code=code)


@hookimpl
def otp_pro_register_transports(register):  # type: ignore[no-untyped-def]
    register(EmailTransport)
