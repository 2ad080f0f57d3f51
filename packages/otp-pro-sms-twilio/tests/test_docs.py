"""The companion's docs page stays true: every setting, every mapped error code, linked from the index."""

from __future__ import annotations

from pathlib import Path

import pytest

from otp_pro_sms_twilio import errors
from otp_pro_sms_twilio.transport import TwilioSmsTransport

DOCS = Path(__file__).resolve().parents[3] / "docs"
PAGE = DOCS / "sms-twilio.md"
README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("key", [s.name for s in TwilioSmsTransport.settings])
def test_every_setting_is_in_the_settings_table(key):
    table = PAGE.read_text().split("## Configure")[1].split("\n## ")[0]
    assert f"| `{key}` |" in table


@pytest.mark.parametrize("code", [
    *map(str, errors.PERMANENT_CODES), str(errors.RATE_LIMITED), errors.TIMEOUT, errors.CONNECTION_REFUSED,
    errors.CONNECTION_ERROR, errors.TLS_ERROR, errors.BAD_RESPONSE, errors.NOT_CONFIGURED,
])
def test_every_provider_code_has_a_troubleshooting_row(code):
    troubleshooting = PAGE.read_text().split("## Troubleshooting by error code")[1]
    assert f"| `{code}`" in troubleshooting


def test_the_page_is_linked_from_the_index():
    assert "(sms-twilio.md)" in (DOCS / "index.md").read_text()


def test_the_readme_names_the_dependencies():
    text = README.read_text()
    assert "`twilio`" in text and "`phonenumbers`" in text
