"""Settings the html-email tests share; the fixtures built on them are in conftest.py."""

from __future__ import annotations

from typing import Any

SECRET_KEY = "html-email-test-key-" + "x" * 32


def base_settings(database_url: str, **overrides: Any) -> dict[str, Any]:
    """Site settings on ``database_url``: email and outbox codes, no resend cooldown, sending caps out of the way."""
    settings: dict[str, Any] = {
        "secret_key": SECRET_KEY,
        "database_url": database_url,
        "site_name": "Example",
        "support_email": "help@example.com",
        "channels": ["email:code", "outbox:code"],
        "default_channel": "email:code",
        "resend_cooldown_seconds": 0,
        "max_sends_per_hour": 1000,
        "max_sends_per_hour_per_recipient": 1000,
    }
    settings.update(overrides)
    return settings
