"""The send throttle: a cooldown between a member's sends and hourly caps per member and per recipient.

The rule is written twice on purpose, once here in Python and once in SQL
(:data:`~otp_pro.storage.statements.SENDS_AND_INSERT`, which lets PostgreSQL
count and insert in one statement); :func:`refusal` explains a refusal from
the counts either one read.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..errors import ThrottledError
from ..member import Member
from ..results import ChallengeStatus
from ..settings import Settings
from .lockout import HARD_LOCK
from .messages import Outgoing
from .runtime import Runtime

COOLDOWN = "cooldown"
MEMBER_HOURLY = "member_hourly"
RECIPIENT_HOURLY = "recipient_hourly"


def refusal(settings: Settings, counts: Any, now: datetime) -> ThrottledError | None:
    """Why a send is refused, from the member's and the recipient's sends (a ``SENDS`` row), or None.

    ``last`` is the member's last live send whose code was not consumed: a used code does not hold back
    the next send (the cooldown stops asking again while a code is on its way, not signing in twice),
    while the hourly counts include consumed sends, which were messages all the same.
    """
    s = settings
    last, member_count, member_oldest, recipient_count, recipient_oldest = counts[:5]
    if s.resend_cooldown_seconds:
        if last is not None and last > now - timedelta(seconds=s.resend_cooldown_seconds):
            wait = int((last + timedelta(seconds=s.resend_cooldown_seconds) - now).total_seconds()) + 1
            return ThrottledError(f"please wait {wait} s before asking for another code", retry_after=wait,
                                  limit=COOLDOWN)
    caps = (
        (member_count, member_oldest, s.max_sends_per_hour, MEMBER_HOURLY,
         "too many codes sent in the last hour"),
        (recipient_count, recipient_oldest, s.max_sends_per_hour_per_recipient, RECIPIENT_HOURLY,
         "too many codes sent to this address in the last hour"),
    )
    for count, oldest, cap, limit, text in caps:
        if count >= cap:
            wait = int((oldest + timedelta(hours=1) - now).total_seconds()) + 1
            return ThrottledError(f"{text}; try again in {wait // 60 + 1} min", retry_after=wait, limit=limit)
    return None


def send_params(rt: Runtime, member: Member, out: Outgoing, purpose: str, binding: str | None) -> dict[str, Any]:
    """The binds of the throttle's counts and limits and of the new challenge's row."""
    limits = rt.settings
    return {
        "b_member": member.id, "b_recipient": out.recipient_hash, "b_since": out.now - timedelta(hours=1),
        "b_member_cap": limits.max_sends_per_hour, "b_recipient_cap": limits.max_sends_per_hour_per_recipient,
        "b_cooldown_since": out.now - timedelta(seconds=limits.resend_cooldown_seconds)
        if limits.resend_cooldown_seconds else HARD_LOCK,
        "c_member_id": member.id, "c_channel": out.channel, "c_payload": out.payload.name, "c_purpose": purpose,
        "c_secret_hash": rt.keys.hash("challenge", out.value.secret), "c_recipient_hash": out.recipient_hash,
        "c_factor_id": out.factor_id,
        "c_binding_hash": rt.keys.hash("binding", binding) if binding else None,
        "c_status": ChallengeStatus.QUEUED if rt.dispatcher.queued else ChallengeStatus.PENDING,
        "c_created_at": out.now, "c_expires_at": out.expires, "c_message": out.sealed,
    }
