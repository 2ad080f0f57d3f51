"""Fixtures: the webhook receiver on 127.0.0.1 and the kit's ``otp_settings`` sending to it.

The ``otp``, ``otp_settings``, ``make_member`` and ``clock`` fixtures come from
the core's ``otp_pro.testing`` pytest plugin; ``otp_settings`` is overridden
here so that ``otp`` sends through the ``webhook`` transport to the receiver.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from webhook_support import Receiver, webhook_settings


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """The site's webhook endpoint on 127.0.0.1, started for the test."""
    with Receiver() as server:
        yield server


@pytest.fixture
def otp_settings(otp_settings: dict[str, Any], receiver: Receiver) -> dict[str, Any]:
    """The kit's settings, sending ``webhook:code`` to the receiver."""
    return {**otp_settings, "channels": ["webhook:code", "totp"], "default_channel": "webhook:code",
            "providers": {"webhook": webhook_settings(receiver)}}
