"""The ``magic_link`` payload: a single-use sign-in link the member clicks instead of typing a code.

Its settings live in the section ``providers.magic_links`` (declared through
``otp_pro_register_settings``, see :data:`SETTINGS`): the section is named after
the distribution, plural, while the payload, and so the channel
``email:magic_link``, is singular like ``code``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from otp_pro import Member, Payload, PayloadContext, PayloadValue, Transport
from otp_pro.errors import ConfigurationError
from otp_pro.settings import Setting, is_loopback_host

from .errors import BindingRequired
from .wording import LABEL, NO_BASE_URL

#: Name of the settings section: ``providers.magic_links``.
SECTION = "magic_links"
PAYLOAD = "magic_link"
TOKEN_PARAM = "token"
#: ``secrets.token_urlsafe(32)``: 256 bits, 43 URL-safe characters.
TOKEN_BYTES = 32


def _check_base_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL such as 'https://example.com'")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("must not hold a query, fragment or credentials")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError("must use https (plain http is allowed for localhost only)")
    return value.rstrip("/")


def _check_path(value: str) -> str:
    if not value.startswith("/") or value.startswith("//") or "?" in value or "#" in value:
        raise ValueError("must be a path starting with a single '/', without query or fragment")
    return value


SETTINGS: tuple[Setting, ...] = (
    Setting("base_url", str, None, "the site's public URL (https); without it the channel is not offered",
            check=_check_base_url),
    Setting("path", str, "/otp/magic", "path of the link's confirmation page under base_url", check=_check_path),
    Setting("ttl_seconds", int, 600, "lifetime of a link in seconds", minimum=60, maximum=86_400),
    Setting("same_browser", bool, False, "accept a link only in the browser that asked for it (binding cookie)"),
)
DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}


class MagicLinkPayload(Payload):
    """A link holding a 256-bit token; only the token's keyed hash is stored (by the core).

    Offered over email-format transports only (``email``, the dev ``outbox``):
    a link in an SMS is easy to phish and previewed by carriers.
    """

    name = PAYLOAD
    label = LABEL  # translated where it is shown (otp_pro.i18n.label)
    entered_as_code = False

    @property
    def options(self) -> Mapping[str, Any]:
        """The validated ``providers.magic_links`` section (defaults when the section is absent)."""
        section = self.otp.plugin_settings.get(SECTION)
        return {**DEFAULTS, **(dict(section) if section is not None else {})}

    @property
    def base_url(self) -> str | None:
        value = self.options["base_url"]
        return value.rstrip("/") if value else None

    @property
    def path(self) -> str:
        return str(self.options["path"])

    @property
    def same_browser(self) -> bool:
        return bool(self.options["same_browser"])

    @property
    def ttl_seconds(self) -> int:
        return int(self.options["ttl_seconds"])

    def supports(self, transport: Transport) -> bool:
        return transport.message_format == "email"

    def available(self, member: Member) -> str | None:
        # An N_ message: the flow shows it in the member's language (otp_pro.i18n.translate).
        return None if self.base_url else NO_BASE_URL

    def url(self, token: str) -> str:
        """The link for ``token``: ``{base_url}{path}?token=...``."""
        if not self.base_url:
            raise ConfigurationError(NO_BASE_URL, key="providers.magic_links.base_url")
        return f"{self.base_url}{self.path}?{urlencode({TOKEN_PARAM: token})}"

    def create(self, context: PayloadContext) -> PayloadValue:
        # A setup may be begun without a binding (a script has no browser): its link is then unbound.
        if self.same_browser and context.binding is None and context.purpose != "setup":
            raise BindingRequired(
                "providers.magic_links.same_browser is on: pass binding=<the browser's binding cookie value> "
                "to send_challenge"
            )
        token = secrets.token_urlsafe(TOKEN_BYTES)
        return PayloadValue(secret=token, display=self.url(token))


def send_link(
    otp: Any,
    member: Member,
    *,
    transport: str = "email",
    binding: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> Any:
    """Send ``member`` a sign-in link over ``transport`` (``send_challenge(channel="<transport>:magic_link")``).

    ``binding`` is passed on only when ``same_browser`` is on (then it is
    required): the core binds any link it is given a binding for, and a site
    that switched the setting off should not keep refusing other browsers.
    Returns the core's :class:`~otp_pro.Challenge`.
    """
    payload = otp.payloads[PAYLOAD]
    if payload.same_browser and binding is None:
        raise BindingRequired("providers.magic_links.same_browser is on: pass binding=<the browser's cookie value>")
    return otp.send_challenge(
        member, channel=f"{transport}:{PAYLOAD}", binding=binding if payload.same_browser else None, ip=ip,
        user_agent=user_agent,
    )
