"""The ``webhook`` transport: POSTs each message as signed JSON to the site's endpoint.

The endpoint is one URL for the whole site, set by the administrator: the
site's own service (a chat bot, a push-notification relay, a pager gateway)
receives the code and gets it to the member. A member opts in through
``member.fields["webhook"]``: ``True`` (address them by their member id) or a
string naming them in the receiving system (a chat user id, a device id).
Members never choose the URL, so nobody can point the server at an internal
address.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import secrets
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from otp_pro import (
    REDACTED,
    Member,
    Message,
    PermanentDeliveryError,
    Receipt,
    RecipientUnavailable,
    Setting,
    TransientDeliveryError,
    Transport,
)

from .signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

log = logging.getLogger("otp_pro.webhook")

NAME = "webhook"
NOT_SET_UP = "webhook delivery is not set up on this site"
MAX_RECIPIENT = 200
#: Enough of an answer to read a message id; the rest is not read.
MAX_ANSWER_BYTES = 64 * 1024


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(value: str) -> str:
    """An absolute https URL (http only for a loopback host, as in tests), without credentials."""
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("must be an absolute https:// URL such as 'https://hooks.example.com/otp'")
    if parts.username or parts.password:
        raise ValueError("must not hold credentials (they would be shown with the settings): use signing_secret")
    if parts.fragment:
        raise ValueError("must not hold a #fragment")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError("must use https (plain http is allowed for 127.0.0.1, ::1 and localhost only)")
    return value


def _check_signing_secret(value: str) -> str:
    if len(value) < 32:
        raise ValueError("must be at least 32 characters (generate one with: python -c "
                         "\"import secrets; print(secrets.token_urlsafe(32))\")")
    return value


def shown_url(url: str) -> str:
    """``url`` for logs and dry runs: scheme, host, port and path; a query string is replaced by ``?...``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" + ("?..." if parts.query else "")


@dataclass(repr=False)
class WebhookMessage(Message):
    """A :class:`~otp_pro.Message` with the structured fields the webhook posts (rendered by this plugin)."""

    data: dict[str, Any] = field(default_factory=dict)


