"""The extension's pages: verify, send, setup, settings (re-authentication, backup codes, devices, disable)
and the magic-link landing.

Each view is a function of the extension; :class:`~otp_pro.web.flask.OtpProFlask`
registers them through its ``*_view`` methods. Every page is rendered from the
``otp_pro/`` templates; a POST changing MFA settings needs a fresh password +
code confirmation (``reauth``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from flask import flash, g, make_response, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from ...core import TOTP
from ...errors import (
    ChannelUnavailable,
    DeliveryError,
    InvalidCode,
    LockedOut,
    NotEnrolled,
    NotFound,
    PolicyError,
    SetupBegunElsewhere,
    SetupError,
    ThrottledError,
)
from ...member import Member
from ...results import ChallengeStatus, MemberStatus, Reason, VerifyResult
from . import inputs, state
from .codes import refuse
from .outcome import lock_minutes, with_retry_after
from .security import secure
from .state import G_STATUS, K_ATTEMPTS, K_NEXT, K_SENT, K_SETUP, MAX_FIELD, TOKEN, safe_next
from .texts import (
    NO_SUCH_DEVICE_TEXT,
    SIGN_IN_FIRST_TEXT,
    WRONG_PASSWORD_TEXT,
    attempts_left_text,
    cooldown_text,
    locked_text,
)

if TYPE_CHECKING:
    from .extension import OtpProFlask

#: The HTTP status of a refused sign-in link, by refusal reason (410 Gone for the others: expired, used, replaced).
LINK_REFUSAL_STATUS = {Reason.LOCKED: 429, Reason.RATE_LIMITED: 429, Reason.WRONG_BROWSER: 403, Reason.UNKNOWN: 404}
#: The audited reason of a wrong password on the re-authentication form (``verify_failed``).
PASSWORD_FAILURE = "password"


def page(template: str, http_status: int = 200, /, **context: Any) -> Response:
    """``template`` rendered with ``context``, answered with ``http_status``."""
    return make_response(render_template(template, **context), http_status)


def need_member(ext: OtpProFlask) -> Member | Response:
    """The signed-in member, or a redirect to the site's login page."""
    member = ext.current_member()
    if member is None:
        flash(SIGN_IN_FIRST_TEXT, "error")
        # Quoted: a CR or LF in the path must not reach the Location header (werkzeug refuses it with a 500).
        return redirect(f"{ext.login_url}?{urlencode({'next': request.path}, quote_via=quote)}", 303)
    return member


def _current_status(ext: OtpProFlask) -> MemberStatus:
    """The status of the member :func:`need_member` found."""
    status = ext.status()
    assert status is not None
    return status


# ------------------------------------------------------------------ sign-in


def _verify_context(ext: OtpProFlask, status: MemberStatus) -> dict[str, Any]:
    core = ext.core
    sent = state.last_sent()
    channel = status.channel or ""
    delivery = ext.delivery()
    others = [(name, core.channels[name].label) for name in status.channels
              if name != TOTP and name != (sent or {}).get("channel", channel)]
    if delivery is not None and delivery["status"] == ChallengeStatus.FAILED:
        # After a failed delivery: the fallback channels, in policy order (availability checked).
        others = [(item["channel"], item["label"]) for item in delivery["fallback"]]
    return {
        "delivery": delivery,
        "status": status,
        "channel": channel,
        "channel_label": core.channels[channel].label if channel in core.channels else channel,
        "is_totp": channel == TOTP,
        "is_link": bool(sent and str(sent.get("channel", "")).endswith(":magic_link")),
        "sent": sent,
        "resend_in": ext.resend_in(),
        "locked_minutes": lock_minutes(status.locked_until, core.clock()),
        "attempts_remaining": session.get(K_ATTEMPTS),
        "other_channels": others,
        "trust_days": core.settings.trusted_device_days,
        "code_length": core.settings.code_length,
        "next": state.next_url(ext.home_url),
    }


def verify(ext: OtpProFlask) -> Response:
    """``GET``: the code form. ``POST``: check the code (``code``, ``trust_device``)."""
    member = need_member(ext)
    if isinstance(member, Response):
        return member
    status = _current_status(ext)
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
    status = _current_status(ext)
    return with_retry_after(page("otp_pro/verify.html", outcome.status, error=outcome.message,
                                 **_verify_context(ext, status)), outcome)


