"""A real browser signs in to the demo site with each login pattern, through to the protected page.

Playwright's Python package drives the system's Chromium (Debian's ``chromium``
package, ``/usr/bin/chromium``); no browser is ever downloaded (never run
``playwright install``). The demo site runs on a real threaded HTTP server on
127.0.0.1; codes are read from its dev mailbox page, in a second tab, as a
person would. Every page visited is saved as a screenshot under
``$OTP_PRO_ARTEFACTS`` (default ``<repo>/artefacts/screenshots``).

Without Chromium the tests fail under CI (``CI`` set, as ``.ci/run`` does) and
are skipped with a reason elsewhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest

from otp_pro.testing import system_chromium
from otp_pro_flask.demo_site import DemoSite, running

TIMEOUT_MS = 15_000
REPO = Path(__file__).resolve().parents[3]  # the repository (tests, otp-pro-flask, packages, root)
FAST = {"resend_cooldown_seconds": 0}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright's sync API (one browser per module)."""
    with system_chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, DemoSite]]:
    """The demo site on a free port of 127.0.0.1, served by werkzeug in a thread."""
    database = tmp_path_factory.mktemp("browser") / "demo.sqlite3"
    with running("127.0.0.1", str(database), overrides=FAST) as served:
        yield served


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Callable[[Any, str], None]:
    """``shot(page, name)`` saves a full-page screenshot as a test artefact."""
    folder = Path(os.environ.get("OTP_PRO_ARTEFACTS") or REPO / "artefacts" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
    counter = [0]

    def shot(page: Any, name: str) -> None:
        counter[0] += 1
        page.screenshot(path=str(folder / f"{test}-{counter[0]:02d}-{name}.png"), full_page=True)

    return shot


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    made = browser.new_context()
    made.set_default_timeout(TIMEOUT_MS)
    try:
        yield made
    finally:
        made.close()


def code_from_mailbox(context: Any, base: str, email: str, shot: Callable[[Any, str], None] | None = None) -> str:
    """Open the dev mailbox in another tab and read the newest code sent to ``email``."""
    tab = context.new_page()
    try:
        tab.goto(f"{base}/mailbox")
        message = tab.locator("article.mail-message", has=tab.locator(".mail-to", has_text=email)).first
        text = message.locator("pre").inner_text()
        if shot is not None:
            shot(tab, "mailbox")
    finally:
        tab.close()
    found = re.search(r"\b(\d{6})\b", text)
    assert found, text
    return found.group(1)


def visible(locator: Any) -> None:
    """Wait (up to the timeout) until ``locator`` is visible; fail otherwise."""
    from playwright.sync_api import expect

    expect(locator).to_be_visible()


def fill_password(page: Any, email: str, password: str) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)


def sign_out(page: Any, base: str) -> None:
    page.goto(f"{base}/protected")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/")


