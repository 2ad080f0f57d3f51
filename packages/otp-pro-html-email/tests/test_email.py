"""Branded email end to end: rendered by the plugin, sent by the core's email transport to a real SMTP server."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import ClassVar

import pytest

from otp_pro import Member, Message, Payload, PayloadValue, Transport, hookimpl
from otp_pro.transports import Receipt

ANN = Member(id="1", email="ann@example.com", name="Ann")
LINK = "https://example.com/otp/link?token=abc123&next=%2Faccount&lang=en"


class Links(HTMLParser):
    """Every href in a document, entities decoded as a mail client would."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs.extend(value for name, value in attrs if name == "href" and value is not None)


def parts(mail):
    assert mail.get_content_type() == "multipart/alternative"
    found = [part.get_content_type() for part in mail.iter_parts()]
    assert found == ["text/plain", "text/html"]  # text first: clients show the last part they understand
    return mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content()


def test_code_email_arrives_as_branded_html_with_text_alternative(make_otp, mailbox):
    otp = make_otp()
    otp.begin_setup(ANN, "email:code")
    [mail] = mailbox.to("ann@example.com")
    text, html = parts(mail)
    code = re.search(r"\b(\d{6})\b", text).group(1)
    assert code in html and "Hello Ann" in text and "Hello Ann" in html
    assert mail["Subject"] == "Example: your verification code"
    assert mail["From"] == "Example <otp@example.com>"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["Message-ID"] and mail["Date"] and mail["To"] == "ann@example.com"
    # CSS inlined: the rules of the <style> block are on the elements; only @media rules stay in <style>.
    assert re.search(r'<p class="code" style="[^"]*letter-spacing:8px', html)
    assert re.search(r'<td class="header" style="[^"]*border-top:4px solid #1a56db', html)
    styles = re.findall(r"<style[^>]*>(.*?)</style>", html, re.DOTALL)
    assert all(block.strip().startswith("@media") for block in styles)
    assert 'name="color-scheme"' in html and 'class="preheader"' in html
    assert f"{code} is your Example verification code" in html  # the preheader
    assert "{{" not in html and "{%" not in html and "otpj" not in html
    assert otp.complete_setup(ANN, code)


def test_magic_link_href_survives_inlining(make_otp, mailbox):
    otp = make_otp()
    transport = otp.transports["email"]
    message = otp.render_message(transport, ANN, "email:magic_link", "challenge", {
        "payload": LINK, "payload_kind": "magic_link", "payload_is_link": True, "recipient": "ann@example.com",
        "purpose": "verify", "issued_at": otp.clock(), "expires_at": otp.clock()})
    transport.send(message)
    [mail] = mailbox.to("ann@example.com")
    text, html = parts(mail)
    assert mail["Subject"] == "Example: your sign-in link"
    assert LINK in text
    assert Links(html).hrefs == [LINK, LINK]  # the button and the fallback link, query and & intact
    assert 'class="button" href="https://example.com/otp/link?token=abc123&amp;next=%2Faccount&amp;lang=en"' in html
    assert re.search(r'<td class="button-cell"[^>]*style="[^"]*background-color:#1a56db', html)


class LinkPayload(Payload):
    """A clicked payload, as otp-pro-magic-links registers it."""

    name = "magic_link"
    entered_as_code = False

    def create(self, context):
        return PayloadValue(secret="abc123", display=LINK)


class LinkPlugin:
    @hookimpl
    def otp_pro_register_payloads(self, register):
        register(LinkPayload)


def test_a_link_payload_is_sent_with_the_link_template(make_otp, mailbox):
    # Where otp-pro-magic-links is installed too (one shared environment), its own magic_link payload
    # would take the name first; this test is about the template, so the stand-in takes its place.
    otp = make_otp(plugins=[LinkPlugin()], channels=["email:code", "email:magic_link"],
                   disable_plugins=["otp_pro_magic_links"])
    otp.begin_setup(ANN, "email:magic_link")
    [mail] = mailbox.to("ann@example.com")
    text, html = parts(mail)
    assert mail["Subject"] == "Example: your sign-in link"
    assert LINK in Links(html).hrefs and LINK in text


