"""A real browser on the demo site with every companion installed: SMS codes, magic links, HTML email.

The browser, demo-site, context and screenshot fixtures and the page helpers are
the Flask adapter's (packages/otp-pro-flask/tests/test_browser.py), imported rather
than copied, so the same rules hold: Debian's Chromium at /usr/bin/chromium
driven by Playwright (never ``playwright install``); without it the tests fail
under CI (``CI`` set) and are skipped with a reason elsewhere; screenshots go to
``$OTP_PRO_ARTEFACTS`` (default ``<repo>/artefacts/screenshots``).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from test_browser import code_from_mailbox, fill_password, visible

from otp_pro.storage.schema import challenges
from otp_pro_flask.demo_site import DemoSite

SMS = ("sms@demo.test", "sms-demo", "+447400123456")
LINK = ("link@demo.test", "link-demo")
EDITOR = ("editor@demo.test", "editor-demo")

# The Flask adapter's browser fixtures (browser, context, demo, shots), registered by module rather than
# imported name by name; test_browser's own tests are not collected here.
pytest_plugins = ("test_browser",)


def consumed_at(site: DemoSite, account: tuple[str, str]) -> Any:
    """When the newest challenge of the demo member ``account`` (email, password) was used (None: not yet)."""
    member = site.store.check_login(*account)
    assert member is not None
    with site.otp.db.read() as conn:
        row = conn.execute(select(challenges.c.consumed_at).where(challenges.c.member_id == member.id)
                           .order_by(challenges.c.id.desc())).first()
    assert row is not None, f"no challenge for {account[0]}"
    return row[0]


def mailbox_entry(page: Any, base: str, recipient: str) -> Any:
    """Open the dev mailbox in ``page`` and return the newest message to ``recipient`` (a locator)."""
    page.goto(f"{base}/mailbox")
    return page.locator("article.mail-message", has=page.locator(".mail-to", has_text=recipient)).first


def test_home_lists_every_companion(demo: tuple[str, DemoSite], context: Any, shots: Any) -> None:
    base, _site = demo
    page = context.new_page()
    page.goto(f"{base}/")
    visible(page.get_by_text("Companions installed: otp_pro_html_email, otp_pro_magic_links, otp_pro_sms_twilio, "
                             "otp_pro_webauthn"))
    for channel in ("sms_twilio:code", "email:magic_link", "email:code", "totp"):
        visible(page.locator("#channels-title + p + ul code", has_text=re.compile(f"^{channel}$")))
    for email in (SMS[0], LINK[0]):
        visible(page.locator("table code", has_text=email))
    shots(page, "home")


def test_sms_member_signs_in_with_the_code_from_the_mailbox(
    demo: tuple[str, DemoSite], context: Any, shots: Any
) -> None:
    base, site = demo
    email, password, phone = SMS
    page = context.new_page()
    page.goto(f"{base}/login")
    fill_password(page, email, password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{base}/otp/verify")
    assert page.locator("#sent-to").inner_text().strip() == \
        "We sent a 6-digit code by SMS (Twilio) to +44*******456."
    shots(page, "verify")
    tab = context.new_page()
    entry = mailbox_entry(tab, base, phone)
    assert entry.locator(".mail-channel").inner_text() == "sms_twilio:code"
    tab.close()
    code = code_from_mailbox(context, base, phone, shots)
    message = site.outbox.last(phone)
    assert message is not None and message.headers["X-Otp-Pro-Demo-Transport"] == "sms_twilio"
    page.get_by_label("Verification code").fill(code)
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{base}/protected")
    assert page.locator("#protected-title").inner_text().startswith("Welcome")
    shots(page, "protected")


def test_magic_link_from_the_mailbox(demo: tuple[str, DemoSite], browser: Any, context: Any, shots: Any) -> None:
    base, site = demo
    email, password = LINK
    page = context.new_page()
    page.goto(f"{base}/login")
    fill_password(page, email, password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{base}/otp/verify")
    visible(page.get_by_text("l***@demo.test").first)
    assert "sign-in link" in page.locator("main").inner_text()
    shots(page, "verify")

    # A mail scanner (another browser, its own session) opens the link: GET shows a button, burns nothing.
    scanner = browser.new_context()
    try:
        scan = scanner.new_page()
        href = mailbox_entry(scan, base, email).locator("pre a").first.get_attribute("href")
        assert href and re.fullmatch(rf"{re.escape(base)}/otp/magic\?token=[A-Za-z0-9_-]+", href), href
        scan.goto(href)
        visible(scan.get_by_role("button", name="Continue signing in"))
        scan.reload()
        visible(scan.get_by_role("button", name="Continue signing in"))
    finally:
        scanner.close()
    assert consumed_at(site, LINK) is None

    # The member clicks the link in the mailbox, in the browser that signed in.
    mail = context.new_page()
    entry = mailbox_entry(mail, base, email)
    assert entry.locator(".mail-channel").inner_text() == "email:magic_link"
    shots(mail, "mailbox")
    link = entry.locator("pre a").first
    href = link.get_attribute("href")
    link.click()
    mail.wait_for_url(re.compile(r".*/otp/magic\?token=.*"))
    visible(mail.get_by_role("button", name="Continue signing in"))
    shots(mail, "landing")
    assert consumed_at(site, LINK) is None  # the landing page alone (GET) does not use the link
    mail.get_by_role("button", name="Continue signing in").click()
    mail.wait_for_url(f"{base}/protected")
    assert mail.locator("#protected-title").inner_text().startswith("Welcome")
    shots(mail, "protected")
    assert consumed_at(site, LINK) is not None
    # The first tab shares the session: it is signed in too.
    page.goto(f"{base}/protected")
    page.wait_for_url(f"{base}/protected")
    # The link works once.
    mail.goto(href)
    mail.get_by_role("button", name="Continue signing in").click()
    visible(mail.get_by_text(re.compile("already used")).first)
    shots(mail, "replay")


def test_email_code_mailbox_shows_the_html_emails_text_part(
    demo: tuple[str, DemoSite], context: Any, shots: Any
) -> None:
    """otp-pro-html-email renders the email code; the dev mailbox shows its text part, with the same code."""
    base, site = demo
    email, password = EDITOR
    page = context.new_page()
    page.goto(f"{base}/login")
    fill_password(page, email, password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{base}/otp/verify")
    code = code_from_mailbox(context, base, email, shots)
    message = site.outbox.last(email)
    assert message is not None and message.channel == "email:code"
    assert message.html is not None and code in message.html  # the HTML part carries the same code
    tab = context.new_page()
    shown = mailbox_entry(tab, base, email).locator("pre").inner_text()
    tab.close()
    assert shown.strip() == message.text.strip()
    page.get_by_label("Verification code").fill(code)
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{base}/protected")
    shots(page, "protected")
