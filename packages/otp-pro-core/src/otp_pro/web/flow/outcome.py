"""What a step of the second factor ended with, as a page or the JSON API shows it."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from ...core import HARD_LOCK
from ...i18n import gettext as _
from ...results import Reason, VerifyResult
from .interface import Json, Page, Redirect
from .texts import OTHER_REASON_TEXT, REASON_TEXT, attempts_left_text, locked_text, network_limit_text


@dataclass(frozen=True)
class Outcome:
    """What a verification step ended with: for a page (``message``, ``status``) or JSON (``as_json``)."""

    ok: bool
    message: str
    status: int = 200
    result: VerifyResult | None = None
    location: str | None = None
    error: str | None = None
    attempts_remaining: int | None = None
    locked_minutes: int | None = None
    retry_after: int | None = None
    #: After a failed delivery: the channels to fall back to, ``[{"channel", "label"}]`` in policy order.
    fallback: tuple[Mapping[str, str], ...] | None = None
    #: The delivery's status after a send: ``sent``, or ``queued`` with a task-queue dispatcher.
    delivery: str | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"ok": self.ok, "message": self.message}
        for key in ("location", "error", "attempts_remaining", "locked_minutes", "retry_after", "delivery"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.fallback is not None:
            data["fallback"] = [dict(item) for item in self.fallback]
        return data


def lock_minutes(locked_until: datetime | None, now: datetime) -> int | None:
    """Whole minutes (rounded up) left of a lockout; None for no lockout."""
    if locked_until is None:
        return None
    if locked_until >= HARD_LOCK:
        return -1
    return max(1, math.ceil((locked_until - now).total_seconds() / 60))


def refusal(result: VerifyResult, clock: Callable[[], datetime]) -> Outcome:
    """The outcome of a refused code or link: 429 when locked or the address is over its limit, 400 when
    malformed, else 200 with the reason."""
    if result.reason == Reason.LOCKED:
        minutes = lock_minutes(result.locked_until, clock())
        return Outcome(False, locked_text(minutes), 429, result, error="locked", locked_minutes=minutes,
                       attempts_remaining=0)
    if result.reason == Reason.RATE_LIMITED:
        wait = result.retry_after or 3600
        return Outcome(False, network_limit_text(wait, sends=False), 429, result, error="rate_limited",
                       retry_after=wait)
    text = _(REASON_TEXT.get(result.reason or "", OTHER_REASON_TEXT))
    if result.attempts_remaining is not None:
        text += attempts_left_text(result.attempts_remaining)
    status = 400 if result.reason == Reason.MALFORMED else 200
    return Outcome(False, text, status, result, error=result.reason or "invalid",
                   attempts_remaining=result.attempts_remaining)


_A = TypeVar("_A", Page, Redirect, Json)


def with_retry_after(response: _A, outcome: Outcome) -> _A:
    """``response`` to a refused ``outcome``; a 429 says in ``Retry-After`` when to try again, if that is known."""
    if outcome.status == 429:
        # A throttled send knows its seconds; a lockout its minutes, rounded up (a hard lock has no end).
        seconds = outcome.retry_after
        if seconds is None and outcome.locked_minutes is not None and outcome.locked_minutes > 0:
            seconds = outcome.locked_minutes * 60
        if seconds is not None:
            response.header("Retry-After", str(max(1, int(seconds))))
    return response
