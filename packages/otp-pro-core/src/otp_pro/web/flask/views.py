"""The extension's sign-in pages: verify, send and the magic-link landing.

Each view is a function of the extension; :class:`~otp_pro.web.flask.OtpProFlask`
registers them through its ``*_view`` methods. Every page is rendered from the
``otp_pro/`` templates. The setup pages are :mod:`.setup_views`, the settings
pages (factors, re-authentication, backup codes, devices, disable) :mod:`.settings_views`.

The verify page offers only the member's own factors: "use another method" lists
their usable delivered factors (label and masked address) and their authenticator
apps, never a channel they have no factor on, whatever their role allows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import flash, g, redirect, request, session, url_for
from werkzeug.wrappers import Response

from ...core import TOTP
from ...results import ChallengeStatus, FactorInfo, MemberStatus, Purpose, Reason
from . import state
from .codes import refuse
from .outcome import lock_minutes, with_retry_after
from .rendering import current_status, message, need_member, page
from .security import secure
from .setup_views import setup_done
from .state import G_STATUS, K_ATTEMPTS, K_NEXT, TOKEN, safe_next
from .texts import CHANNEL_REFUSED_TITLE

if TYPE_CHECKING:
    from .extension import OtpProFlask

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


def _verify_context(ext: OtpProFlask, status: MemberStatus) -> dict[str, Any]:
    core = ext.core
    sent = state.last_sent()
    channel = status.channel or ""
    delivery = ext.delivery()
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
        core.channels[channel].label if channel in core.channels else channel,
        # The app's page, unless this login asked for a code by another of the member's factors.
        "is_totp": shown == TOTP,
        "is_link": bool(sent and str(sent.get("channel", "")).endswith(":magic_link")),
        "sent": sent,
        "resend_in": ext.resend_in(),
        "locked_minutes": lock_minutes(status.locked_until, core.clock()),
        "attempts_remaining": session.get(K_ATTEMPTS),
        "other_channels": _other_factors(status, shown, fallback),
        # Any of the member's authenticator apps answers on the same form: named when the page asks for another.
        "other_apps": [f.label for f in status.factors if f.usable and f.kind == TOTP
                       and (shown != TOTP or not f.is_default)],
        "stale": [f for f in status.factors if f.needs_reconfirming],
        "default_stale": default is not None and default.needs_reconfirming,
        "trust_days": core.settings.trusted_device_days,
        "code_length": core.settings.code_length,
        "next": state.next_url(ext.home_url),
    }


def verify(ext: OtpProFlask) -> Response:
    """``GET``: the code form. ``POST``: check the code (``code``, ``trust_device``)."""
    member = need_member(ext)
    if isinstance(member, Response):
        return member
    status = current_status(ext)
    if request.args.get("next"):
        session[K_NEXT] = safe_next(request.args.get("next"), ext.home_url)
    if status.must_setup:
        return redirect(url_for("otp_pro.setup"), 303)
    if ext.is_verified() or not status.verification_needed:
        return redirect(state.next_url(ext.home_url), 303)
    if request.method == "GET":
        return page("otp_pro/verify.html", **_verify_context(ext, status))
    outcome, token = ext.verify_code(request.form.get("code", ""), trust_device=bool(request.form.get("trust")))
    if outcome.ok:
        response = redirect(outcome.location or ext.home_url, 303)
        if token:
            ext.set_device_cookie(response, token)
        return response
    # The refusal may have started a lockout: read the status again.
    g.pop(G_STATUS, None)
    status = current_status(ext)
    return with_retry_after(page("otp_pro/verify.html", outcome.status, error=outcome.message,
                                 **_verify_context(ext, status)), outcome)


def send(ext: OtpProFlask) -> Response:
    """``POST``: send (or resend) a code, optionally on ``channel``; back to ``next`` or the verify page."""
    member = need_member(ext)
    if isinstance(member, Response):
        return member
    outcome = ext.send_code(state.form_field("channel") or None)
    target = safe_next(state.form_field("next"), url_for("otp_pro.verify"))
    if outcome.status == 400:
        # A channel that cannot be used (none of the member's factors, one to re-confirm): said with a
        # 400 where the member is, not a redirect that would look like a send.
        status = current_status(ext)
        if status.verification_needed and not ext.is_verified() and not status.must_setup:
            return page("otp_pro/verify.html", 400, error=outcome.message, **_verify_context(ext, status))
        return message(400, CHANNEL_REFUSED_TITLE, outcome.message, target)
    flash(outcome.message, "info" if outcome.ok else "error")
    return redirect(target, 303)


def magic_link(ext: OtpProFlask) -> Response:
    """The magic-link landing: ``GET`` shows a button and never consumes; ``POST`` verifies the token."""
    core = ext.core
    if request.method == "GET":
        token = request.args.get("token", "")
        if not TOKEN.match(token):
            return message(400, "This sign-in link is incomplete", "The link may have been cut in two by your mail "
                            "program. Ask for a new link.", ext.login_url)
        return secure(page("otp_pro/magic_link.html", token=token, site=core.settings.site_name))
    token = state.form_field("token")
    if not TOKEN.match(token):
        return message(400, "This sign-in link is incomplete", "Ask for a new link.", ext.login_url)
    result = core.verify_token("magic_link", token, binding=state.current_binding(), **state.client())
    if not result.ok:
        outcome = refuse(core, result)
        code = LINK_REFUSAL_STATUS.get(result.reason or "", 410)
        return with_retry_after(message(code, "This sign-in link cannot be used", outcome.message, ext.login_url),
                                outcome)
    member = ext.current_member()
    if member is None or member.id != result.member_id:
        # Only reachable without a binding: the password step of this browser named someone else.
        return message(403, "Sign in first", "Open the link in the browser where you entered your password.",
                        ext.login_url)
    if result.backup_codes or result.purpose == Purpose.SETUP:
        # A link that confirmed a setup: the first factor's backup codes, or back to the settings.
        return secure(setup_done(ext, result.backup_codes or ()))
    state.mark_verified()
    return secure(redirect(state.next_url(ext.home_url), 303))
