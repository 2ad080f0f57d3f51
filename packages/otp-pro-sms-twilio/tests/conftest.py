"""Fixtures: a fake Twilio Messaging API on 127.0.0.1 (twilio_support.FakeTwilio) and OtpPro factories.

The ``clock`` and ``otp_factory`` fixtures come from the core's ``otp_pro.testing`` pytest plugin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from twilio_support import MOBILE_GB, FakeTwilio, site_settings, sms_settings

from otp_pro import Member, OtpPro


@pytest.fixture(autouse=True)
def _no_proxy_for_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests honours HTTP(S)_PROXY; the fake server must be reached directly.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("OTP_PRO_DISABLE_PLUGINS", raising=False)


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    """A fresh fake Messaging API for the test."""
    server = FakeTwilio().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_otp(tmp_path: Any, otp_factory: Callable[..., OtpPro], twilio: FakeTwilio) -> Callable[..., OtpPro]:
    """Build OtpPro instances on a fresh SQLite file: ``make_otp(sms={"max_retries": 0}, mode="required")``.

    ``sms`` overrides keys of the ``providers.sms_twilio`` section (a value of None removes the key).
    """

    def factory(*, sms: dict[str, Any] | None = None, plugins: Any = (), **overrides: Any) -> OtpPro:
        overrides.setdefault("providers", {"sms_twilio": sms_settings(twilio, **(sms or {}))})
        return otp_factory(site_settings(f"sqlite:///{tmp_path}/otp.sqlite3", **overrides), plugins=plugins)

    return factory


@pytest.fixture
def otp(make_otp: Callable[..., OtpPro]) -> OtpPro:
    return make_otp()


@pytest.fixture
def ann() -> Member:
    return Member(id="ann", roles=["staff"], email="ann@example.com", name="Ann", fields={"phone": MOBILE_GB})
