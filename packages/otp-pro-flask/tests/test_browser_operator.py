"""A real browser uses the demo's operator console: an admin sets up an authenticator app, finds a member by
email, resets them through the confirmation page, reads the audit log and the statistics of a month of
generated activity. axe-core checks each page (the console's and the member's own) for serious or critical
accessibility violations (``otp_pro.testing.AxeReport``, shared by every adapter's browser tests).
Each console page is saved as a test artefact and, with ``OTP_PRO_DOCS_IMG=1``, to ``docs/img/operator-*.png``
(the docs show them: regenerated on purpose, not by every run).

Playwright's Python package drives Debian's Chromium (``/usr/bin/chromium``), as in test_browser.py; no
browser is ever downloaded. Without Chromium the test fails under CI and is skipped elsewhere.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from test_browser import FAST, TIMEOUT_MS, fill_password, shots, visible

from otp_pro.testing import AxeReport, fill_activity, system_chromium
from otp_pro_flask.demo_site import DemoSite, running

#: Where the docs' screenshots of the console live: the repository's docs/img.
DOCS_IMG = Path(__file__).resolve().parents[3] / "docs" / "img"
__all__ = ["shots"]  # a fixture of test_browser, used here


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with system_chromium() as chromium:
        yield chromium


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, DemoSite]]:
    """The demo site with a month of generated activity of 150 members it knows (editors and members)."""
    with running("127.0.0.1", str(tmp_path / "demo.sqlite3"), overrides=FAST) as (base, site):
        people = [*site.store.add_members([(f"editor{n}@demo.test", f"Editor {n}") for n in range(90)], "pw",
                                          ("editor",)),
                  *site.store.add_members([(f"member{n}@demo.test", f"Member {n}") for n in range(60)], "pw",
                                          ("member",))]
        fill_activity(site.otp, days=30, per_day=80, member_ids=[m.id for m in people])
        yield base, site


def test_an_admin_uses_the_operator_console(browser: Any, demo: tuple[str, DemoSite], shots: Any) -> None:
    base, site = demo
    # bypass_csp: axe-core is injected into each page; the pages' own policy allows no inline script.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()

    axe = AxeReport(page)

    def keep(name: str) -> None:
        axe.check(name)
        shots(page, name)
        if os.environ.get("OTP_PRO_DOCS_IMG", "") not in ("", "0"):
            page.screenshot(path=str(DOCS_IMG / f"operator-{name}.png"), full_page=True)

    try:
        page.goto(f"{base}/otp/operator/members")
        assert page.locator("h1").inner_text() == "Page not found"  # signed out: nothing to see
        site.add_member("ops@demo.test", "pw-ops", roles=("admin",))
        page.goto(f"{base}/login")
        fill_password(page, "ops@demo.test", "pw-ops")
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_url(f"{base}/otp/setup")
        page.get_by_label("Authenticator app").check()
        page.get_by_role("button", name="Continue").click()
        secret = page.locator("#totp-secret").inner_text().strip()
        page.get_by_label("Code").fill(pyotp.TOTP(secret).now())
        page.get_by_role("button", name="Confirm").click()
        visible(page.locator("#backup-codes"))

        keep("setup-done")  # the member pages too: the backup codes after the setup
        page.goto(f"{base}/otp/settings")
        keep("settings")
        page.get_by_role("button", name="Sign out").click()
        page.goto(f"{base}/login")
        keep("login")
        fill_password(page, "ops@demo.test", "pw-ops")
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_url(re.compile(r".*/otp/verify.*"))
        keep("verify")
        # The next time step's code: the setup's step is spent (each is accepted once); one step ahead is allowed.
        page.get_by_label("Verification code").fill(pyotp.TOTP(secret).at(time.time() + 30))
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(re.compile(r".*/protected.*"))
        page.goto(f"{base}/otp/operator/members")
        page.get_by_label("Member id or email address").fill("editor@demo.test")
        page.get_by_role("button", name="Search").click()
        visible(page.locator("#matches"))
        keep("members")
        page.locator("#matches a").first.click()
        visible(page.locator("#factors"))
        assert "on (email:code)" in page.locator("#enrolled").inner_text()
        keep("member")
        page.get_by_role("link", name="Reset…").click()
        visible(page.get_by_role("button", name="Reset"))
        keep("confirm")
        page.get_by_role("button", name="Reset").click()
        visible(page.locator(".flash.info"))
        assert "not set up" in page.locator("#enrolled").inner_text()

        page.get_by_role("link", name="Audit log").click()
        page.get_by_label("Event", exact=True).select_option("reset")
        page.get_by_role("button", name="Show").click()
        visible(page.locator("#events"))
        assert re.search(r"console:m-[0-9a-f]{12}", page.locator("#events").inner_text())
        page.get_by_label("Event", exact=True).select_option("")
        page.get_by_role("button", name="Show").click()
        visible(page.locator("#older"))
        keep("audit")

        page.get_by_role("link", name="Statistics").click()
        visible(page.locator("#chart-delivery_times svg"))
        assert page.locator("figure.chart svg").count() == 7
        keep("statistics")

        page.get_by_role("link", name="Providers").click()
        # SMS when otp-pro-sms-twilio is installed beside this package (the integration run), else email.
        sms = "sms_twilio" in site.otp.transports
        page.get_by_label("Transport").select_option("sms_twilio" if sms else "email")
        page.get_by_label("Recipient").fill("+447400123456" if sms else "ops@demo.test")
        page.get_by_role("button", name="Test").click()
        visible(page.locator("#provider-result"))
        assert "Dry run" in page.locator("#provider-result").inner_text()
        assert "********" in page.locator("#redacted-settings").inner_text()
        keep("providers")
    finally:
        context.close()
    axe.assert_clean()
