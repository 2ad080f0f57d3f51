"""The sign-in pages: verify, send and the magic-link landing.

Each handler takes a :class:`~.visit.Visit` and answers a page, a redirect or
JSON (:mod:`.interface`). The setup pages are :mod:`.setup_pages`, the settings
pages (factors, re-authentication, backup codes, devices, disable) :mod:`.settings_pages`.

The verify page offers only the member's own factors: "use another method" lists
their usable delivered factors (label and masked address) and their authenticator
apps, never a channel they have no factor on, whatever their role allows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ... import i18n
from ...core import TOTP
from ...i18n import gettext as _
from ...results import ChallengeStatus, FactorInfo, MemberStatus, Purpose, Reason
from . import ceremonies, codes, state
from .codes import refuse
from .interface import Answer, Redirect
from .outcome import lock_minutes, with_retry_after
from .pages import current_status, message, need_member, page
from .setup_pages import setup_done
from .state import K_ATTEMPTS, K_NEXT, TOKEN, safe_next
from .texts import CHANNEL_REFUSED_TITLE

if TYPE_CHECKING:
    from .visit import Visit

#: The HTTP status of a refused sign-in link, by refusal reason (410 Gone for the others: expired, used, replaced).
LINK_REFUSAL_STATUS = {Reason.LOCKED: 429, Reason.RATE_LIMITED: 429, Reason.WRONG_BROWSER: 403, Reason.UNKNOWN: 404}


# ------------------------------------------------------------------ sign-in


def _other_factors(status: MemberStatus, shown: str | None, channels: list[str] | None = None
                   ) -> list[dict[str, Any]]:
    """The member's own usable delivered factors to send to instead of ``shown``, one per channel.

    ``channels`` (after a failed delivery: the core's fallback, in policy order) limits and orders them.
    A factor on a channel the member has no factor on is never offered, whatever the role allows.
    """
    own: dict[str, FactorInfo] = {}
    for factor in status.factors:
        if factor.usable and factor.kind != TOTP and factor.kind != shown:
            own.setdefault(factor.kind, factor)
    order = channels if channels is not None else list(own)
    return [{"channel": own[name].kind, "label": own[name].label, "hint": own[name].recipient_hint}
            for name in order if name in own]


def _verify_context(v: Visit, status: MemberStatus) -> dict[str, Any]:
    core = v.core
    sent = state.last_sent(v.session)
    channel = status.channel or ""
    delivery = codes.delivery(v)
    shown = (sent or {}).get("channel", channel)
    fallback = None
    if delivery is not None and delivery["status"] == ChallengeStatus.FAILED:
        # After a failed delivery: the fallback channels, in policy order (availability checked).
        fallback = [item["channel"] for item in delivery["fallback"]]
    default = next((f for f in status.factors if f.is_default), None)
    return {
        "delivery": delivery,
        "status": status,
        "channel": channel,
        "channel_label": default.label if default is not None else
        i18n.label(core.channels[channel].label) if channel in core.channels else channel,
        # The app's page, unless this login asked for a code by another of the member's factors.
        "is_totp": shown == TOTP,
        "is_link": bool(sent and str(sent.get("channel", "")).endswith(":magic_link")),
        "sent": sent,
        "resend_in": v.resend_in(),
        "locked_minutes": lock_minutes(status.locked_until, core.clock()),
        "attempts_remaining": v.session.get(K_ATTEMPTS),
        # Factors answered in the browser have their own buttons (``ceremonies``), not a "send by" one.
        "other_channels": [o for o in _other_factors(status, shown, fallback)
                           if not ceremonies.is_ceremony(core, o["channel"])],
        # Any of the member's authenticator apps answers on the same form: named when the page asks for another.
        "other_apps": [f.label for f in status.factors if f.usable and f.kind == TOTP
                       and (shown != TOTP or not f.is_default)],
        "stale": [f for f in status.factors if f.needs_reconfirming],
        "default_stale": default is not None and default.needs_reconfirming,
        "trust_days": core.settings.trusted_device_days,
        "code_length": core.settings.code_length,
        "next": v.next_url(),
        # The member's factors answered in the browser (a passkey): a button each, the default's first.
        "ceremonies": ceremonies.offered(core, status),
        "ceremony_default": ceremonies.is_ceremony(core, channel) and shown == channel,
        "challenge_url": v.url("api_challenge"),
    }


def verify(v: Visit) -> Answer:
    """``GET``: the code form. ``POST``: check the code (``code``, ``trust_device``)."""
    member = need_member(v)
    if isinstance(member, Redirect):
        return member
    if v.request.args.get("next"):
        v.session[K_NEXT] = safe_next(v.request.args.get("next"), v.flow.home_url)
    # A step-up asks a verified login for a fresh code (a trusted device does not skip it either).
    if v.request.method == "POST" and (not v.is_verified() or state.step_up_pending(v.session)):
        # The code is checked first: a right one proves the member has the factor it matched, so nothing else is
        # read; the core refuses without counting a guess when there is nothing to check against (no factor, or
        # none the role offers). Anything but a success is then decided from the full status, as a GET is.
        answer = ceremonies.posted_answer(v)
        outcome, token = codes.verify_code(v, answer if answer is not None else v.request.form.get("code", ""),
                                           trust_device=bool(v.request.form.get("trust")),
                                           answer=answer is not None)
        if outcome.ok:
            response = Redirect(location=outcome.location or v.flow.home_url)
            if token:
                response.cookies.append(v.device_cookie(token))
            return response
        # The refusal may have started a lockout: read the status again.
        status = v.reload_status() or current_status(v)
        away = _not_for_verify(v, status)
        if away is not None:
            return away
        return with_retry_after(page("otp_pro/verify.html", outcome.status, error=outcome.message,
                                     **_verify_context(v, status)), outcome)
    status = current_status(v)
    return _not_for_verify(v, status) or page("otp_pro/verify.html", **_verify_context(v, status))


def _not_for_verify(v: Visit, status: MemberStatus) -> Redirect | None:
    """Where a member who has no code to enter here goes: to set one up, or on (verified, nothing to verify)."""
    if status.must_setup:
        return Redirect(location=v.url("setup"))
    stepping_up = state.step_up_pending(v.session) and status.enrolled
    if not stepping_up and (v.is_verified() or not status.verification_needed):
        return Redirect(location=v.next_url())
    return None


def send(v: Visit) -> Answer:
    """``POST``: send (or resend) a code, optionally on ``channel``; back to ``next`` or the verify page."""
    member = need_member(v)
    if isinstance(member, Redirect):
        return member
    outcome = codes.send_code(v, v.form_field("channel") or None)
    target = safe_next(v.form_field("next"), v.url("verify"))
    if outcome.status == 400:
        # A channel that cannot be used (none of the member's factors, one to re-confirm): said with a
        # 400 where the member is, not a redirect that would look like a send.
        status = current_status(v)
        if status.verification_needed and not v.is_verified() and not status.must_setup:
            return page("otp_pro/verify.html", 400, error=outcome.message, **_verify_context(v, status))
        return message(400, _(CHANNEL_REFUSED_TITLE), outcome.message, target)
    v.flash(outcome.message, "info" if outcome.ok else "error")
    return Redirect(location=target)


def magic_link(v: Visit) -> Answer:
    """The magic-link landing: ``GET`` shows a button and never consumes; ``POST`` verifies the token."""
    core = v.core
    if v.request.method == "GET":
        token = v.request.args.get("token", "")
        if not TOKEN.match(token):
            return message(400, _("This sign-in link is incomplete"), _("The link may have been cut in two by your "
                            "mail program. Ask for a new link."), v.flow.login_url)
        return page("otp_pro/magic_link.html", token=token, site=core.settings.site_name)
    token = v.form_field("token")
    if not TOKEN.match(token):
        return message(400, _("This sign-in link is incomplete"), _("Ask for a new link."), v.flow.login_url)
    result = core.verify_token("magic_link", token, binding=state.current_binding(v.session), **v.client())
    if not result.ok:
        outcome = refuse(v, result)
        code = LINK_REFUSAL_STATUS.get(result.reason or "", 410)
        return with_retry_after(message(code, _("This sign-in link cannot be used"), outcome.message, v.flow.login_url),
                                outcome)
    member = v.member()
    if member is None or member.id != result.member_id:
        # Only reachable without a binding: the password step of this browser named someone else.
        return message(403, _("Sign in first"), _("Open the link in the browser where you entered your password."),
                        v.flow.login_url)
    if result.backup_codes or result.purpose == Purpose.SETUP:
        # A link that confirmed a setup: the first factor's backup codes, or back to the settings.
        return setup_done(v, result.backup_codes or ())
    state.mark_verified(v)
    return Redirect(location=v.next_url())