PATTERNS = ["two-step", "inline", "modal", "ajax"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_each_login_pattern(pattern: str, demo: tuple[str, DemoSite], context: Any, shots: Any) -> None:
    base, site = demo
    email = f"{pattern}@demo.test"
    site.add_member(email, "pw-" + pattern, enroll_on="email:code")
    page = context.new_page()
    page.goto(f"{base}/")
    shots(page, "home")
    page.click(f"#pattern-{pattern}")
    if pattern == "modal":
        page.get_by_role("link", name="Sign in", exact=True).click()
        visible(page.locator("dialog#login-dialog"))
    shots(page, "password-step")
    fill_password(page, email, "pw-" + pattern)
    page.get_by_role("button", name="Continue" if pattern != "two-step" else "Sign in", exact=True).click()
    if pattern == "two-step":
        page.wait_for_url(f"{base}/otp/verify")
    visible(page.get_by_text(email[0] + "***@demo.test").first)
    shots(page, "code-step")
    code = code_from_mailbox(context, base, email, shots)
    field = page.get_by_label("Verification code")
    field.fill(code)
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{base}/protected")
    assert page.locator("#protected-title").inner_text().startswith("Welcome")
    shots(page, "protected")


def focused(page: Any, expected: str) -> str:
    """The id of the focused element, once it is ``expected`` or after 2 s. Chromium applies
    ``autofocus`` when it next renders the page, which can come after the load event."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(f"document.activeElement && document.activeElement.id === {expected!r}",
                               timeout=2000)
    except PlaywrightTimeout:  # the caller's assertion names the element that has the focus instead
        pass
    return str(page.evaluate("document.activeElement.id"))


def test_keyboard_only_sign_in(demo: tuple[str, DemoSite], context: Any, shots: Any) -> None:
    base, site = demo
    site.add_member("keys@demo.test", "pw-keys", enroll_on="email:code")
    page = context.new_page()
    page.goto(f"{base}/login")
    assert focused(page, "email") == "email"  # autofocus on the first field
    page.keyboard.type("keys@demo.test")
    page.keyboard.press("Tab")
    page.keyboard.type("pw-keys")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/otp/verify")
    assert focused(page, "otp-code") == "otp-code"
    attrs = page.evaluate("[document.activeElement.autocomplete, document.activeElement.inputMode]")
    assert attrs == ["one-time-code", "numeric"]
    page.keyboard.type(code_from_mailbox(context, base, "keys@demo.test"))
    page.keyboard.press("Tab")  # to the "trust this browser" box: focus is visible
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", "")
    shots(page, "focus-visible")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/protected")


def test_forced_totp_setup(demo: tuple[str, DemoSite], context: Any, shots: Any) -> None:
    base, site = demo
    site.add_member("root@demo.test", "pw-root", roles=("admin",))
    page = context.new_page()
    page.goto(f"{base}/login")
    fill_password(page, "root@demo.test", "pw-root")
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{base}/otp/setup")
    shots(page, "choose")
    page.goto(f"{base}/protected")  # the gate sends an un-enrolled required member back to setup
    page.wait_for_url(re.compile(r".*/otp/setup\?next=.*"))
    page.get_by_label("Authenticator app").check()
    page.get_by_role("button", name="Continue").click()
    visible(page.locator("figure.qr svg"))
    secret = page.locator("#totp-secret").inner_text().strip()
    shots(page, "qr")
    page.get_by_label("Code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm").click()
    visible(page.locator("#backup-codes"))  # wait for the response page before reading it
    codes = page.locator("#backup-codes li").all_inner_texts()
    assert len(codes) == 10
    shots(page, "backup-codes")
    page.get_by_role("link", name="I saved them, continue").click()
    page.wait_for_url(f"{base}/protected")
    shots(page, "protected")


def test_backup_code_sign_in(demo: tuple[str, DemoSite], context: Any, shots: Any) -> None:
    base, site = demo
    member = site.add_member("spare@demo.test", "pw-spare", enroll_on="email:code")
    codes = site.otp.regenerate_backup_codes(member)
    page = context.new_page()
    page.goto(f"{base}/login")
    fill_password(page, "spare@demo.test", "pw-spare")
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_label("Verification code").fill(codes[3])
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{base}/protected")
    visible(page.get_by_text("9 backup codes left"))
    shots(page, "protected")


def test_trusted_device_then_revoked(demo: tuple[str, DemoSite], context: Any, shots: Any) -> None:
    base, site = demo
    email, password = "laptop@demo.test", "pw-laptop"
    site.add_member(email, password, enroll_on="email:code")
    page = context.new_page()

    def sign_in() -> None:
        page.goto(f"{base}/login")
        fill_password(page, email, password)
        page.get_by_role("button", name="Sign in", exact=True).click()

    sign_in()
    page.get_by_label("Verification code").fill(code_from_mailbox(context, base, email))
    page.get_by_label(re.compile("Trust this browser")).check()
    shots(page, "trust")
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{base}/protected")
    sign_out(page, base)
    sign_in()
    page.wait_for_url(f"{base}/protected")  # the trusted device skips the second step
    shots(page, "skipped")
    # Remove the device in the settings: password + a fresh code first.
    page.goto(f"{base}/otp/settings")
    page.get_by_role("button", name="Send me a code").click()
    page.get_by_label("Current password").fill(password)
    page.get_by_label("One-time code").fill(code_from_mailbox(context, base, email))
    page.get_by_role("button", name="Confirm").click()
    visible(page.locator("#reauth-ok"))
    shots(page, "settings")
    page.get_by_role("button", name=re.compile("Remove device")).click()
    visible(page.locator("#no-devices"))
    shots(page, "revoked")
    sign_out(page, base)
    sign_in()
    page.wait_for_url(f"{base}/otp/verify")  # asked again after revocation
    shots(page, "asked-again")


def test_lockout_message(demo: tuple[str, DemoSite], context: Any, shots: Any) -> None:
    base, site = demo
    site.add_member("typo@demo.test", "pw-typo", enroll_on="email:code")
    page = context.new_page()
    page.goto(f"{base}/login")
    fill_password(page, "typo@demo.test", "pw-typo")
    page.get_by_role("button", name="Sign in", exact=True).click()
    right = code_from_mailbox(context, base, "typo@demo.test")
    wrong = "000000" if right != "000000" else "111111"
    for attempt in range(5):
        page.get_by_label("Verification code").fill(wrong)
        page.get_by_role("button", name="Verify").click()
        if attempt == 0:
            visible(page.get_by_text("4 attempts left before a lockout").first)
            shots(page, "wrong-code")
    alert = page.get_by_role("alert").filter(has_text="Too many failed attempts")
    assert alert.first.inner_text().strip() == "Too many failed attempts. Try again in 15 minutes."
    assert alert.count() == 1, "the lockout is said once, not once by the lockout box and again as the error"
    shots(page, "locked")


def test_a_failure_page_links_only_to_the_sites_own_pages(demo: tuple[str, DemoSite], context: Any) -> None:
    """A POST to ``/%5Cevil.example`` without a CSRF token answers a failure page; every link on it, as
    Chromium resolves it, stays on this site (a link ``/\\evil.example`` resolves to ``http://evil.example/``)."""
    base, _site = demo
    page = context.new_page()
    page.goto(f"{base}/")
    # The form another site would make the member's browser submit.
    with page.expect_navigation():
        page.evaluate("""path => {
            const form = document.createElement("form");
            form.method = "post";
            form.action = path;
            document.body.appendChild(form);
            form.submit();
        }""", "/%5Cevil.example")
    assert "This form has expired" in page.content()
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    assert hrefs, "no links on the failure page"
    assert all(href.startswith(f"{base}/") for href in hrefs), hrefs


def test_a_second_factor_added_in_the_settings_signs_in_then_is_removed(
        demo: tuple[str, DemoSite], context: Any, tmp_path: Path) -> None:
    """Email first; an authenticator app added from the settings; each signs in; then the app is removed."""
    base, site = demo
    email, password = "two-ways@demo.test", "pw-two-ways"
    member = site.add_member(email, password, enroll_on="email:code")
    page = context.new_page()
    counter = [0]

    def shot(name: str) -> None:
        counter[0] += 1
        page.screenshot(path=str(tmp_path / f"{counter[0]:02d}-{name}.png"), full_page=True)

    def app_code(secret: str) -> str:
        # The demo's clock moves on a time step, so no code of the app is used twice.
        site.clock.offset -= timedelta(seconds=30)
        return pyotp.TOTP(secret).at(site.clock())

    def sign_in() -> None:
        page.goto(f"{base}/login")
        fill_password(page, email, password)
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_url(f"{base}/otp/verify")

    def confirm_in_settings(code: Callable[[], str]) -> None:
        page.goto(f"{base}/otp/settings")
        page.get_by_label("Current password").fill(password)
        page.get_by_label("One-time code").fill(code())
        page.get_by_role("button", name="Confirm", exact=True).click()
        visible(page.locator("#reauth-ok"))

    sign_in()
    page.get_by_label("Verification code").fill(code_from_mailbox(context, base, email))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{base}/protected")
    # Add an authenticator app next to the email: password + a fresh emailed code first.
    page.goto(f"{base}/otp/settings")
    page.get_by_role("button", name="Send me a code").click()
    confirm_in_settings(lambda: code_from_mailbox(context, base, email))
    shot("settings-one-factor")
    page.get_by_role("link", name="Add a sign-in method").click()
    page.wait_for_url(f"{base}/otp/setup")
    page.get_by_label("Authenticator app").check()
    page.get_by_label("Name (optional)").fill("Phone app")
    shot("add-choose")
    page.get_by_role("button", name="Continue").click()
    visible(page.locator("figure.qr svg"))
    secret = page.locator("#totp-secret").inner_text().strip()
    shot("add-qr")
    page.get_by_label("Code").fill(app_code(secret))
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(f"{base}/otp/settings")
    visible(page.get_by_text("Phone app was added to your sign-in methods."))
    assert page.locator("#backup-codes").count() == 0  # the first setup's codes are kept, not shown again
    rows = page.locator("#factors tbody tr")
    assert rows.count() == 2 and "Phone app" in rows.nth(1).inner_text()
    shot("settings-two-factors")
    sign_out(page, base)
    # Each factor signs in: the email's code, then the app's.
    sign_in()
    page.get_by_label("Verification code").fill(code_from_mailbox(context, base, email))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{base}/protected")
    sign_out(page, base)
    sign_in()
    page.locator("details#other-methods summary").click()
    visible(page.get_by_text("Or enter the code Phone app shows"))
    shot("verify-other-methods")
    page.get_by_label("Verification code").fill(app_code(secret))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{base}/protected")
    # Remove the app: the confirmation again (by the app's code this time), then its row goes.
    confirm_in_settings(lambda: app_code(secret))
    page.get_by_role("button", name="Remove Phone app").click()
    visible(page.get_by_text("Phone app was removed from your sign-in methods."))
    assert page.locator("#factors tbody tr").count() == 1
    shot("settings-removed")
    assert [f.kind for f in site.otp.factors(member)] == ["email:code"]