def send(ext: OtpProFlask) -> Response:
    """``POST``: send (or resend) a code, optionally on ``channel``; back to ``next`` or the verify page."""
    member = need_member(ext)
    if isinstance(member, Response):
        return member
    outcome = ext.send_code(state.form_field("channel") or None)
    flash(outcome.message, "info" if outcome.ok else "error")
    return redirect(safe_next(state.form_field("next"), url_for("otp_pro.verify")), 303)


def _message(http_status: int, title: str, message: str, link: str) -> Response:
    return secure(page("otp_pro/message.html", http_status, title=title, message=message, link=link))


def magic_link(ext: OtpProFlask) -> Response:
    """The magic-link landing: ``GET`` shows a button and never consumes; ``POST`` verifies the token."""
    core = ext.core
    if request.method == "GET":
        token = request.args.get("token", "")
        if not TOKEN.match(token):
            return _message(400, "This sign-in link is incomplete", "The link may have been cut in two by your mail "
                            "program. Ask for a new link.", ext.login_url)
        return secure(page("otp_pro/magic_link.html", token=token, site=core.settings.site_name))
    token = state.form_field("token")
    if not TOKEN.match(token):
        return _message(400, "This sign-in link is incomplete", "Ask for a new link.", ext.login_url)
    result = core.verify_token("magic_link", token, binding=state.current_binding(), **state.client())
    if not result.ok:
        outcome = refuse(core, result)
        code = LINK_REFUSAL_STATUS.get(result.reason or "", 410)
        return with_retry_after(_message(code, "This sign-in link cannot be used", outcome.message, ext.login_url),
                                outcome)
    member = ext.current_member()
    if member is None or member.id != result.member_id:
        # Only reachable without a binding: the password step of this browser named someone else.
        return _message(403, "Sign in first", "Open the link in the browser where you entered your password.",
                        ext.login_url)
    if result.backup_codes:
        return secure(_setup_done(ext, result.backup_codes))
    state.mark_verified()
    return secure(redirect(state.next_url(ext.home_url), 303))


# -------------------------------------------------------------------- setup


def _setup_allowed(ext: OtpProFlask, status: MemberStatus) -> Response | None:
    if status.requirement == "not_required":
        flash("Two-step verification is not offered for your account.", "error")
        return redirect(ext.home_url, 303)
    if status.enrolled and status.verification_needed and not ext.is_verified():
        return redirect(url_for("otp_pro.verify"), 303)
    if status.enrolled and not ext.reauth_ok():
        flash("Confirm your password and a code to change your sign-in method.", "error")
        return redirect(url_for("otp_pro.settings"), 303)
    return None


def _choose(ext: OtpProFlask, status: MemberStatus, http_status: int = 200, error: str | None = None) -> Response:
    channels = ext.core.channels
    options = [(name, channels[name].label) for name in status.channels]
    return page("otp_pro/setup_choose.html", http_status, status=status, options=options,
                unavailable=[(channels[n].label, why) for n, why in status.unavailable.items() if n in channels],
                error=error)


def setup(ext: OtpProFlask) -> Response:
    """``GET``: choose a channel. ``POST`` (``channel``): start setting it up (QR code, or a code sent)."""
    member = need_member(ext)
    if isinstance(member, Response):
        return member
    status = _current_status(ext)
    refused = _setup_allowed(ext, status)
    if refused is not None:
        return refused
    if request.method == "GET":
        return _choose(ext, status)
    channel = state.form_field("channel")
    if channel not in status.channels:
        return _choose(ext, status, 400, "Choose one of the methods listed.")
    core = ext.core
    try:
        info = core.begin_setup(member, channel, binding=state.binding(), **state.client())
    except LockedOut as exc:
        return _choose(ext, status, 429, locked_text(lock_minutes(exc.locked_until, core.clock())))
    except ThrottledError as exc:
        return _choose(ext, status, 429, cooldown_text(exc.retry_after))
    except (ChannelUnavailable, PolicyError, SetupError) as exc:
        return _choose(ext, status, 400, f"That method cannot be set up: {getattr(exc, 'reason', None) or exc}.")
    except DeliveryError:
        return _choose(ext, status, 502, "The code could not be sent just now. Try again in a moment.")
    session[K_SETUP] = channel
    label = core.channels[channel].label
    if info.challenge is not None:
        session[K_SENT] = {"at": time.time(), "hint": info.challenge.recipient_hint, "channel": channel,
                           "label": label}
    return page("otp_pro/setup_confirm.html", info=info, channel=channel, label=label,
                is_link=channel.endswith(":magic_link"), code_length=core.settings.code_length,
                hint=info.challenge.recipient_hint if info.challenge else None)


