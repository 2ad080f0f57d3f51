"""Fixtures: an OtpPro on SQLite and, when OTP_PRO_TEST_POSTGRES_URL is set, on PostgreSQL.

``backend`` (from the ``otp_pro.testing`` pytest plugin, like ``clock``,
``smtp_server``, ``mailbox`` and ``pg_url``) runs a test once per database.
PostgreSQL tests use a database created for this run (dropped at the end) and
tables truncated between tests. Settings and helpers the test modules import
are in core_support.py and ``otp_pro.testing``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from core_support import base_settings

from otp_pro import Member, OtpPro
from otp_pro.testing import Mailbox


@pytest.fixture
def make_otp(
    backend: str, otp_factory: Callable[..., OtpPro], smtp_server: tuple[str, int, Mailbox]
) -> Callable[..., OtpPro]:
    """Build OtpPro instances on the test's database: ``make_otp(max_attempts=3, plugins=[...])``.

    The ``email`` transport points at the loopback SMTP server; ``otp_factory`` closes them.
    """
    host, port, _mailbox = smtp_server

    def factory(*, plugins: Any = (), **overrides: Any) -> OtpPro:
        overrides.setdefault(
            "providers", {"email": {"smtp_host": host, "smtp_port": port, "from_address": "otp@example.com"}}
        )
        return otp_factory(base_settings(backend, **overrides), plugins=plugins)

    return factory


@pytest.fixture
def otp(make_otp: Callable[..., OtpPro]) -> OtpPro:
    return make_otp()


@pytest.fixture
def member() -> Member:
    return Member(id="42", roles=["editor"], email="ann@example.com", name="Ann", fields={"phone": "+447911123456"})
