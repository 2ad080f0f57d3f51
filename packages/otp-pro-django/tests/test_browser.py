"""A real browser (Debian's Chromium through Playwright) on the startproject site served by ``manage.py runserver``.

A person signs in through ``/admin/login/``, is taken through setup or verify before the
admin answers, reads the code from the loopback SMTP server's mailbox or from an
authenticator (pyotp), opens the settings page and meets step-up on the site's own view.
Every page visited is saved as a screenshot under ``$OTP_PRO_ARTEFACTS``.
"""

from __future__ import annotations

import re
import time
from typing import Any

from django_steps import PASSWORD, make_user, totp_now, totp_seed

from otp_pro.testing import AxeReport, mailed_code


def sign_in(page: Any, base: str, user: Any, path: str = "/admin/") -> None:
    """Sign in through the admin's login form, asked to go on to ``path`` (startproject has no other login)."""
    page.goto(f"{base}/admin/login/?next={path}")
    page.fill("#id_username", user.get_username())
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")


def test_email_setup_and_sign_in_through_the_admin(context, live_server, mailbox, shots):
    user = make_user("browser")
    page = context.new_page()
    sign_in(page, live_server, user)
    page.wait_for_url(re.compile(r"/mfa/setup\?next=%2Fadmin%2F$"))
    shots(page, "forced-setup")
    assert page.get_by_role("heading", name="Set up two-step verification").is_visible()
    page.check("input[value='email:code']")
    page.click("button:has-text('Continue')")
    page.wait_for_load_state()
    shots(page, "after-continue")
    page.wait_for_selector("#otp-code")
    page.fill("#otp-code", mailed_code(mailbox, user.email))
    shots(page, "confirm-email")
    page.click("button:has-text('Confirm')")
    page.wait_for_selector("text=backup codes")
    shots(page, "backup-codes")
    page.click("text=I saved them, continue")
    page.wait_for_url(live_server + "/admin/")
    assert page.get_by_text("Site administration").is_visible()
    shots(page, "admin")

    page.click("#logout-form button")
    mailbox.clear()
    sign_in(page, live_server, user)
    page.wait_for_url(re.compile(r"/mfa/verify\?next=%2Fadmin%2F$"))
    shots(page, "verify")
    # A person who does not want to go on can sign out from the verify page (the admin's logout, a POST).
    page.click("button:has-text('Sign out')")
    page.goto(live_server + "/admin/")
    page.wait_for_url(re.compile(r"/admin/login/"))
    mailbox.clear()
    sign_in(page, live_server, user)
    page.wait_for_url(re.compile(r"/mfa/verify\?next=%2Fadmin%2F$"))
    page.fill("#otp-code", mailed_code(mailbox, user.email))
    page.click("button:has-text('Verify')")
    page.wait_for_url(live_server + "/admin/")
    assert page.get_by_text("Site administration").is_visible()


def test_authenticator_sign_in_settings_page_and_step_up(context, live_server, shots):
    user = make_user("browsertotp")
    page = context.new_page()
    sign_in(page, live_server, user, "/payout/")
    page.wait_for_load_state()
    shots(page, "signed-in")
    page.wait_for_url(re.compile(r"/mfa/setup"))
    page.check("input[value='totp']")
    page.click("button:has-text('Continue')")
    page.wait_for_selector("#otp-code")
    shots(page, "authenticator-setup")
    seed = totp_seed(page.content())
    page.fill("#otp-code", totp_now(seed))
    page.click("button:has-text('Confirm')")
    page.click("text=I saved them, continue")
    page.wait_for_url(live_server + "/payout/")
    assert page.content().count("payout sent") == 1

    page.goto(live_server + "/mfa/settings")
    shots(page, "settings")
    assert page.get_by_role("heading", name="Security settings").is_visible()
    assert page.get_by_text("Authenticator app").first.is_visible()

    time.sleep(2.5)  # the payout view's step-up asks for a second step at most 2 seconds old
    page.goto(live_server + "/payout/")
    page.wait_for_url(re.compile(r"/mfa/verify"))
    shots(page, "step-up")
    page.fill("#otp-code", totp_now(seed, later=True))
    page.click("button:has-text('Verify')")
    page.wait_for_url(live_server + "/payout/")
    assert "payout sent" in page.content()


def test_the_operator_console_inside_the_admin(browser, live_server, mailbox, shots):
    """A superuser (OTP_PRO_OPERATOR_PERMISSION is held by every superuser) opens the console: the admin's layout
    around it, and no serious or critical accessibility violation found by axe-core on the console's pages nor
    on the member's own (setup, backup codes, settings), as Django renders them."""
    user = make_user("consoleop")
    # bypass_csp: axe-core is injected into each page; the pages' own policy allows no inline script.
    context = browser.new_context(bypass_csp=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    axe = AxeReport(page)

    try:
        sign_in(page, live_server, user, path="/mfa/operator/members")
        page.wait_for_url(re.compile(r"/mfa/setup\?next="))
        axe.check("setup")
        page.check("input[value='totp']")
        page.click("button:has-text('Continue')")
        seed = totp_seed(page.content())
        axe.check("setup-totp")
        page.fill("#otp-code", totp_now(seed))
        page.click("button:has-text('Confirm')")
        page.wait_for_selector("text=backup codes")
        axe.check("backup-codes")
        page.goto(live_server + "/mfa/settings")
        page.wait_for_selector("h1")
        axe.check("settings")
        page.goto(live_server + "/admin/")
        axe.check("admin-index")
        page.get_by_role("link", name="Operator console").first.click()  # the admin index's link
        page.wait_for_url(re.compile(r"/mfa/operator/members$"))
        axe.check("operator-members")
        page.goto(live_server + f"/mfa/operator/members?q={user.pk}")
        axe.check("operator-search")
        page.goto(live_server + f"/mfa/operator/member?id={user.pk}")
        page.wait_for_selector("#factors")
        assert page.locator(".breadcrumbs").is_visible() and page.locator("#site-name").is_visible()
        shots(page, "operator-member-in-admin")
        axe.check("operator-member")
        page.goto(live_server + f"/mfa/operator/member/unlock?id={user.pk}")
        axe.check("operator-confirm")
        page.goto(live_server + "/mfa/operator/audit")
        axe.check("operator-audit")
        page.goto(live_server + "/mfa/operator/statistics")
        page.wait_for_selector("#chart-setups")
        shots(page, "operator-statistics-in-admin")
        axe.check("operator-statistics")
        page.goto(live_server + "/mfa/operator/providers")
        axe.check("operator-providers")
    finally:
        context.close()
    axe.assert_clean()
