"""Twilio failures mapped to the core's typed delivery errors.

Messages are written here rather than copied from Twilio: Twilio's own text
often repeats the recipient's number, and a delivery error ends up in logs and
audit records. Each error carries the Twilio error code (or a short word for
network failures) as ``provider_code``; never the message body, the one-time
code or the auth token.
"""

from __future__ import annotations

from otp_pro import DeliveryError, PermanentDeliveryError, TransientDeliveryError

TRANSPORT = "sms_twilio"

#: Twilio error codes after which sending the same message again cannot succeed,
#: with what they mean (the troubleshooting table in docs/sms-twilio.md says what to do).
PERMANENT_CODES: dict[int, str] = {
    21211: "the 'To' number is not a valid phone number",
    21610: "the recipient has unsubscribed (replied STOP) from this sender",
    21614: "the 'To' number is not a mobile number",
    21608: "a trial account can only send to verified numbers",
    21408: "sending to this region is not enabled in the account's geographic permissions",
    60605: "sending to this country is blocked by the geographic permissions",
    20003: "Twilio refused the account SID and auth token",
}

#: Twilio's code for "too many requests" (HTTP 429).
RATE_LIMITED = 20429

# provider_code values for failures that never reached Twilio's API.
TIMEOUT = "timeout"
CONNECTION_REFUSED = "connection_refused"
CONNECTION_ERROR = "connection_error"
TLS_ERROR = "tls_error"
BAD_RESPONSE = "bad_response"
CLIENT_ERROR = "client_error"
NOT_CONFIGURED = "not_configured"
INVALID_NUMBER = "invalid_number"  # not in a range known to be assigned: refused before any request

#: Transient failures that are still not retried at once: a TLS failure (a certificate
#: or proxy problem) does not pass in a second, and after a 2xx answer that could not
#: be read or a client crash Twilio may already have accepted the message.
NOT_RETRIED = frozenset({TLS_ERROR, BAD_RESPONSE, CLIENT_ERROR})


def from_api_error(status: int, code: int | None, *, retry_after: float | None = None) -> DeliveryError:
    """The delivery error for an error answer of the Messaging API (HTTP ``status``, Twilio ``code``).

    ``retry_after`` (seconds, from the answer's ``Retry-After`` header) is kept on a rate-limit error.
    """
    if code is not None and code in PERMANENT_CODES:
        return PermanentDeliveryError(
            f"Twilio error {code}: {PERMANENT_CODES[code]}", transport=TRANSPORT, provider_code=str(code)
        )
    provider_code = str(code if code is not None else status)
    if status == 429 or code == RATE_LIMITED:
        wait = f"; it asks to wait {retry_after:g} s" if retry_after is not None else ""
        limited = TransientDeliveryError(
            f"Twilio is rate limiting requests (HTTP {status}, error {provider_code}){wait}",
            transport=TRANSPORT, provider_code=provider_code,
        )
        limited.retry_after = retry_after
        return limited
    if status >= 500:
        return TransientDeliveryError(
            f"Twilio's API failed (HTTP {status}, error {provider_code})", transport=TRANSPORT,
            provider_code=provider_code,
        )
    # Any other 4xx: the request itself is wrong (bad sender, bad parameters); repeating it gives the same answer.
    more = f"; see https://www.twilio.com/docs/errors/{code}" if code is not None and code != status else ""
    return PermanentDeliveryError(
        f"Twilio refused the message (HTTP {status}, error {provider_code}){more}", transport=TRANSPORT,
        provider_code=provider_code,
    )


def is_retryable(error: DeliveryError) -> bool:
    """Whether another attempt may succeed: rate limits, 5xx answers, timeouts, refused or dropped connections."""
    return not error.permanent and error.provider_code not in NOT_RETRIED
