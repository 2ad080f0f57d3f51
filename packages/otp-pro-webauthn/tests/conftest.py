"""Fixtures: an OtpPro with the installed webauthn factor type, once on SQLite and once on PostgreSQL.

The clock and the run's PostgreSQL database come from the core's ``otp_pro.testing``
pytest plugin; PostgreSQL needs OTP_PRO_TEST_POSTGRES_URL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from otp_pro import Member, OtpPro
from otp_pro.testing import TEST_SECRET_KEY

ORIGIN = "https://example.com"
SESSION = "session-binding-1"


def webauthn_settings(database_url: str, **section: Any) -> dict[str, Any]:
    """A site offering TOTP and passkeys, relying party example.com."""
    return {"secret_key": TEST_SECRET_KEY, "database_url": database_url, "site_name": "Example",
            "channels": ["totp", "webauthn"], "default_channel": "totp", "max_attempts": 5,
            "providers": {"webauthn": {"rp_id": "example.com", "origins": [ORIGIN], **section}}}


@pytest.fixture
def make_otp(backend: str, otp_factory: Callable[..., OtpPro]) -> Callable[..., OtpPro]:
    """``make_otp(user_verification="required")``: the webauthn section's keys as keywords (``site``: the
    site's own settings to change)."""

    def factory(*, site: dict[str, Any] | None = None, **section: Any) -> OtpPro:
        return otp_factory({**webauthn_settings(backend, **section), **(site or {})})

    return factory


@pytest.fixture
def otp(make_otp: Callable[..., OtpPro]) -> OtpPro:
    return make_otp()


@pytest.fixture
def member() -> Member:
    return Member(id="42", roles=["editor"], email="ann@example.com", name="Ann")
