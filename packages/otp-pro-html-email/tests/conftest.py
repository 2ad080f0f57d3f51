"""Fixtures: OtpPro instances whose ``email`` transport uses the loopback SMTP server.

The SMTP server (``smtp_server`` / ``mailbox``) and the ``clock`` come from
the core's ``otp_pro.testing`` pytest plugin, installed with otp-pro-core.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from html_email_support import base_settings

from otp_pro import OtpPro
from otp_pro.testing import Mailbox


@pytest.fixture
def make_otp(
    tmp_path: Path, otp_factory: Callable[..., OtpPro], smtp_server: tuple[str, int, Mailbox]
) -> Callable[..., OtpPro]:
    """Build OtpPro instances (each on its own SQLite file) whose ``email`` transport uses the loopback server.

    ``make_otp(html_email={...}, plugins=[...], **core_settings)``.
    """
    databases = itertools.count()
    host, port, _ = smtp_server

    def factory(*, plugins: Any = (), html_email: dict[str, Any] | None = None, **overrides: Any) -> OtpPro:
        providers = {"email": {"smtp_host": host, "smtp_port": port, "from_address": "otp@example.com"}}
        if html_email is not None:
            providers["html_email"] = html_email
        overrides.setdefault("providers", providers)
        url = f"sqlite:///{tmp_path}/otp{next(databases)}.sqlite3"
        return otp_factory(base_settings(url, **overrides), plugins=plugins)

    return factory
