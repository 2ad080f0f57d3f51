"""Sending and checking the signed-in member's codes: the operations the pages, the JSON API and a site's own
login pages share (an adapter's ``send_code``, ``verify_code`` and ``delivery`` call these)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ... import i18n
from ...core import OtpPro
from ...errors import (
    ChannelUnavailable,
    DeliveryError,
    FactorNeedsReconfirming,
    FactorNotEnrolled,
    LockedOut,
    NotEnrolled,
    PolicyError,
    ThrottledError,
)
from ...i18n import gettext as _
from ...member import Member
from ...results import Challenge, ChallengeStatus, Reason, VerifyResult
from . import state
from .ceremonies import MAX_ANSWER, answer_refused_text
from .outcome import Outcome, lock_minutes, refusal
from .state import K_ATTEMPTS, K_SENT, MAX_FIELD
from .texts import (
    DELIVERY_TEXT,
    EMPTY_CODE_TEXT,
    FACTOR_NOT_ENROLLED_TEXT,
    NO_SUCH_CHANNEL_TEXT,
    SIGN_IN_EXPIRED_TEXT,
    SIGN_IN_FIRST_TEXT,
    VERIFIED_TEXT,
    backup_code_used_text,
    channel_refused_text,
    cooldown_text,
    delivery_failed_text,
    factor_needs_reconfirming_text,
    hourly_cap_text,
    locked_text,
    network_limit_text,
    sent_text,
)

if TYPE_CHECKING:
    from .visit import Visit


def send_code(v: Visit, channel: str | None = None) -> Outcome:
    """Send a code (or link) to the signed-in member; where it went is kept in the session for the pages."""
    member = v.member()
    if member is None:
        return Outcome(False, _(SIGN_IN_FIRST_TEXT), 401, error="signed_out")
    core = v.core
    if channel is not None and (channel not in core.channels or len(channel) > 100):
        return Outcome(False, _(NO_SUCH_CHANNEL_TEXT), 400, error="channel")
    try:
        challenge: Challenge = core.send_challenge(member, channel=channel or None, binding=state.binding(v.session),
                                                   **v.client())
    except ThrottledError as exc:
        if exc.limit == "cooldown":
            text = cooldown_text(exc.retry_after)
        elif exc.limit == "ip_hourly":
            text = network_limit_text(exc.retry_after, sends=True)
        else:
            text = hourly_cap_text(exc.retry_after)
        return Outcome(False, text, 429, error="throttled", retry_after=exc.retry_after)
    except LockedOut as exc:
        minutes = lock_minutes(exc.locked_until, core.clock())
        return Outcome(False, locked_text(minutes), 429, error="locked", locked_minutes=minutes)
    except FactorNotEnrolled:
        # Only the member's own factors are sent to, whatever the role allows.
        return Outcome(False, _(FACTOR_NOT_ENROLLED_TEXT), 400, error="factor_not_enrolled")
    except FactorNeedsReconfirming as exc:
        return Outcome(False, factor_needs_reconfirming_text(_factor_label(v, exc.factor_id, exc.channel)), 400,
                       error="needs_reconfirming")
    except (ChannelUnavailable, NotEnrolled, PolicyError) as exc:
        reason = getattr(exc, "reason", None)
        return Outcome(False, channel_refused_text(reason or exc), 400, error="channel")
    except DeliveryError as exc:
        return _delivery_failed(v, member, exc, channel)
    label = core.channels[challenge.channel].label  # kept in English: state.last_sent translates it when shown
    v.session[K_SENT] = {"at": time.time(), "hint": challenge.recipient_hint, "channel": challenge.channel,
                       "label": label, "challenge": challenge.id}
    label = i18n.label(label)
    link = challenge.channel.endswith(":magic_link")
    queued = challenge.status == ChallengeStatus.QUEUED
    return Outcome(True, sent_text(link, label, challenge.recipient_hint, queued=queued),
                   retry_after=core.settings.resend_cooldown_seconds,
                   delivery=ChallengeStatus.QUEUED if queued else ChallengeStatus.SENT)


def _factor_label(v: Visit, factor_id: int | None, channel: str | None) -> str:
    """The member's name for factor ``factor_id`` (else ``channel``'s label) for a message."""
    status = v.status()
    for factor in status.factors if status is not None else ():
        if factor.id == factor_id:
            return factor.label
    core = v.core
    return i18n.label(core.channels[channel].label) if channel in core.channels else "this method"


def fallback_options(core: OtpPro, member: Member, failed_channel: str | None) -> tuple[dict[str, str], ...]:
    """The member's other channels after a failed send on ``failed_channel``, in policy order."""
    return tuple({"channel": name, "label": i18n.label(core.channels[name].label)}
                 for name in core.fallback_channels(member, failed_channel))


