"""The ``sms_twilio`` transport: one-time codes by text message through Twilio's Messaging API."""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from otp_pro import (
    REDACTED,
    DeliveryError,
    Member,
    Message,
    PermanentDeliveryError,
    ProviderConfig,
    Receipt,
    RecipientUnavailable,
    Setting,
    TransientDeliveryError,
    Transport,
    format_template,
    i18n,
)

from . import checks, errors, wording
from .phone import is_assigned, parse_number, sms_recipient
from .segments import GSM7, count_segments, is_gsm7
from .wording import DEFAULT_TEMPLATE, N_

if TYPE_CHECKING:
    from twilio.rest import Client

    from otp_pro import OtpPro  # annotations only: OtpPro needs SQLAlchemy, plugin discovery does not

log = logging.getLogger("otp_pro.sms_twilio")

NAME = "sms_twilio"
TWILIO_API = "https://api.twilio.com"
NOT_SET_UP = N_("text messages are not set up on this site")

#: The settings that say "this site uses Twilio". With none of them set the
#: transport is installed but idle: its channel is not offered and nothing is checked.
CREDENTIAL_KEYS = ("account_sid", "auth_token", "from_number", "messaging_service_sid")

# A member name of realistic length for the message length check at start-up
# (the site's own name, support address and code length are known then).
SAMPLE_MEMBER_NAME = "Alexandra Montgomery"
SAMPLE_RECIPIENT = "+447400123456"
#: The longest ``Retry-After`` a send waits out before its next attempt (and never longer than
#: ``timeout_seconds``); a longer one fails the send at once (a member is waiting for the page) and
#: holds this process's other sends back until it has passed.
MAX_RETRY_AFTER_SECONDS = 5.0


