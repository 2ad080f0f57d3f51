"""Passkeys in a real browser on the demo site: Chromium's DevTools virtual authenticator answers.

Debian's Chromium (``/usr/bin/chromium``) is driven by Playwright (never ``playwright install``), as in the
Flask adapter's browser tests, whose fixtures and helpers this module uses. The demo runs on
``http://localhost:<port>``: WebAuthn needs a secure context, which plain http is on ``localhost`` only,
and a relying-party id that is a domain, not an IP address. The virtual authenticator is :mod:`passkeys`'.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from passkeys import credentials, refused_without_the_credential, register_passkey, with_authenticator
from test_browser import FAST, code_from_mailbox, fill_password, sign_out, visible

from otp_pro_flask.demo_site import DemoSite
from otp_pro_flask.demo_site.server import running

PASSKEY = ("passkey@demo.test", "passkey-demo")
EDITOR = ("editor@demo.test", "editor-demo")

pytest_plugins = ("test_browser",)


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[str, DemoSite]]:
    """The demo site on a free port of localhost (not 127.0.0.1: see the module's docstring)."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="otp-pro-passkeys-") as folder:
        with running("localhost", str(Path(folder) / "demo.sqlite3"), overrides=FAST) as served:
            yield served


def sign_in_with_password(page: Any, base: str, account: tuple[str, str]) -> None:
    page.goto(f"{base}/login")
    fill_password(page, *account)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_a_passkey_member_registers_at_first_sign_in_then_signs_in_with_it(
    demo: tuple[str, DemoSite], context: Any, shots: Any
) -> None:
    base, site = demo
    page, cdp, authenticator = with_authenticator(context)
    sign_in_with_password(page, base, PASSKEY)
    page.wait_for_url(f"{base}/otp/setup")
    register_passkey(page, "This laptop")
    visible(page.get_by_role("link", name="I saved them, continue"))
    shots(page, "backup-codes")
    [credential] = credentials(cdp, authenticator)
    assert credential["isResidentCredential"]
    member = site.store.check_login(*PASSKEY)
    assert member is not None
    [factor] = site.otp.factors(member)
    assert (factor.kind, factor.label) == ("webauthn", "This laptop")
    page.get_by_role("link", name="I saved them, continue").click()
    page.wait_for_url(f"{base}/protected")

    sign_out(page, base)
    sign_in_with_password(page, base, PASSKEY)
    page.wait_for_url(f"{base}/otp/verify")
    shots(page, "verify")
    page.get_by_role("button", name="Use your passkey or security key").click()
    page.wait_for_url(f"{base}/protected")
    assert credentials(cdp, authenticator)[0]["signCount"] >= 1
    assert site.otp.events(member, kinds=["verify_ok"])[0].channel == "webauthn"


def test_an_editor_adds_a_passkey_in_settings_and_signs_in_with_it(
    demo: tuple[str, DemoSite], context: Any, shots: Any
) -> None:
    base, site = demo
    page, cdp, authenticator = with_authenticator(context)
    sign_in_with_password(page, base, EDITOR)
    page.wait_for_url(f"{base}/otp/verify")
    page.get_by_label("Verification code").fill(code_from_mailbox(context, base, EDITOR[0]))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{base}/protected")

    # Changing the factors needs the password and a fresh code.
    page.goto(f"{base}/otp/settings")
    page.locator("#reauth-send").click()
    page.wait_for_url(f"{base}/otp/settings")
    page.get_by_label("Current password").fill(EDITOR[1])
    page.get_by_label("One-time code").fill(code_from_mailbox(context, base, EDITOR[0]))
    page.get_by_role("button", name="Confirm").click()
    visible(page.locator("#reauth-ok"))
    page.locator("#add-factor").click()
    register_passkey(page, "Work laptop")
    page.wait_for_url(f"{base}/otp/settings")
    row = page.locator("tr[data-kind=webauthn]")
    visible(row.locator(".factor-label", has_text="Work laptop"))
    assert "Never" in row.inner_text()  # listed with its last use
    shots(page, "settings")

    sign_out(page, base)
    sign_in_with_password(page, base, EDITOR)
    page.wait_for_url(f"{base}/otp/verify")
    page.get_by_role("button", name="Use your passkey or security key").click()
    page.wait_for_url(f"{base}/protected")
    page.goto(f"{base}/otp/settings")
    assert "Never" not in page.locator("tr[data-kind=webauthn]").inner_text()
    assert len(credentials(cdp, authenticator)) == 1


@pytest.mark.parametrize(("locale", "told"), [("en-US", "This browser cannot use passkeys"),
                                               ("de-DE", "Dieser Browser kann keine Passkeys")])
def test_a_browser_without_webauthn_is_told_so_in_its_language(
        demo: tuple[str, DemoSite], browser: Any, locale: str, told: str) -> None:
    base, _site = demo
    context = browser.new_context(locale=locale)  # and its Accept-Language
    try:
        # A browser without the API (an old one, or WebAuthn switched off): the page says so, in the words the
        # page gave the script (data-texts), so in the member's language.
        context.add_init_script("delete window.PublicKeyCredential;")
        page = context.new_page()
        page.goto(f"{base}/login")
        page.fill("#email", PASSKEY[0])
        page.fill("#password", PASSKEY[1])
        page.click("form:not(.first-factor) button[type=submit]")
        page.wait_for_url(f"{base}/otp/verify")
        status = page.locator("[data-otp-ceremony-status]").first
        visible(status)
        assert status.inner_text().startswith(told)
        assert page.locator("[data-otp-ceremony-start]").first.is_disabled()
    finally:
        context.close()


def test_sign_in_with_a_passkey_button_without_a_password(
    demo: tuple[str, DemoSite], context: Any, shots: Any
) -> None:
    base, site = demo
    account = ("pia@demo.test", "pia-demo-password")
    member = site.add_member(*account, roles=("passkey",), name="Pia Passkey")
    page, cdp, authenticator = with_authenticator(context)
    sign_in_with_password(page, base, account)
    page.wait_for_url(f"{base}/otp/setup")
    register_passkey(page)
    page.get_by_role("link", name="I saved them, continue").click()
    page.wait_for_url(f"{base}/protected")
    sign_out(page, base)

    # No email, no password: the authenticator offers its discoverable credential for this site.
    page.goto(f"{base}/login")
    shots(page, "login")
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url(f"{base}/protected")
    assert "Pia Passkey" in page.locator("main").inner_text() or page.locator("#protected-title").is_visible()
    [event] = [e for e in site.otp.events(member, kinds=["verify_ok"]) if e.details.get("first_factor")]
    assert event.channel == "webauthn"
    assert credentials(cdp, authenticator)[0]["signCount"] >= 1

    # Another browser without the credential cannot: the authenticator has none for the site.
    sign_out(page, base)
    refused_without_the_credential(page, cdp, authenticator, f"{base}/login")