def _delivery_failed(v: Visit, member: Member, exc: DeliveryError, channel: str | None) -> Outcome:
    """The send failed: remember it for the verify page and offer the member's other channels."""
    core = v.core
    status = v.status()
    failed = channel or (status.channel if status is not None else None) or ""
    label = core.channels[failed].label if failed in core.channels else "this method"
    v.session[K_SENT] = {"at": 0, "hint": None, "channel": failed, "label": label,
                       "challenge": exc.challenge_id, "failed": True}
    label = i18n.label(label)
    options = fallback_options(core, member, failed)
    return Outcome(False, delivery_failed_text(label, [o["label"] for o in options]), 502, error="delivery",
                   fallback=options)


def refuse(v: Visit, result: VerifyResult) -> Outcome:
    """The outcome of a refused code; the attempts left before a lockout are kept for the verify page."""
    outcome = refusal(result, v.core.clock)
    if result.reason != Reason.LOCKED and result.attempts_remaining is not None:
        v.session[K_ATTEMPTS] = result.attempts_remaining
    return outcome


def verify_code(v: Visit, code: object, *, trust_device: bool = False, answer: bool = False
                ) -> tuple[Outcome, str | None]:
    """Check what the member typed (or, ``answer``: what the browser answered a challenge with, see
    :mod:`.ceremonies`); on success the session is verified (and rotated).

    Returns the outcome and, when ``trust_device`` was asked and allowed, the
    trusted-device token to set as a cookie.
    """
    member = v.member()
    if member is None:
        return Outcome(False, _(SIGN_IN_EXPIRED_TEXT), 401, error="signed_out"), None
    if not isinstance(code, str) or not code.strip():
        return Outcome(False, _(EMPTY_CODE_TEXT), 400, error="empty"), None
    core = v.core
    # A challenge answered in the browser is accepted only with the binding it was issued to.
    result = core.verify(member, code[:MAX_ANSWER if answer else MAX_FIELD],
                         binding=state.current_binding(v.session), **v.client())
    if not result.ok:
        outcome = refuse(v, result)
        if answer and result.reason not in (Reason.LOCKED, Reason.RATE_LIMITED):
            outcome = replace(outcome, message=answer_refused_text(result.reason))
        return outcome, None
    state.mark_verified(v)
    token = None
    if trust_device and core.settings.trusted_device_days > 0:
        token = core.trust_device(member, label=v.device_label(), **v.client())
    message = _(VERIFIED_TEXT)
    if result.method == "backup_code" and result.backup_codes_remaining is not None:
        message = backup_code_used_text(result.backup_codes_remaining)
        v.flash(message, "info")
    return Outcome(True, message, 200, result, location=v.next_url()), token


def delivery(v: Visit) -> dict[str, Any] | None:
    """The delivery of this login's last code, or None before any send.

    ``{"status", "label", "hint", "error_code", "done", "message", "fallback"}``; ``status`` is ``sending``
    (queued or being sent), ``sent``, ``failed`` or ``replaced``.
    """
    member = v.member()
    sent = state.last_sent(v.session)
    if member is None or sent is None:
        return None
    core = v.core
    challenge_id = sent.get("challenge")
    found = core.delivery_status(member, challenge_id) if isinstance(challenge_id, int) else None
    error_code: str | None
    if found is None:
        if not sent.get("failed"):
            return None
        state_name, error_code, done = ChallengeStatus.FAILED, "delivery", True
        fallback = fallback_options(core, member, str(sent.get("channel") or ""))
    else:
        in_flight = (ChallengeStatus.QUEUED, ChallengeStatus.SENDING)
        state_name = ChallengeStatus.SENDING if found.status in in_flight else found.status
        error_code, done = found.error_code, found.done
        fallback = tuple({"channel": name, "label": i18n.label(core.channels[name].label)}
                         for name in found.fallback_channels)
    label = str(sent.get("label") or "")
    text = DELIVERY_TEXT.get(state_name)
    message = _(text, label=label, hint=sent.get("hint")) if text else ""
    return {"status": state_name, "label": label, "hint": sent.get("hint"), "error_code": error_code, "done": done,
            "message": message, "fallback": [dict(item) for item in fallback]}
