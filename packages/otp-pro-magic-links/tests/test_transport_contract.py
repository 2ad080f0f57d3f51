"""The transport contract run over ``email:magic_link``, with otp-pro-magic-links installed.

otp-pro-magic-links is a payload, not a transport. The parts of the contract
that concern the transport (registration, settings redaction, recipients,
availability) run unchanged against the built-in ``email`` transport; the parts
that send run with the ``magic_link`` payload instead of a code: the member is
enrolled and signs in by redeeming the link's token (``verify_token``), a link
from a failed send must not work, and no token or link may appear in the audit
records, the log or an error. The provider is the core's loopback SMTP server
that checks the login.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from otp_pro import Member, OtpPro
from otp_pro.testing import EmailTransportContract
from otp_pro_magic_links.payload import PAYLOAD, TOKEN_PARAM

BASE_URL = "https://example.com"


class TestEmailContractWithMagicLinks(EmailTransportContract):
    payload = PAYLOAD

    @pytest.fixture
    def site_settings(self) -> dict[str, Any]:
        return {"providers": {"magic_links": {"base_url": BASE_URL}}}

    def extract_secret(self, text: str, otp: OtpPro) -> str:
        links = set(re.findall(rf"{re.escape(BASE_URL)}/\S+", text))
        assert len(links) == 1, f"expected one sign-in link in the message, found {len(links)}"
        token = parse_qs(urlsplit(links.pop()).query).get(TOKEN_PARAM, [""])[0]
        assert token, "the link has no token"
        return token

    def redeem(self, otp: OtpPro, member: Member, secret: str, *, setup: bool) -> bool:
        result = otp.verify_token(PAYLOAD, secret)
        return result.ok and result.member_id == member.id
