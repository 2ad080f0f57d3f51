"""The ``email`` transport: SMTP through the standard library, plain text (HTML when a plugin renders one)."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from ..errors import DeliveryError, RecipientUnavailable
from ..hookspecs import hookimpl
from ..i18n import L_, N_
from ..member import Member
from ..settings import Setting
from ..transports import Message, Receipt, Transport
from .smtp_errors import REPLY_MAX, Stage, delivery_error, dropped_before_data, reply_text

__all__ = ["REPLY_MAX", "EmailTransport", "reply_text"]  # reply_text and REPLY_MAX: where they always were

if TYPE_CHECKING:
    import smtplib
    import ssl
    from email.message import EmailMessage

    from ..core import OtpPro
    from ..transports import ProviderConfig
    from .email_message import MessageWriter, OutgoingMail
    from .smtp_deadline import Deadline
    from .smtp_pool import Session, SmtpPool

# smtplib, ssl and email are imported where a message is built or sent, not here: plugin
# discovery (``otp-pro providers list``) imports this module and needs none of them.

log = logging.getLogger("otp_pro")


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
    label = N_("Email")
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
        Setting("smtp_pool_size", int, 2, "SMTP connections kept open between sends (0: one connection per message)",
                minimum=0, maximum=64),
        Setting("smtp_pool_max_age_seconds", float, 300.0, "a kept connection is closed once this old",
                minimum=1, maximum=86400),
        Setting("smtp_pool_max_messages", int, 100, "a kept connection is closed after this many messages",
                minimum=1, maximum=100000),
        Setting("smtp_pool_check_after_seconds", float, 5.0,
                "a kept connection idle this long is checked with NOOP before it carries a message",
                minimum=0, maximum=3600),
    )

    def __init__(self, config: ProviderConfig, otp: OtpPro):
        super().__init__(config, otp)
        self._writer: MessageWriter | None = None
        self._tls: ssl.SSLContext | None = None
        self._smtp_pool: SmtpPool | None = None  # made by the first send
        self._pool_lock = threading.Lock()

    def recipient(self, member: Member) -> str:
        if not member.email:
            raise RecipientUnavailable(N_("no email address on file"))
        if not _looks_like_address(member.email):
            raise RecipientUnavailable(N_("the email address on file is not valid"))
        return member.email

    def normalize_recipient(self, recipient: str) -> str:
        if not _looks_like_address(recipient):
            raise RecipientUnavailable(L_("%(address)s is not an email address", address=repr(recipient)))
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

    # ------------------------------------------------------------ the message

    @property
    def writer(self) -> MessageWriter:
        """What writes this transport's messages: ``From`` and the fixed headers are prepared once, here."""
        if self._writer is None:
            from .email_message import MessageWriter

            from_name = self.config.get("from_name") or self.otp.settings.site_name
            self._writer = MessageWriter(from_name, self.config["from_address"])
        return self._writer

    def build(self, message: Message) -> EmailMessage:
        """The MIME message that :meth:`send` hands over (text, plus an HTML alternative when present), parsed.

        For previews and tests: :meth:`send` writes the same bytes without parsing them.
        """
        import email
        import email.policy

        mail = self.writer.write(message)
        return email.message_from_bytes(mail.data, policy=email.policy.default)

    # ------------------------------------------------------------ sending

    def send(self, message: Message) -> Receipt:
        mail = self.writer.write(message)
        # smtp_timeout_seconds bounds each read; a server that answers a byte at a time could still
        # hold the request for ever, so the whole send (a retry included) also has a deadline.
        from .smtp_deadline import Deadline

        deadline = Deadline(self.config["smtp_deadline_seconds"])
        try:
            self._deliver(mail, deadline)
        finally:
            deadline.cancel()
        return Receipt(provider_message_id=mail.message_id)

    def _pool(self) -> SmtpPool | None:
        if not self.config["smtp_pool_size"]:
            return None
        pool = self._smtp_pool
        if pool is not None:
            return pool
        with self._pool_lock:
            if self._smtp_pool is None:
                from .smtp_pool import SmtpPool

                self._smtp_pool = SmtpPool(self.config["smtp_pool_size"], self.config["smtp_pool_max_age_seconds"],
                                           self.config["smtp_pool_max_messages"],
                                           self.config["smtp_pool_check_after_seconds"])
            return self._smtp_pool

    def _deliver(self, mail: OutgoingMail, deadline: Deadline) -> None:
        """Hand ``mail`` over on a pooled session, or on a new one; every failure raised as a typed error.

        A pooled session that the server dropped while it was idle is found when ``MAIL`` or
        ``RCPT`` fails: the server has not taken the message, so it goes once more on a new
        session. Once ``DATA`` is sent the outcome of a failure is unknown (the server may have
        queued the message): no retry, or the member could get the code twice.
        """
        import smtplib

        pool = self._pool()
        stage = Stage()
        if pool is not None:
            session = pool.checkout(deadline.watch)
            if session is not None:
                try:
                    deadline.watch(session.client)
                    self._transfer(session.client, mail, stage)
                except (OSError, smtplib.SMTPException) as exc:
                    pool.discard(session)
                    if not dropped_before_data(exc, stage) or deadline.expired.is_set():
                        raise self._error(exc, stage, deadline) from None
                    log.info("otp-pro email: the server closed an idle SMTP connection (%s); sending on a new one",
                             type(exc).__name__)
                    stage = Stage()
                else:
                    self._keep(pool, session, deadline)
                    return
        client: smtplib.SMTP | None = None
        try:
            client = self._connect(deadline, stage)
            self._transfer(client, mail, stage)
        except (OSError, smtplib.SMTPException) as exc:
            if client is not None:
                client.close()
            raise self._error(exc, stage, deadline) from None
        if pool is not None:
            self._keep(pool, pool.adopt(client), deadline)
            return
        # The message is accepted: a failed goodbye (QUIT answered with an error, a dropped
        # connection, the deadline) must not turn a delivered code into a failed one.
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()

    @staticmethod
    def _keep(pool: SmtpPool, session: Session, deadline: Deadline) -> None:
        """The message went: ``session`` back to ``pool``, unless the deadline shut its socket as it ended."""
        deadline.cancel()
        if deadline.expired.is_set():
            pool.discard(session)
        else:
            pool.checkin(session)

    def _connect(self, deadline: Deadline, stage: Stage) -> smtplib.SMTP:
        """A new session: connected (implicit TLS or STARTTLS when set), greeted and logged in."""
        import smtplib

        from .smtp_pool import new_client

        host, port = self.config["smtp_host"], self.port
        tls = self._tls_context() if self.config["smtp_ssl"] or self.config["smtp_starttls"] else None
        client = new_client(host, self.config["smtp_timeout_seconds"], tls if self.config["smtp_ssl"] else None,
                            deadline.saw_socket)
        deadline.watch(client)
        code, reply = client.connect(host, port)
        if code != 220:
            client.close()
            raise smtplib.SMTPConnectError(code, reply)
        client.ehlo_or_helo_if_needed()
        if self.config["smtp_starttls"]:
            stage.name = "STARTTLS"
            client.starttls(context=tls)
            # RFC 3207: the server forgets the greeting with the upgrade, and what it offers may change
            # (AUTH is often offered only over TLS): greet again before anything else.
            client.ehlo()
        username = self.config.get("smtp_username")
        if username:
            stage.name = "login (AUTH)"
            client.login(username, self.config.secret("smtp_password") or "")
        return client

    def _tls_context(self) -> ssl.SSLContext:
        # Made once per transport: loading the system's CA certificates costs milliseconds; a context
        # is safe to share between threads.
        if self._tls is None:
            import ssl

            self._tls = ssl.create_default_context()
        return self._tls

    @staticmethod
    def _transfer(client: smtplib.SMTP, mail: OutgoingMail, stage: Stage) -> None:
        """One message on an open session: ``MAIL``, ``RCPT``, ``DATA`` (one recipient)."""
        import smtplib

        stage.name = "send"
        if mail.smtputf8:
            client.ehlo_or_helo_if_needed()
            if not client.has_extn("smtputf8"):
                stage.name = "SMTPUTF8 (an address that is not ASCII)"
                raise smtplib.SMTPNotSupportedError("SMTPUTF8")
            # mail() also switches the session's commands to UTF-8.
            code, reply = client.mail(mail.sender, ["SMTPUTF8", "BODY=8BITMIME"])
        else:
            # mail() and rcpt() would parse both addresses again (email.utils.parseaddr) to quote them;
            # they were checked when the settings and the recipient were.
            code, reply = client.docmd("mail", f"FROM:<{mail.sender}>")
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, mail.sender)
        code, reply = client.docmd("rcpt", f"TO:<{mail.recipient}>")
        if code not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({mail.recipient: (code, reply)})
        stage.data_sent = True  # from here on a failure may hide a message the server has queued
        code, reply = client.data(mail.data)
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)

    def _error(self, exc: BaseException, stage: Stage, deadline: Deadline) -> DeliveryError:
        return delivery_error(exc, stage, deadline, host=self.config["smtp_host"], port=self.port,
                              timeout=self.config["smtp_timeout_seconds"], transport=self.name)

    def close(self) -> None:
        """End the pooled SMTP sessions (``OtpPro.close``); a later send opens new ones."""
        with self._pool_lock:
            pool, self._smtp_pool = self._smtp_pool, None
        if pool is not None:
            pool.close()

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


@hookimpl
def otp_pro_register_transports(register):  # type: ignore[no-untyped-def]
    register(EmailTransport)
