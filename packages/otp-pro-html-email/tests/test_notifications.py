"""Security notices (the core's built-in notifications) arrive as branded HTML with a plain-text alternative."""

from __future__ import annotations

import re

from otp_pro import Member

ANN = Member(id="1", email="ann@example.com", name="Ann")
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def test_security_notice_is_rendered_as_html_and_text(make_otp, mailbox, clock):
    otp = make_otp()
    otp.begin_setup(ANN, "email:code", ip="198.51.100.4", user_agent=UA)
    [code_mail] = mailbox.to("ann@example.com")
    code = re.search(r"\b(\d{6})\b", code_mail.get_body(("plain",)).get_content()).group(1)
    backup_codes = otp.complete_setup(ANN, code, ip="198.51.100.4", user_agent=UA)
    mailbox.clear()

    # A device named with markup: the HTML escapes it, the text shows it as typed.
    token = otp.trust_device(ANN, label="<b>Ann's PC</b>", ip="198.51.100.4", user_agent=UA)

    [mail] = mailbox.to("ann@example.com")
    assert mail["Subject"] == "Example: security change on your account"
    assert mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    text = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = mail.get_body(("html",)).get_content()

    notice = ("A device was added to your trusted devices (<b>Ann's PC</b>): it can sign in without the second "
              "step for 30 days.")
    assert text.startswith(f"Hello Ann,\n\n{notice}\n\nWhen: 23 Nov 2026, 12:00 UTC\n"
                           "From: 198.51.100.4 (Chrome on Windows)\n\n")
    assert "If you did not make this change" in text and "help@example.com at once" in text
    # The same facts in the HTML, escaped, styled by inlined CSS (the layout's <style> keeps only @media rules).
    assert "A device was added to your trusted devices (&lt;b&gt;Ann&#39;s PC&lt;/b&gt;)" in html
    assert "<b>Ann's PC</b>" not in html
    assert re.search(r'<td class="fact-name" style="[^"]*font-weight:bold[^"]*"[^>]*>When</td>', html)
    assert re.search(r'<td class="fact" style="[^"]*"[^>]*>23 Nov 2026, 12:00 UTC</td>', html)
    assert re.search(r'<td class="fact" style="[^"]*"[^>]*>198.51.100.4 \(Chrome on Windows\)</td>', html)
    assert re.search(r'<p class="warning" style="[^"]*border-left:4px solid #ea580c', html)
    assert re.search(r'<td class="header" style="[^"]*border-top:4px solid #1a56db', html)  # branded like codes
    assert "as a security notice about your Example account" in html
    assert "{{" not in html and "{%" not in html
    # Nothing secret: not the device token, not the setup code, not a backup code.
    whole = mail.as_string()
    assert token not in whole and code not in whole and not [c for c in backup_codes if c in whole]

    # The core audited the notice it sent.
    [sent] = [e for e in otp.events(kinds=["notification_sent"]) if e.details["change"] == "device_trusted"]
    assert sent.outcome == "ok" and sent.details["transport"] == "email"


def test_notice_without_ip_or_browser_leaves_the_from_row_out(make_otp, mailbox):
    otp = make_otp()
    otp.reset(ANN, actor="support")
    [mail] = mailbox.to("ann@example.com")
    html = mail.get_body(("html",)).get_content()
    text = mail.get_body(("plain",)).get_content()
    assert ">When</td>" in html and ">From</td>" not in html and "From:" not in text
    assert "This was done by a site administrator." in html and "This was done by a site administrator." in text
