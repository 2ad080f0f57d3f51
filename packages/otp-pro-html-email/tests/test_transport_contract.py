"""The ``email`` transport keeps the transport contract with otp-pro-html-email installed.

otp-pro-html-email is a templating plugin, not a transport, so it has no
transport contract of its own. What it must not break is the transport its
messages go through: this runs the core's ``EmailTransportContract`` (a real
SMTP server on loopback that checks the login) with html-email discovered
through its entry point and configured, and checks that every message the
contract sends was rendered by html-email (an HTML alternative carrying the same
code as the text part). So a template that dropped the code, leaked a secret
into a log, or broke provider tests would fail here.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from otp_pro import OtpPro
from otp_pro.testing import EmailTransportContract, Mailbox, Received


class TestEmailContractRenderedByHtmlEmail(EmailTransportContract):
    @pytest.fixture
    def site_settings(self) -> dict[str, Any]:
        return {"providers": {"html_email": {"brand_colour": "#0b5fff", "footer_text": "Example Ltd, 1 Main Street"}}}

    def received(self, provider: tuple[str, int, Mailbox]) -> list[Received]:
        for message in list(provider[2].messages):
            html = message.get_body(("html",))
            assert html is not None, "a message went out without html-email's HTML part"
            text = message.get_body(("plain",))
            assert text is not None
            codes = set(re.findall(r"(?<!\d)\d{6}(?!\d)", str(text.get_content())))
            assert codes <= set(re.findall(r"(?<!\d)\d{6}(?!\d)", str(html.get_content()))), (
                "the HTML part does not carry the text part's code")
        return super().received(provider)

    def test_html_email_is_the_renderer(self, otp: OtpPro, provider: tuple[str, int, Mailbox]) -> None:
        self.enrol(otp, provider)
        self.send_and_redeem(otp, provider)
        last = provider[2].messages[-1]
        html = last.get_body(("html",))
        assert html is not None and "#0b5fff" in str(html.get_content())  # the configured brand colour, inlined
        assert "Example Ltd, 1 Main Street" in str(html.get_content())
        assert [p for p in otp.plugins() if p.distribution == "otp-pro-html-email" and p.error is None]
