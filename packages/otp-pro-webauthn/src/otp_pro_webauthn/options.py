"""The ``providers.webauthn`` settings section and the relying party it describes.

Declared through the core's ``otp_pro_register_settings`` hook, so the core
validates types, ranges and unknown keys like any transport's section; what
only WebAuthn knows (an origin must lie inside the relying-party id, an
algorithm must have a name) is checked here, and at start-up by
:func:`problems`, which the plugin's ``otp_pro_startup`` returns so the core
raises one :class:`~otp_pro.errors.ConfigurationError` naming the key.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from otp_pro.settings import Setting, is_loopback_host

#: The settings section (``providers.webauthn``) and the factor type's name (the channel ``webauthn``).
SECTION = "webauthn"

#: Algorithm names a site may list, with their COSE identifiers (IANA; the values of py_webauthn's
#: ``COSEAlgorithmIdentifier``, kept as numbers so that reading the settings does not import the library).
#: The three every browser offers come first.
ALGORITHMS: dict[str, int] = {
    "ES256": -7,  # ECDSA_SHA_256
    "EdDSA": -8,  # EDDSA
    "RS256": -257,  # RSASSA_PKCS1_v1_5_SHA_256
    "PS256": -37,  # RSASSA_PSS_SHA_256
    "ES512": -36,  # ECDSA_SHA_512
}
#: How long a challenge can be answered: the browser's longest timeout, and a minute for the round trip.
CHALLENGE_SECONDS = 300
USER_VERIFICATION = ("required", "preferred", "discouraged")
RESIDENT_KEY = ("required", "preferred", "discouraged")
ATTESTATION = ("none", "indirect", "direct", "enterprise")


def _check_algorithms(value: list[str]) -> list[str]:
    unknown = [name for name in value if name not in ALGORITHMS]
    if unknown or not value:
        raise ValueError(f"must list one or more of {', '.join(ALGORITHMS)}" + (f" (not {unknown})" if unknown else ""))
    return value


def _check_rp_id(value: str) -> str:
    # A relying-party id is a domain (browsers refuse an IP address): no scheme, port or path.
    if not value or any(c in value for c in ":/?#@ ") or value != value.lower() or value.startswith("."):
        raise ValueError("must be the site's host name in lower case, without scheme, port or path "
                         "('example.com', 'localhost')")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return value
    raise ValueError("must be a domain, not an IP address (browsers refuse one): use 'localhost' on this machine")


SETTINGS: tuple[Setting, ...] = (
    Setting("rp_id", str, None, "relying-party id: the site's domain ('example.com'); passkeys are bound to it",
            check=_check_rp_id),
    Setting("rp_name", str, None, "the name authenticators show for the site (default: the site_name setting)"),
    Setting("origins", list, [], "origins the ceremonies may run on (default: https://<rp_id>); each must be "
            "the relying-party id or one of its subdomains, https except on localhost"),
    Setting("user_verification", str, "preferred", "ask the authenticator to verify the user (PIN, biometric): "
            "'required' refuses an answer without it", choices=USER_VERIFICATION),
    Setting("resident_key", str, "preferred", "ask for a discoverable credential (a passkey), needed by "
            "passwordless sign-in", choices=RESIDENT_KEY),
    Setting("attestation", str, "none", "attestation conveyance asked of a new authenticator", choices=ATTESTATION),
    Setting("timeout_seconds", int, 120, "how long the browser waits for the member (a challenge lives "
            f"{CHALLENGE_SECONDS} seconds, a minute past the longest timeout)", minimum=15,
            maximum=CHALLENGE_SECONDS - 60),
    Setting("algorithms", list, ["ES256", "EdDSA", "RS256"], "public-key algorithms accepted for new "
            "credentials", check=_check_algorithms),
    Setting("passwordless", bool, False, "offer 'Sign in with a passkey' on the login page (discoverable "
            "credentials prove the member without a password)"),
)
DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}


@dataclass(frozen=True)
class RelyingParty:
    """The validated section, as the ceremonies use it."""

    rp_id: str
    rp_name: str
    origins: tuple[str, ...]
    user_verification: str
    resident_key: str
    attestation: str
    timeout_seconds: int
    algorithms: tuple[int, ...]
    passwordless: bool

    @property
    def requires_verification(self) -> bool:
        return self.user_verification == "required"


def relying_party(section: Mapping[str, Any] | None, site_name: str) -> RelyingParty | None:
    """The relying party ``section`` describes, or None while ``rp_id`` is unset."""
    values = {**DEFAULTS, **(dict(section) if section is not None else {})}
    rp_id = values["rp_id"]
    if not rp_id:
        return None
    origins = tuple(str(o).rstrip("/") for o in values["origins"]) or (f"https://{rp_id}",)
    return RelyingParty(
        rp_id=rp_id, rp_name=values["rp_name"] or site_name, origins=origins,
        user_verification=values["user_verification"], resident_key=values["resident_key"],
        attestation=values["attestation"], timeout_seconds=values["timeout_seconds"],
        algorithms=tuple(ALGORITHMS[name] for name in values["algorithms"]), passwordless=values["passwordless"],
    )


def origin_problem(origin: str, rp_id: str) -> str | None:
    """Why ``origin`` cannot run ceremonies for ``rp_id`` (WebAuthn's rule: its host is the id or a
    subdomain of it; https, or http on this machine), or None when it can."""
    parts = urlsplit(origin)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host or parts.path or parts.query or parts.fragment:
        return f"{origin!r} is not an origin (scheme://host[:port], nothing after it)"
    if host != rp_id and not host.endswith("." + rp_id):
        return f"{origin!r} does not match the relying-party id {rp_id!r} (its host must be it or a subdomain)"
    if parts.scheme == "http" and not is_loopback_host(host):
        return f"{origin!r} must use https (plain http is allowed on localhost only)"
    return None


def problems(section: Mapping[str, Any] | None, site_name: str, offered: bool) -> list[str]:
    """Start-up problems of the section, each ``"<key>: <what is wrong>"``; ``offered``: a site's channels
    list ``webauthn`` (then the relying-party id is required)."""
    key = f"providers.{SECTION}"
    party = relying_party(section, site_name)
    if party is None:
        return [f"{key}.rp_id: required when the webauthn channel is offered (the site's domain)"] if offered else []
    return [f"{key}.origins: {why}" for origin in party.origins if (why := origin_problem(origin, party.rp_id))]
