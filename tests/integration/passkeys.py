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


def register_passkey(page: Any, name: str | None = None) -> None:
    """On the setup page: choose a passkey, name it, create it with the authenticator, see the backup codes."""
    page.get_by_label("Passkey or security key").check()
    if name:
        page.get_by_label("Name (optional)").fill(name)
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name=f"Create {name or 'Passkey or security key'}").click()


def sign_in_with_passkey(page: Any, login_page: str, lands_on: str) -> None:
    """From ``login_page``, "Sign in with a passkey", no password, and wait to land on ``lands_on``."""
    page.goto(login_page)
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url(lands_on)


def refused_without_the_credential(page: Any, cdp: Any, authenticator: str, login_page: str) -> None:
    """The authenticator removed, the button on ``login_page`` says why in the page, which stays there."""
    from test_browser import visible

    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": authenticator})
    page.goto(login_page)
    page.get_by_role("button", name="Sign in with a passkey").click()
    visible(page.locator("[id^=first-factor-] [data-otp-ceremony-status]").first)
    assert page.url == login_page