def setup_confirm(ext: OtpProFlask) -> Response:
    """``POST`` (``code``): finish the setup; the backup codes are shown on this one page, once."""
    member = need_member(ext)
    if isinstance(member, Response):
        return member
    core = ext.core
    channel = session.get(K_SETUP) if isinstance(session.get(K_SETUP), str) else None
    label = core.channels[channel].label if channel in core.channels else ""
    code = request.form.get("code", "")
    common = {"info": None, "channel": channel, "label": label, "code_length": core.settings.code_length,
              "is_link": False, "hint": (session.get(K_SENT) or {}).get("hint")}
    if not isinstance(code, str) or not code.strip():
        return page("otp_pro/setup_confirm.html", 400, error="Enter the code to confirm.", **common)
    try:
        codes = core.complete_setup(member, code[:MAX_FIELD], binding=state.current_binding(), **state.client())
    except SetupBegunElsewhere:
        # Another login of this member began the pending setup: finishing it here would verify this one.
        session.pop(K_SETUP, None)
        return _message(403, "Start the setup again", "This setup was started in another browser or sign-in, "
                        "so it can only be finished there. Start the setup again here if you want to use this "
                        "browser.", url_for("otp_pro.setup"))
    except InvalidCode as exc:
        result = exc.result if isinstance(exc.result, VerifyResult) else VerifyResult(False, reason=Reason.INVALID)
        outcome = refuse(core, result)
        return page("otp_pro/setup_confirm.html", outcome.status, error=outcome.message, **common)
    except LockedOut as exc:
        minutes = lock_minutes(exc.locked_until, core.clock())
        return page("otp_pro/setup_confirm.html", 429, error=locked_text(minutes), **common)
    except SetupError as exc:
        flash(f"{str(exc).capitalize()}.", "error")
        return redirect(url_for("otp_pro.setup"), 303)
    return _setup_done(ext, codes)


def _setup_done(ext: OtpProFlask, codes: list[str] | tuple[str, ...]) -> Response:
    session.pop(K_SETUP, None)
    state.mark_verified()
    return page("otp_pro/backup_codes.html", codes=list(codes), fresh_setup=True, next=state.next_url(ext.home_url))


# ----------------------------------------------------------------- settings


def _settings_guard(ext: OtpProFlask) -> Member | Response:
    """The member when the settings may be shown: set up, and verified (or on a trusted device) when needed."""
    member = need_member(ext)
    if isinstance(member, Response):
        return member
    status = _current_status(ext)
    if status.must_setup:
        return redirect(url_for("otp_pro.setup"), 303)
    if status.verification_needed and not ext.is_verified() and not ext.is_trusted_device():
        return redirect(url_for("otp_pro.verify", next=url_for("otp_pro.settings")), 303)
    return member


def _change_guard(ext: OtpProFlask) -> Member | Response:
    """The member when the settings may be changed: :func:`_settings_guard` and a fresh confirmation."""
    member = _settings_guard(ext)
    if isinstance(member, Response):
        return member
    if not ext.reauth_ok():
        return _back_to_settings("Confirm your password and a fresh code first.", "error")
    return member


def _back_to_settings(message: str, category: str) -> Response:
    flash(message, category)
    return redirect(url_for("otp_pro.settings"), 303)


