"""Passkey helpers of the browser tests: a page with Chromium's DevTools virtual authenticator.

A CDP session adds a virtual authenticator (``WebAuthn.enable``, ``WebAuthn.addVirtualAuthenticator``:
CTAP2, internal, discoverable credentials, user verification) to the page; it answers
``navigator.credentials.create/get`` as a platform authenticator would. WebAuthn needs a secure context,
which plain http is on ``localhost`` only, and a relying-party id that is a domain, not an IP address: the
sites under test are opened at ``http://localhost:<port>``.
"""

from __future__ import annotations

from typing import Any


def with_authenticator(context: Any) -> tuple[Any, Any, str]:
    """A new page with a virtual authenticator: (page, its CDP session, the authenticator's id)."""
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})
    return page, cdp, added["authenticatorId"]


def credentials(cdp: Any, authenticator: str) -> list[dict[str, Any]]:
    """The credentials the virtual authenticator holds."""
    return list(cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"])


def relying_party(origin: str) -> dict[str, Any]:
    """``providers.webauthn`` for a site served at ``origin`` (``http://localhost:<port>``), passwordless on."""
    return {"rp_id": "localhost", "origins": [origin], "passwordless": True}