class WebhookTransport(Transport):
    """POSTs JSON to ``url``, signed with ``signing_secret``; 4xx is permanent, 5xx and network failures transient.

    408 (request timeout) and 429 (too many requests) are transient too: the
    same request may succeed later. A redirect is not followed (the signed body
    would be re-sent to a URL nobody configured) and counts as permanent.
    """

    name = NAME
    label = "Webhook"
    message_format = "text"
    settings = (
        Setting("url", str, None, "endpoint the JSON is POSTed to (https; http only for loopback)", check=check_url),
        Setting("signing_secret", str, None, "shared secret for the HMAC-SHA256 signature header (32+ characters)",
                secret=True, check=_check_signing_secret),
        Setting("timeout_seconds", float, 5.0, "connect and read timeout of the POST", minimum=0.05, maximum=60),
        Setting("recipient_field", str, "webhook", "member field that opts a member in (True or their address)"),
        Setting("dry_run_in_provider_test", bool, True, "provider tests only render unless told to send"),
    )

    # ------------------------------------------------------------ configuration

    @property
    def configured(self) -> bool:
        return bool(self.config.get("url")) and bool(self.config.get("signing_secret"))

    def check(self) -> list[str]:
        has_url, has_secret = bool(self.config.get("url")), bool(self.config.get("signing_secret"))
        if has_url and not has_secret and "signing_secret" in self.config:
            return [f"providers.{self.name}.signing_secret: is required once url is set"]
        if has_secret and not has_url and "url" in self.config:
            return [f"providers.{self.name}.url: is required once signing_secret is set"]
        return []

    # ---------------------------------------------------------------- recipient

    def recipient(self, member: Member) -> str:
        if not self.configured:
            raise RecipientUnavailable(NOT_SET_UP)
        value = member.fields.get(self.config["recipient_field"])
        if value is True:
            return member.id
        if not isinstance(value, str) or not value.strip():
            raise RecipientUnavailable("not signed up for codes by webhook")
        try:
            return self.normalize_recipient(value)
        except RecipientUnavailable:
            raise RecipientUnavailable("the webhook address on file is not valid") from None

    def normalize_recipient(self, recipient: str) -> str:
        value = recipient.strip()
        if not value or len(value) > MAX_RECIPIENT or not value.isprintable():
            raise RecipientUnavailable(f"a webhook recipient is 1 to {MAX_RECIPIENT} printable characters")
        return value

    # ---------------------------------------------------------------- sending

    def body(self, message: Message, delivery_id: str) -> dict[str, Any]:
        """The JSON object posted for ``message``."""
        data = dict(message.data) if isinstance(message, WebhookMessage) else {}
        if not data and message.sensitive:
            # Rendered by another plugin: the payload is the value the member presents.
            kind = (message.channel or "").partition(":")[2] or None
            data = {"payload_kind": kind, ("code" if kind == "code" else "link"): message.sensitive[-1]}
        return {
            "id": delivery_id,
            "event": message.kind,
            "member_id": message.member_id,
            "recipient": message.recipient,
            "channel": message.channel,
            "payload_kind": data.get("payload_kind"),
            "code": data.get("code"),
            "link": data.get("link"),
            "expires_at": data.get("expires_at"),
            "expiry_minutes": data.get("expiry_minutes"),
            "site_name": self.otp.settings.site_name,
            "text": message.text,
        }

    def dry_run_parameters(self, message: Message) -> dict[str, Any]:
        return {
            "url": shown_url(self.config.get("url") or ""),
            "method": "POST",
            "signing_secret": REDACTED if self.config.get("signing_secret") else None,
            "headers": ["Content-Type", "User-Agent", TIMESTAMP_HEADER, SIGNATURE_HEADER, "X-OTP-Pro-Delivery"],
            "recipient": message.recipient,
            "fields": sorted(self.body(message, "dry-run")),
            "timeout_seconds": self.config["timeout_seconds"],
        }

    def send(self, message: Message) -> Receipt:
        if not self.configured:
            raise PermanentDeliveryError(f"{self.name} is not configured (providers.{self.name})",
                                         transport=self.name, provider_code="not_configured")
        from . import __version__

        url = self.config["url"]
        delivery_id = secrets.token_hex(16)
        body = json.dumps(self.body(message, delivery_id), separators=(",", ":"), default=str).encode("utf-8")
        timestamp = int(time.time())
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json",
            "User-Agent": f"otp-pro-webhook/{__version__}",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self.config.secret("signing_secret") or "", timestamp, body),
            "X-OTP-Pro-Delivery": delivery_id,
        })
        where = shown_url(url)
        started = time.monotonic()
        try:
            with self._opener(url).open(request, timeout=self.config["timeout_seconds"]) as response:
                status = response.status
                answer = response.read(MAX_ANSWER_BYTES)
        except urllib.error.HTTPError as exc:
            exc.close()
            raise self._error_for_status(exc.code, where) from None
        except urllib.error.URLError as exc:
            raise self._network_error(exc.reason, where) from None
        except TimeoutError:
            raise self._network_error(TimeoutError(), where) from None
        except (OSError, ValueError) as exc:  # a dropped connection, a malformed answer
            raise TransientDeliveryError(f"POST to {where} failed: {type(exc).__name__}", transport=self.name,
                                         provider_code="connection_error") from None
        log.debug("otp-pro webhook: POST %s answered %d in %.0f ms", where, status,
                  (time.monotonic() - started) * 1000)
        return Receipt(provider_message_id=_answer_id(answer) or delivery_id, detail={"status": status})

    def _opener(self, url: str) -> urllib.request.OpenerDirector:
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if _is_loopback(urlsplit(url).hostname or ""):
            handlers.append(urllib.request.ProxyHandler({}))  # a loopback endpoint is never behind a proxy
        return urllib.request.build_opener(*handlers)

    def _error_for_status(self, status: int, where: str) -> PermanentDeliveryError | TransientDeliveryError:
        text = f"{where} answered HTTP {status}"
        if status in (408, 429) or status >= 500:
            return TransientDeliveryError(text, transport=self.name, provider_code=str(status))
        if 300 <= status < 400:
            text += " (a redirect; set url to the final address)"
        return PermanentDeliveryError(text, transport=self.name, provider_code=str(status))

    def _network_error(self, reason: object, where: str) -> TransientDeliveryError:
        if isinstance(reason, TimeoutError):
            return TransientDeliveryError(f"{where} did not answer within {self.config['timeout_seconds']:g} s",
                                          transport=self.name, provider_code="timeout")
        if isinstance(reason, ConnectionRefusedError):
            return TransientDeliveryError(f"{where} refused the connection", transport=self.name,
                                          provider_code="connection_refused")
        if isinstance(reason, ssl.SSLError):
            return TransientDeliveryError(f"TLS with {where} failed", transport=self.name, provider_code="tls_error")
        return TransientDeliveryError(f"{where} could not be reached", transport=self.name,
                                      provider_code="connection_error")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None  # urllib then raises HTTPError with the 3xx status


def _answer_id(answer: bytes) -> str | None:
    """An ``id`` the endpoint answered with (JSON ``{"id": ...}``), kept as the provider message id."""
    try:
        data = json.loads(answer)
    except ValueError:
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return str(value)[:128] if isinstance(value, (str, int)) and str(value) else None