class TwilioSmsTransport(Transport):
    """Sends one-time codes by SMS with the official ``twilio`` client.

    The member's number is read from ``member.fields[phone_field]`` and
    normalised to E.164; members without a valid mobile number in an allowed
    country do not get the channel. Rate limits, 5xx answers, timeouts and
    refused connections are retried ``max_retries`` times with exponential
    backoff; everything else fails at once with the Twilio error code.
    """

    name = NAME
    label = N_("SMS (Twilio)")  # translated where it is shown (otp_pro.i18n.label)
    message_format = "text"
    settings = (
        Setting("account_sid", str, None, "Twilio Account SID (AC...)", check=checks.account_sid),
        Setting("auth_token", str, None, "Twilio auth token", secret=True),
        Setting("from_number", str, None, "sender number in E.164 (or set messaging_service_sid)",
                check=checks.from_number),
        Setting("messaging_service_sid", str, None, "Messaging Service SID (MG...), instead of from_number",
                check=checks.messaging_service_sid),
        Setting("phone_field", str, "phone", "member field holding the phone number"),
        Setting("message_template", str, DEFAULT_TEMPLATE, "text of the message; must contain {payload}",
                check=checks.message_template),
        Setting("max_segments", int, 1, "SMS segments message_template may render to before start-up fails",
                minimum=1, maximum=10),
        Setting("default_region", str, None, "country (ISO code) of numbers written without +", check=checks.region),
        Setting("allowed_countries", list, [], "ISO codes of countries SMS may be sent to (empty: all)",
                check=checks.regions),
        Setting("dry_run_in_provider_test", bool, True, "provider tests only render unless told to send"),
        Setting("api_base_url", str, None, "Messaging API base URL (default https://api.twilio.com)",
                check=checks.api_base_url),
        Setting("timeout_seconds", float, 10.0, "connect and read timeout of each request", minimum=0.05,
                maximum=120),
        Setting("max_retries", int, 2, "extra attempts after a rate limit, 5xx, timeout or refused connection",
                minimum=0, maximum=5),
        Setting("backoff_seconds", float, 0.5, "delay before the first retry; doubled for each further one",
                minimum=0, maximum=5),
    )

    def __init__(self, config: ProviderConfig, otp: OtpPro):
        super().__init__(config, otp)
        # One Twilio client (and so one HTTP session, whose connections are kept alive and reused
        # by every send of that thread) per thread: requests' Session is not documented as safe to
        # share between threads. The clients belong to the process that made them (_pid): a forked
        # child makes its own rather than write to its parent's sockets.
        self._local = threading.local()
        self._clients: list[Client] = []
        self._clients_lock = threading.Lock()
        self._pid = os.getpid()
        # time.monotonic() until which Twilio asked (Retry-After) for no more requests: during
        # a 429 storm the other sends of this process fail at once instead of adding to it.
        self._hold_until = 0.0

    # ------------------------------------------------------------ configuration

    @property
    def configured(self) -> bool:
        """Whether any credential or sender is set. The core leaves an unconfigured transport
        out of the site's default channel set instead of showing it to every member as unavailable."""
        return any(self.config.get(key) for key in CREDENTIAL_KEYS)

    @property
    def base_url(self) -> str:
        """The Messaging API base URL in use: ``api_base_url`` or Twilio's."""
        return str(self.config.get("api_base_url") or TWILIO_API)

    def messages_url(self) -> str:
        """The URL messages are created at (``POST``)."""
        return f"{self.base_url}/2010-04-01/Accounts/{self.config.get('account_sid') or '<account_sid>'}/Messages.json"

    def check(self) -> list[str]:
        """Credentials and sender complete and consistent; the template fits ``max_segments``.

        Runs even when some values were invalid: those keys are then missing from
        the config (their problem is already reported) and are skipped here.
        """
        prefix = f"providers.{self.name}"
        problems: list[str] = []
        if not self.configured:
            used = self._channel_settings_naming_me()
            if used:
                problems.append(f"{prefix}.account_sid: is required because {used} names an {self.name} channel "
                                "(set account_sid, auth_token and from_number or messaging_service_sid)")
            return problems
        # A key missing from the config had an invalid value, already reported by the settings check.
        for key in ("account_sid", "auth_token"):
            if key in self.config and not self.config[key]:
                problems.append(f"{prefix}.{key}: is required once {self.name} is configured")
        if "from_number" in self.config and "messaging_service_sid" in self.config:
            has_from, has_service = bool(self.config["from_number"]), bool(self.config["messaging_service_sid"])
            if has_from and has_service:
                problems.append(f"{prefix}.messaging_service_sid: set only one of from_number and "
                                "messaging_service_sid")
            elif not has_from and not has_service:
                problems.append(f"{prefix}.from_number: set from_number (E.164) or messaging_service_sid")
        if "message_template" in self.config and "max_segments" in self.config:
            problem = self._template_length_problem()
            if problem:
                problems.append(f"{prefix}.message_template: {problem}")
        return problems

    def _channel_settings_naming_me(self) -> str | None:
        """The first setting that names one of this transport's channels, if any."""
        s = self.otp.settings
        mine = f"{self.name}:"
        if any(c.startswith(mine) for c in s.channels or ()):
            return "channels"
        if s.mode != "hidden" and s.default_channel.startswith(mine):
            return "default_channel"
        for role in s.roles.values():
            if any(c.startswith(mine) for c in role.channels or ()):
                return f"roles.{role.name}.channels"
            if (role.default_channel or "").startswith(mine):
                return f"roles.{role.name}.default_channel"
        return None

    def sample_text(self) -> str:
        """``message_template`` rendered with this site's values and a member name of realistic length, in the
        current language (:mod:`.wording`)."""
        s = self.otp.settings
        issued = self.otp.clock()
        variables = {
            "payload": "4" * s.code_length,
            "payload_kind": "code",
            "site_name": s.site_name,
            "member_name": SAMPLE_MEMBER_NAME,
            "support_email": s.support_email or f"the {s.site_name} team",
            "expiry_minutes": max(1, round(s.code_ttl_seconds / 60)),
            "channel": f"{self.name}:code",
            "purpose": "verify",
            "recipient": SAMPLE_RECIPIENT,
            "issued_at": issued,
            "expires_at": issued + timedelta(seconds=s.code_ttl_seconds),
        }
        return format_template(wording.template(self.config), variables)

    def _template_length_problem(self) -> str | None:
        s = self.otp.settings
        # Every language a member may get the message in must fit: a translation can be longer, or need UCS-2.
        for locale in wording.languages(self.config, s.default_locale, s.locale_dirs):
            with i18n.using(i18n.Language(locale, s.locale_dirs)):
                problem = self._length_problem_now()
            if problem:
                return problem if locale == s.default_locale else f"in {locale}: {problem}"
        return None

    def _length_problem_now(self) -> str | None:
        try:
            text = self.sample_text()
        except (ValueError, TypeError, LookupError) as exc:
            # A format spec that does not fit its value ("{member_name:d}") fails here,
            # at start-up, instead of at every send.
            return f"cannot be rendered: {type(exc).__name__}: {exc}"
        info = count_segments(text)
        if info.segments <= self.config["max_segments"]:
            return None
        why = ""
        if info.encoding != GSM7:
            odd = next(ch for ch in text if not is_gsm7(ch))
            why = f" because {odd!r} is not in the GSM-7 alphabet"
        unit = "characters" if info.encoding == GSM7 else "UTF-16 units"
        return (f"renders to {info.segments} SMS segments with sample values ({info.encoding}{why}: "
                f"{info.units} {unit}, one segment holds {info.single_limit}); shorten it or set "
                f"max_segments = {info.segments}")

    # ---------------------------------------------------------------- recipient

    def recipient(self, member: Member) -> str:
        """The member's number in E.164, or :class:`~otp_pro.RecipientUnavailable` with a member-safe reason."""
        if not self.configured:
            raise RecipientUnavailable(NOT_SET_UP)
        return sms_recipient(
            member.fields.get(self.config["phone_field"]),
            default_region=self.config["default_region"],
            allowed_countries=self.config["allowed_countries"],
        )

    def normalize_recipient(self, recipient: str) -> str:
        """A number typed for a provider test, in E.164 (national form allowed with ``default_region``).

        Any well-formed number is taken, so a dry run can show the message for an example number
        (+44 7700 900123, from a range the UK reserves for drama); :meth:`recipient_warnings` says
        when it is not known to be assigned, and :meth:`send` refuses such a number.
        """
        import phonenumbers

        try:
            number = parse_number(recipient, self.config["default_region"], assigned=False)
        except RecipientUnavailable:
            where = "" if self.config["default_region"] else " (or set default_region for national numbers)"
            raise RecipientUnavailable(
                f"{recipient!r} is not a valid phone number: write it with + and the country code, "
                f"such as +14155550100{where}"
            ) from None
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    def recipient_warnings(self, recipient: str) -> list[str]:
        """A warning when the (normalised) number is in no range known to be assigned: a send would be refused."""
        if is_assigned(recipient):
            return []
        return [f"{recipient} is not a number known to be assigned (phonenumbers): a dry run shows the message, "
                "a real send (--send) refuses it"]

    # ---------------------------------------------------------------- sending

    def _sender(self) -> dict[str, str]:
        if self.config.get("messaging_service_sid"):
            return {"MessagingServiceSid": self.config["messaging_service_sid"]}
        return {"From": self.config.get("from_number") or ""}

    def dry_run_parameters(self, message: Message) -> dict[str, Any]:
        """What :meth:`send` would post to Twilio, auth token redacted; the body only as its length and segments."""
        info = count_segments(message.text)
        return {
            "url": self.messages_url(),
            "account_sid": self.config.get("account_sid"),
            "auth_token": REDACTED if self.config.get("auth_token") else None,
            "To": message.recipient,
            **self._sender(),
            "body_characters": len(message.text),
            "encoding": info.encoding,
            "segments": info.segments,
            "timeout_seconds": self.config["timeout_seconds"],
            "max_retries": self.config["max_retries"],
        }

    def _client(self) -> Client:
        if self._pid != os.getpid():
            self._forget_parent()
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            # Imported here: twilio pulls in requests and takes ~0.1 s to import,
            # which sites that never send an SMS should not pay at every start-up.
            from twilio.rest import Client

            http_client = _http_client_class()(timeout=self.config["timeout_seconds"])
            client = Client(self.config["account_sid"], self.config.secret("auth_token"), http_client=http_client)
            # The Messaging API lives on the client's `api` domain (twilio.base.domain.Domain),
            # whose public base_url attribute every request URL of that domain is built
            # from; the client's authentication and error handling stay as they are.
            client.api.base_url = self.base_url
            # TWILIO_EDGE / TWILIO_REGION in the environment would rewrite the host
            # name; the URL used must be the one settings and the dry run show.
            client.edge = None
            client.region = None
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    def _forget_parent(self) -> None:
        """In a forked child: the clients are the parent's, their kept-alive connections its sockets.

        They are dropped, not closed (closing could end the parent's TLS sessions); the lock is
        new because a parent thread may have held it at the fork.
        """
        self._local = threading.local()
        self._clients = []
        self._clients_lock = threading.Lock()
        self._pid = os.getpid()

    def close(self) -> None:
        """Close the HTTP connections of every thread's client (the next send opens new ones)."""
        with self._clients_lock:
            clients, self._clients = self._clients, []
        for client in clients:
            session = getattr(client.http_client, "session", None)
            if session is not None:
                session.close()
        self._local = threading.local()

    def send(self, message: Message) -> Receipt:
        """Create the message through the Messaging API; retry transient failures with backoff.

        Returns the Twilio message SID as ``provider_message_id``. Raises
        :class:`~otp_pro.PermanentDeliveryError` or :class:`~otp_pro.TransientDeliveryError`
        whose ``provider_code`` is the Twilio error code (``"21211"``) or
        ``timeout`` / ``connection_refused`` / ``connection_error`` / ``tls_error``.
        A 429 answer's ``Retry-After`` is waited out when it is no longer than
        :attr:`max_wait`; a longer one fails the send at once (``retry_after`` on
        the error) and this process's next sends fail without a request until it
        has passed.
        """
        if not self.configured:
            raise PermanentDeliveryError(f"{self.name} is not configured (providers.{self.name})", transport=self.name,
                                         provider_code=errors.NOT_CONFIGURED)
        if not is_assigned(message.recipient):
            # A provider test takes any well-formed number for its dry run; Twilio would only bill a
            # failed attempt for one nobody can have, so it is refused here, before any request.
            raise PermanentDeliveryError(
                f"{message.recipient!r} is not a valid phone number (not in a range known to be assigned); "
                "nothing was sent", transport=self.name, provider_code=errors.INVALID_NUMBER)
        attempts = 1 + self.config["max_retries"]
        for attempt in range(1, attempts + 1):
            self._check_hold()
            try:
                return self._send_once(message)
            except DeliveryError as error:
                wait = error.retry_after
                if wait is not None:
                    with self._clients_lock:
                        self._hold_until = max(self._hold_until, time.monotonic() + wait)
                if attempt == attempts or not errors.is_retryable(error) or (wait or 0) > self.max_wait:
                    raise
                delay = max(self.backoff(attempt), wait or 0.0)
                log.warning("otp-pro %s: attempt %d of %d failed (%s); retrying in %.2f s", self.name, attempt,
                            attempts, error.provider_code, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    @property
    def max_wait(self) -> float:
        """The longest ``Retry-After`` a send waits out: ``timeout_seconds``, at most 5 s."""
        return min(float(self.config["timeout_seconds"]), MAX_RETRY_AFTER_SECONDS)

    def _check_hold(self) -> None:
        """Honour Twilio's last ``Retry-After`` before a request: wait out a short rest, fail at once on a long one."""
        left = self._hold_until - time.monotonic()
        if left <= 0:
            return
        if left <= self.max_wait:
            time.sleep(left)
            return
        raise _held_back(left)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        ``backoff_seconds`` doubled for each further attempt, less up to a quarter
        at random so that instances that failed together do not retry together.
        """
        delay = float(self.config["backoff_seconds"]) * 2 ** (attempt - 1)
        return delay * (1 - random.random() / 4)

    def _send_once(self, message: Message) -> Receipt:
        import requests
        from twilio.base.exceptions import TwilioException

        sender = self._sender()
        try:
            created = self._client().messages.create(
                to=message.recipient,
                body=message.text,
                from_=sender.get("From") or None,
                messaging_service_sid=sender.get("MessagingServiceSid") or None,
            )
        except TwilioException as exc:
            # TwilioRestException (the classic JSON error) and, in newer clients,
            # TwilioServiceException (RFC 9457 problem details) both carry status and code.
            status, code = getattr(exc, "status", None), _as_int(getattr(exc, "code", None))
            if isinstance(status, int):
                retry_after = getattr(self._client().http_client, "retry_after", None)
                raise errors.from_api_error(status, code, retry_after=retry_after) from None
            raise TransientDeliveryError(f"the Twilio client failed: {type(exc).__name__}", transport=self.name,
                                         provider_code=errors.CLIENT_ERROR) from None
        except requests.exceptions.SSLError:
            raise TransientDeliveryError(f"TLS handshake with {self._host()} failed", transport=self.name,
                                         provider_code=errors.TLS_ERROR) from None
        except requests.exceptions.Timeout:
            raise TransientDeliveryError(
                f"{self._host()} did not answer within {self.config['timeout_seconds']:g} s", transport=self.name,
                provider_code=errors.TIMEOUT,
            ) from None
        except requests.exceptions.ConnectionError as exc:
            refused = _caused_by(exc, ConnectionRefusedError)
            raise TransientDeliveryError(
                f"{self._host()} {'refused the connection' if refused else 'could not be reached'}",
                transport=self.name, provider_code=errors.CONNECTION_REFUSED if refused else errors.CONNECTION_ERROR,
            ) from None
        except requests.exceptions.RequestException as exc:
            raise TransientDeliveryError(f"request to {self._host()} failed: {type(exc).__name__}",
                                         transport=self.name, provider_code=errors.CONNECTION_ERROR) from None
        except ValueError:
            # A 2xx answer whose body is not JSON: Twilio may have accepted the message,
            # so this is not retried (a retry could send it twice).
            raise TransientDeliveryError(f"{self._host()} sent an answer that is not JSON", transport=self.name,
                                         provider_code=errors.BAD_RESPONSE) from None
        if not created.sid:
            # Twilio always names what it created; an answer without a SID came from
            # something else (a proxy, a captive portal) and cannot be looked up later.
            raise TransientDeliveryError(f"{self._host()} answered without a message SID", transport=self.name,
                                         provider_code=errors.BAD_RESPONSE)
        detail = {"status": created.status, "segments": created.num_segments}
        return Receipt(provider_message_id=created.sid, detail={k: v for k, v in detail.items() if v is not None})

    def _host(self) -> str:
        from urllib.parse import urlsplit

        return urlsplit(self.base_url).netloc


def _held_back(left: float) -> TransientDeliveryError:
    error = TransientDeliveryError(
        f"not sent: Twilio asked for no more requests for {left:.0f} s (HTTP 429 with Retry-After)",
        transport=NAME, provider_code=str(errors.RATE_LIMITED),
    )
    error.retry_after = left
    return error


def parse_retry_after(value: object, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date; None when absent or unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(0.0, min(seconds, 86_400.0))


_HTTP_CLIENT: type | None = None


def _http_client_class() -> type:
    """``TwilioHttpClient`` that also keeps the ``Retry-After`` of its last answer (twilio's errors drop headers)."""
    global _HTTP_CLIENT
    if _HTTP_CLIENT is None:
        from twilio.http.http_client import TwilioHttpClient

        class RetryAfterHttpClient(TwilioHttpClient):
            retry_after: float | None = None

            def request(self, *args: Any, **kwargs: Any) -> Any:
                self.retry_after = None
                response = super().request(*args, **kwargs)
                headers = getattr(response, "headers", None) or {}
                self.retry_after = parse_retry_after(headers.get("Retry-After"))
                return response

        _HTTP_CLIENT = RetryAfterHttpClient
    return _HTTP_CLIENT


def _as_int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``kind`` is anywhere in the chain of ``exc`` (causes, contexts, urllib3's ``reason``, args)."""
    seen: set[int] = set()
    stack: list[object] = [exc]
    while stack:
        item = stack.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, kind):
            return True
        stack.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])
    return False
