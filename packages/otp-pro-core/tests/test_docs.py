"""The docs stay true: every setting and every audit event kind is documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from otp_pro import audit
from otp_pro.builtins.email import EmailTransport
from otp_pro.builtins.outbox import OutboxTransport
from otp_pro.settings import CORE_SETTINGS, ROLE_SETTINGS, TOTP_SETTINGS

DOCS = Path(__file__).resolve().parents[3] / "docs"

SETTING_KEYS = (
    [s.name for s in CORE_SETTINGS]
    + [f"totp.{s.name}" for s in TOTP_SETTINGS]
    + [f"roles.<name>.{s.name}" for s in ROLE_SETTINGS]
    + [f"providers.email.{s.name}" for s in EmailTransport.settings]
    + [f"providers.outbox.{s.name}" for s in OutboxTransport.settings]
)
EVENT_KINDS = sorted(
    value for name, value in vars(audit).items()
    if name.isupper() and isinstance(value, str) and value not in (audit.OK, audit.FAILED, audit.INFO)
)


@pytest.mark.parametrize("key", SETTING_KEYS)
def test_every_setting_is_in_the_settings_page(key):
    assert f"`{key}`" in (DOCS / "settings.md").read_text()


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_every_audit_event_kind_is_documented(kind):
    assert f"`{kind}`" in (DOCS / "audit-events.md").read_text()


def test_factor_changes_are_documented():
    text = (DOCS / "audit-events.md").read_text()
    for kind in audit.FACTOR_CHANGES:
        assert f"`{kind}`" in text.split("Factor changes")[-1]