def settings(ext: OtpProFlask) -> Response:
    """The settings page: method, backup codes, trusted devices, disable; changes need a confirmation."""
    member = _settings_guard(ext)
    if isinstance(member, Response):
        return member
    status = _current_status(ext)
    core = ext.core
    channel = status.channel or ""
    return page(
        "otp_pro/settings.html", status=status, channel=channel,
        channel_label=core.channels[channel].label if channel in core.channels else "",
        devices=core.trusted_devices(member) if status.enrolled else [],
        reauth=ext.reauth_ok(), is_totp=channel == TOTP, sent=session.get(K_SENT),
        resend_in=ext.resend_in(), code_length=core.settings.code_length,
        locked_minutes=lock_minutes(status.locked_until, core.clock()),
    )


def reauth(ext: OtpProFlask) -> Response:
    """``POST`` (``password``, ``code``): confirm the member before a change of MFA settings.

    A wrong password is a failed attempt like a wrong code (:meth:`~otp_pro.OtpPro.record_failure`), and a
    locked member is refused before the password is checked, so the page cannot be used to guess passwords.
    """
    member = _settings_guard(ext)
    if isinstance(member, Response):
        return member
    status = _current_status(ext)
    core = ext.core
    minutes = lock_minutes(status.locked_until, core.clock())
    if minutes is not None:
        return _back_to_settings(locked_text(minutes), "error")
    password, code = request.form.get("password", ""), request.form.get("code", "")
    if not password or not isinstance(password, str):
        return _back_to_settings("Enter your current password.", "error")
    if not ext.check_password(member, password[:1024]):
        return _wrong_password(ext, member)
    if status.enrolled:
        if not isinstance(code, str) or not code.strip():
            return _back_to_settings("Enter a fresh one-time code as well.", "error")
        result = core.verify(member, code[:MAX_FIELD], **state.client())
        if not result.ok:
            return _back_to_settings(refuse(core, result).message, "error")
    state.confirm_reauth(ext.reauth_seconds)
    return _back_to_settings(
        f"Confirmed: you can change your settings for the next {max(1, ext.reauth_seconds // 60)} minutes.", "info")


def _wrong_password(ext: OtpProFlask, member: Member) -> Response:
    """Count a wrong password toward the member's lockout and say what is left (or that the lock began)."""
    core = ext.core
    result = core.record_failure(member, reason=PASSWORD_FAILURE, **state.client())
    if result.reason == Reason.LOCKED:
        return _back_to_settings(locked_text(lock_minutes(result.locked_until, core.clock())), "error")
    left = attempts_left_text(result.attempts_remaining) if result.attempts_remaining is not None else ""
    return _back_to_settings(WRONG_PASSWORD_TEXT + left, "error")


def backup_codes(ext: OtpProFlask) -> Response:
    """``POST``: a new set of backup codes (the old ones stop working), shown once."""
    member = _change_guard(ext)
    if isinstance(member, Response):
        return member
    try:
        codes = ext.core.regenerate_backup_codes(member, actor=member.id, **state.client())
    except NotEnrolled:
        return _back_to_settings("Set up two-step verification first.", "error")
    return page("otp_pro/backup_codes.html", codes=codes, fresh_setup=False, next=url_for("otp_pro.settings"))


def revoke(ext: OtpProFlask, device_id: str) -> Response:
    """``POST``: revoke one trusted device of the member (404 for a path segment that is no device id)."""
    number = inputs.device_id(device_id)
    if number is None:
        return secure(page("otp_pro/message.html", 404, title="No such device", message=NO_SUCH_DEVICE_TEXT,
                           link=url_for("otp_pro.settings")))
    member = _change_guard(ext)
    if isinstance(member, Response):
        return member
    try:
        ext.core.revoke_device(member, number, actor=member.id, **state.client())
    except NotFound:
        return _back_to_settings(NO_SUCH_DEVICE_TEXT, "error")
    return _back_to_settings("The device was removed: it will be asked for a code at the next sign-in.", "info")


def disable(ext: OtpProFlask) -> Response:
    """``POST``: switch two-step verification off, when the policy allows it."""
    member = _change_guard(ext)
    if isinstance(member, Response):
        return member
    try:
        ext.core.disable(member, actor=member.id, ip=request.remote_addr, user_agent=state.client()["user_agent"])
    except PolicyError:
        return _back_to_settings("Two-step verification is required for your account and cannot be switched off.",
                                 "error")
    return _back_to_settings("Two-step verification is off. Your backup codes and trusted devices were removed.",
                             "info")