def test_provider_test_and_notification_use_their_templates(make_otp, mailbox):
    otp = make_otp()
    assert otp.provider_test("email", "ops@example.com", dry_run=False).ok
    [mail] = mailbox.to("ops@example.com")
    _text, html = parts(mail)
    assert mail["Subject"] == "Example: provider test" and "Provider test" in html
    transport = otp.transports["email"]
    notice = "A new device was trusted on your account."
    message = otp.render_message(transport, ANN, "email:code", "notification",
                                 {"notice": notice, "recipient": "ann@example.com"})
    assert message.subject == "Example: security change on your account"
    assert notice in message.text and notice in message.html and "a security notice" in message.html


def test_member_name_is_escaped_in_html_and_plain_in_text(make_otp, mailbox):
    otp = make_otp()
    otp.begin_setup(Member(id="7", email="eve@example.com", name="<script>alert(1)</script>"), "email:code")
    text, html = parts(mailbox.to("eve@example.com")[0])
    assert "Hello <script>alert(1)</script>," in text
    assert "Hello &lt;script&gt;alert(1)&lt;/script&gt;," in html and "<script>" not in html


class SmsLike(Transport):
    """A short-text transport (like SMS) that keeps what it is given."""

    name = "sms_test"
    message_format = "text"
    sent: ClassVar[list[Message]] = []

    def recipient(self, member):
        return "+447700900123"

    def send(self, message):
        self.sent.append(message)
        return Receipt("sms-1")


class SmsPlugin:
    @hookimpl
    def otp_pro_register_transports(self, register):
        register(SmsLike)


def test_text_transports_keep_the_core_wording(make_otp):
    SmsLike.sent.clear()
    otp = make_otp(plugins=[SmsPlugin()], channels=["email:code", "sms_test:code"])
    otp.begin_setup(ANN, "sms_test:code")
    [message] = SmsLike.sent
    assert message.html is None and message.subject == ""
    assert re.fullmatch(r"\d{6} is your Example verification code\. It expires in 10 min\.", message.text)


class ExtraVariables:
    @hookimpl
    def otp_pro_message_variables(self, member, kind):
        return {"help_url": "https://example.com/help?topic=2fa&x=1", "brand_colour": "#bb0000"}


def test_variables_from_other_plugins_reach_the_templates(make_otp, mailbox, tmp_path):
    (tmp_path / "code.txt").write_text("Code {{ payload }}. Help: {{ help_url }}\n")
    otp = make_otp(plugins=[ExtraVariables()], html_email={"template_dir": str(tmp_path)})
    otp.begin_setup(ANN, "email:code")
    text, html = parts(mailbox.to("ann@example.com")[0])
    assert "Help: https://example.com/help?topic=2fa&x=1" in text
    assert "border-top:4px solid #bb0000" in html  # a per-message variable beats the brand_colour setting


def test_branding_settings(make_otp, mailbox):
    otp = make_otp(html_email={"brand_colour": "#0a7d38", "logo_url": "https://cdn.example.com/logo.png",
                               "footer_text": "Example Ltd, 1 High Street"})
    otp.begin_setup(ANN, "email:code")
    text, html = parts(mailbox.to("ann@example.com")[0])
    assert "border-top:4px solid #0a7d38" in html and 'src="https://cdn.example.com/logo.png"' in html
    assert "Example Ltd, 1 High Street" in html and text.rstrip().endswith("Example Ltd, 1 High Street")


@pytest.mark.parametrize(("key", "value"), [("brand_colour", "red; background:url(x)"), ("logo_url", "javascript:x")])
def test_branding_values_that_could_inject_are_refused(make_otp, key, value):
    from otp_pro import ConfigurationError

    with pytest.raises(ConfigurationError) as info:
        make_otp(html_email={key: value})
    assert f"providers.html_email.{key}" in str(info.value)
