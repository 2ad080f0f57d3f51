"""Checks of single ``providers.sms_twilio.*`` values, run by the core's settings validation.

Each raises ``ValueError`` with a message that says what is allowed; the core
prefixes it with the dotted key. The messages never repeat the value of a
credential field: someone who pastes the auth token into ``account_sid`` must
not find it in a log.
"""

from __future__ import annotations

import re
import string
from urllib.parse import urlsplit

from .phone import is_e164, region_code

_ACCOUNT_SID = re.compile(r"AC[0-9a-f]{32}")
_SERVICE_SID = re.compile(r"MG[0-9a-f]{32}")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})

#: Placeholders the core fills for every message (plugins may add more).
TEMPLATE_VARIABLES = (
    "payload", "site_name", "member_name", "support_email", "expiry_minutes", "issued_at", "expires_at", "channel",
    "purpose", "payload_kind", "recipient",
)


def account_sid(value: str) -> str:
    """An Account SID: ``AC`` and 32 lower-case hexadecimal characters."""
    value = value.strip()
    if not _ACCOUNT_SID.fullmatch(value):
        raise ValueError(
            "must be a Twilio Account SID: AC followed by 32 hexadecimal characters (Twilio Console, Account Info)"
        )
    return value


def messaging_service_sid(value: str) -> str:
    """A Messaging Service SID: ``MG`` and 32 lower-case hexadecimal characters."""
    value = value.strip()
    if not _SERVICE_SID.fullmatch(value):
        raise ValueError("must be a Twilio Messaging Service SID: MG followed by 32 hexadecimal characters")
    return value


def from_number(value: str) -> str:
    """A sender number in E.164 (``+`` and digits, no spaces)."""
    value = value.strip()
    if not is_e164(value):
        raise ValueError(f"must be a valid phone number in E.164 form such as +14155550100, got {value!r}")
    return value


def region(value: str) -> str:
    """An ISO 3166-1 alpha-2 code, upper-cased."""
    return region_code(value)


def regions(values: list[str]) -> list[str]:
    """A list of ISO 3166-1 alpha-2 codes, upper-cased, without repeats."""
    out: list[str] = []
    for value in values:
        code = region_code(value)
        if code not in out:
            out.append(code)
    return out


def api_base_url(value: str) -> str:
    """An ``https://`` URL (``http://`` only on loopback, for tests); returned without a trailing slash.

    The auth token travels in every request's Authorization header, so a plain
    ``http://`` URL to another host would send it in clear text.
    """
    value = value.strip()
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError(f"must be a URL such as https://api.twilio.com, got {value!r}") from None
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError(f"must be a URL such as https://api.twilio.com, got {value!r}")
    if parts.scheme == "http" and host not in _LOOPBACK_HOSTS:
        raise ValueError("must use https:// (http:// is only allowed for 127.0.0.1, ::1 and localhost)")
    if parts.username or parts.password:
        raise ValueError("must not contain a user name or password (set account_sid and auth_token)")
    if parts.query or parts.fragment:
        raise ValueError(f"must not have a query string or fragment, got {value!r}")
    return value.rstrip("/")


def message_template(value: str) -> str:
    """A ``str.format`` template with ``{payload}`` and only plain names as placeholders."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
    except ValueError as exc:
        raise ValueError(f"is not a valid template ({exc}); write a literal brace as {{{{ or }}}}") from None
    for name in fields:
        if not name.isidentifier():
            raise ValueError(
                f"placeholder {{{name}}} is not allowed: use plain names such as "
                + ", ".join(f"{{{v}}}" for v in TEMPLATE_VARIABLES[:5])
            )
    if "payload" not in fields:
        raise ValueError("must contain {payload}, where the one-time code goes")
    return value
