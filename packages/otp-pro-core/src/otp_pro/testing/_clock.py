"""A clock tests move by hand, and its fixture."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest


class Clock:
    """A clock tests can move. Starts at a fixed instant 10 s into a TOTP step."""

    def __init__(self, start: datetime | None = None):
        self.now = start or datetime(2026, 11, 23, 12, 0, 10, tzinfo=timezone.utc)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, seconds: float = 0, **kw: float) -> datetime:
        """Move forward by ``seconds`` (and any ``timedelta`` keywords: ``days=1``)."""
        with self._lock:
            self.now = self.now + timedelta(seconds=seconds, **kw)
            return self.now


@pytest.fixture
def clock() -> Clock:
    """A fresh :class:`Clock` for each test."""
    return Clock()
