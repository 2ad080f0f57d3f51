"""A real browser signs in to the FastAPI test site served by uvicorn: email code, TOTP, and a forced setup.

Playwright's Python package drives the system's Chromium (Debian's ``chromium`` package,
``/usr/bin/chromium``); no browser is ever downloaded (never run ``playwright install``). Codes come from
the real SMTP server on loopback. Every page is saved as a screenshot under ``$OTP_PRO_ARTEFACTS``
(default ``<repo>/artefacts/screenshots``). Without Chromium the tests fail under CI (``CI`` set, as
``.ci/run`` does) and are skipped with a reason elsewhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from conftest import ANN, NEW, TOM, Site

from otp_pro.testing import AxeReport, mailed_code, system_chromium

TIMEOUT_MS = 15_000
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright's sync API (one browser per module)."""
    with system_chromium() as chromium:
        yield chromium


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[[Any, str], None]:
    """``shot(page, name)`` saves a full-page screenshot as a test artefact."""
    folder = Path(os.environ.get("OTP_PRO_ARTEFACTS") or REPO / "artefacts" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    test = "starlette-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
    counter = [0]

    def save(page: Any, name: str) -> None:
        counter[0] += 1
        page.screenshot(path=str(folder / f"{test}-{counter[0]:02d}-{name}.png"), full_page=True)

    return save


def password_step(page: Any, site: Site, email: str) -> None:
    page.goto(f"{site.base}/protected")  # signed out: the site's own page answers; sign in from /login
    page.goto(f"{site.base}/login?next=/protected")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("correct horse")
    page.get_by_role("button", name="Sign in").click()


def test_email_code_sign_in_in_a_browser(site: Site, page: Any, shot: Callable[[Any, str], None]) -> None:
    password_step(page, site, ANN.email or "")
    page.wait_for_url(f"{site.base}/otp/verify")
    assert page.get_by_text("a***@example.com").first.is_visible()
    shot(page, "verify")
    page.get_by_label("Verification code").fill(mailed_code(site.mailbox, ANN.email or ""))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{site.base}/protected")
    assert page.inner_text("p") == "protected page of Ann"
    page.goto(f"{site.base}/otp/settings")
    assert page.get_by_role("heading").first.is_visible()
    shot(page, "settings")


def test_totp_sign_in_in_a_browser(site: Site, page: Any, shot: Callable[[Any, str], None]) -> None:
    password_step(page, site, TOM.email or "")
    page.wait_for_url(f"{site.base}/otp/verify")
    shot(page, "verify")
    page.get_by_label("Verification code").fill(site.totp_now())
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{site.base}/protected")
    assert page.inner_text("p") == "protected page of Tom"


def test_forced_totp_setup_in_a_browser(site: Site, page: Any, shot: Callable[[Any, str], None]) -> None:
    password_step(page, site, NEW.email or "")
    page.wait_for_url(re.compile(r".*/otp/setup.*"))
    page.goto(f"{site.base}/protected")  # the gate sends a required member without a second step back
    page.wait_for_url(re.compile(r".*/otp/setup\?next=.*"))
    page.get_by_label("Authenticator app").check()
    page.get_by_role("button", name="Continue").click()
    secret = page.locator("#totp-secret").inner_text().strip()
    shot(page, "qr")
    page.get_by_label("Code").fill(pyotp.TOTP(secret).at(site.clock()))
    page.get_by_role("button", name="Confirm").click()
    page.locator("#backup-codes").wait_for()
    assert len(page.locator("#backup-codes li").all_inner_texts()) == 10
    shot(page, "backup-codes")


def test_no_serious_accessibility_violation_on_the_member_and_console_pages(
        browser: Any, make_site: Callable[..., Site], shot: Callable[[Any, str], None]) -> None:
    """axe-core (``otp_pro.testing.AxeReport``, the check every adapter's browser tests share) finds no
    serious or critical violation on the pages as Starlette serves them: the member's (verify, settings, forced
    setup) and the operator console's (Tom is the operator)."""
    site = make_site(operator=lambda member: member.id == TOM.id)
    # bypass_csp: axe-core is injected into each page; the pages' own policy allows no inline script.
    context = browser.new_context(bypass_csp=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    axe = AxeReport(page)

    try:
        password_step(page, site, TOM.email or "")
        page.wait_for_url(f"{site.base}/otp/verify")
        axe.check("verify")
        page.get_by_label("Verification code").fill(site.totp_now())
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(f"{site.base}/protected")
        page.goto(f"{site.base}/otp/settings")
        axe.check("settings")
        console = {"operator-members": "/otp/operator/members", "operator-search": "/otp/operator/members?q=1",
                   "operator-member": f"/otp/operator/member?id={ANN.id}",
                   "operator-confirm": f"/otp/operator/member/reset?id={ANN.id}",
                   "operator-audit": "/otp/operator/audit", "operator-statistics": "/otp/operator/statistics",
                   "operator-providers": "/otp/operator/providers"}
        for name, path in console.items():
            page.goto(site.base + path)
            assert page.get_by_role("heading").first.is_visible(), name
            axe.check(name)
        shot(page, "operator-providers")
        context.clear_cookies()
        password_step(page, site, NEW.email or "")
        page.wait_for_url(re.compile(r".*/otp/setup.*"))
        axe.check("setup")
    finally:
        context.close()
    axe.assert_clean()
