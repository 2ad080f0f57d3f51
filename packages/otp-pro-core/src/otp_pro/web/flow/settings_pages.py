"""The settings pages: the member's factors, re-authentication, backup codes, trusted devices, disable.

The page lists the member's factors (name, kind, masked address, added, last
used, the default, one that needs re-confirming) with their actions: add
another (the setup flow of :mod:`.setup_pages`), rename, make default, remove,
re-confirm. Every action is a CSRF-protected POST whose refusal is a message on
the settings page. Renaming only needs the settings to be shown; every other
change needs a fresh password + code confirmation (:func:`reauth`), as making
new backup codes, removing a device and disabling do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ... import i18n
from ...errors import InvalidFactorLabel, NotEnrolled, NotFound, PolicyError, UnknownFactor
from ...i18n import gettext as _
from ...member import Member
from ...results import FactorInfo, MemberStatus, Reason
from ...transports import TOTP
from . import ceremonies, inputs, setup_pages, state
from .codes import refuse
from .interface import Answer, Redirect
from .outcome import lock_minutes
from .pages import back_to_settings, current_status, need_member, page
from .state import K_SENT, MAX_FIELD
from .texts import (
    CONFIRM_FIRST_TEXT,
    LAST_FACTOR_TEXT,
    NO_ADDRESS_TO_CONFIRM_TEXT,
    NO_SUCH_DEVICE_TEXT,
    NO_SUCH_FACTOR_TEXT,
    WRONG_PASSWORD_TEXT,
    attempts_left_text,
    factor_default_text,
    factor_removed_text,
    factor_renamed_text,
    invalid_label_text,
    locked_text,
)

if TYPE_CHECKING:
    from .visit import Visit

#: The audited reason of a wrong password on the re-authentication form (``verify_failed``).
PASSWORD_FAILURE = "password"


def _settings_guard(v: Visit) -> Member | Answer:
    """The member when the settings may be shown: set up, and verified (or on a trusted device) when needed."""
    member = need_member(v)
    if not isinstance(member, Member):
        return member
    status = current_status(v)
    if status.must_setup:
        return Redirect(location=v.url("setup"))
    if status.verification_needed and not v.is_verified() and not v.is_trusted_device():
        return Redirect(location=v.url("verify", next=v.url("settings")))
    return member


def _change_guard(v: Visit) -> Member | Answer:
    """The member when the settings may be changed: :func:`_settings_guard` and a fresh confirmation."""
    member = _settings_guard(v)
    if not isinstance(member, Member):
        return member
    if not v.reauth_ok():
        return back_to_settings(v, _(CONFIRM_FIRST_TEXT), "error")
    return member


def _send_options(status: MemberStatus) -> list[dict[str, Any]]:
    """The member's usable delivered factors a confirmation code can be sent to, one per channel."""
    seen: dict[str, dict[str, Any]] = {}
    for factor in status.factors:
        if factor.usable and factor.kind != TOTP:
            seen.setdefault(factor.kind, {"channel": factor.kind, "label": factor.label,
                                          "hint": factor.recipient_hint})
    return list(seen.values())


def settings(v: Visit) -> Answer:
    """The settings page: factors, backup codes, trusted devices, disable; changes need a confirmation."""
    member = _settings_guard(v)
    if not isinstance(member, Member):
        return member
    status = current_status(v)
    core = v.core
    channels = core.channels
    return page(
        "otp_pro/settings.html", status=status, factors=status.factors,
        kind_labels={f.kind: i18n.label(channels[f.kind].label) if f.kind in channels else f.kind
                     for f in status.factors},
        devices=core.trusted_devices(member) if status.enrolled else [],
        reauth=v.reauth_ok(), send_options=_send_options(status), sent=v.session.get(K_SENT),
        resend_in=v.resend_in(), code_length=core.settings.code_length,
        locked_minutes=lock_minutes(status.locked_until, core.clock()),
        can_add=bool(status.channels) and status.requirement != "not_required",
        # A passkey confirms a change as a fresh code does (its answer is posted with the password).
        ceremonies=ceremonies.offered(core, status), challenge_url=v.url("api_challenge"),
    )


def reauth(v: Visit) -> Answer:
    """``POST`` (``password``, ``code``): confirm the member before a change of MFA settings.

    A wrong password is a failed attempt like a wrong code (:meth:`~otp_pro.OtpPro.record_failure`), and a
    locked member is refused before the password is checked, so the page cannot be used to guess passwords.
    """
    member = _settings_guard(v)
    if not isinstance(member, Member):
        return member
    status = current_status(v)
    core = v.core
    minutes = lock_minutes(status.locked_until, core.clock())
    if minutes is not None:
        return back_to_settings(v, locked_text(minutes), "error")
    password, code = v.request.form.get("password", ""), v.request.form.get("code", "")
    if not password or not isinstance(password, str):
        return back_to_settings(v, _("Enter your current password."), "error")
    if not v.flow.check_password(member, password[:1024]):
        return _wrong_password(v, member)
    if status.enrolled:
        answer = ceremonies.posted_answer(v)
        if answer is None and (not isinstance(code, str) or not code.strip()):
            return back_to_settings(v, _("Enter a fresh one-time code as well."), "error")
        result = core.verify(member, answer if answer is not None else code[:MAX_FIELD],
                             binding=state.current_binding(v.session), **v.client())
        if not result.ok:
            text = ceremonies.answer_refused_text(result.reason) if answer is not None \
                and result.reason != Reason.LOCKED else refuse(v, result).message
            return back_to_settings(v, text, "error")
    state.confirm_reauth(v.session, v.flow.reauth_seconds)
    return back_to_settings(v,
        f"Confirmed: you can change your settings for the next {max(1, v.flow.reauth_seconds // 60)} minutes.", "info")


def _wrong_password(v: Visit, member: Member) -> Answer:
    """Count a wrong password toward the member's lockout and say what is left (or that the lock began)."""
    core = v.core
    result = core.record_failure(member, reason=PASSWORD_FAILURE, **v.client())
    if result.reason == Reason.LOCKED:
        return back_to_settings(v, locked_text(lock_minutes(result.locked_until, core.clock())), "error")
    left = attempts_left_text(result.attempts_remaining) if result.attempts_remaining is not None else ""
    return back_to_settings(v, _(WRONG_PASSWORD_TEXT) + left, "error")


def backup_codes(v: Visit) -> Answer:
    """``POST``: a new set of backup codes (the old ones stop working), shown once."""
    member = _change_guard(v)
    if not isinstance(member, Member):
        return member
    try:
        codes = v.core.regenerate_backup_codes(member, actor=member.id, **v.client())
    except NotEnrolled:
        return back_to_settings(v, _("Set up two-step verification first."), "error")
    return page("otp_pro/backup_codes.html", codes=codes, fresh_setup=False, next=v.url("settings"))


def revoke(v: Visit, device_id: str) -> Answer:
    """``POST``: revoke one trusted device of the member (404 for a path segment that is no device id)."""
    number = inputs.device_id(device_id)
    if number is None:
        return page("otp_pro/message.html", 404, title=_("No such device"), message=_(NO_SUCH_DEVICE_TEXT),
                    link=v.url("settings"))
    member = _change_guard(v)
    if not isinstance(member, Member):
        return member
    try:
        v.core.revoke_device(member, number, actor=member.id, **v.client())
    except NotFound:
        return back_to_settings(v, _(NO_SUCH_DEVICE_TEXT), "error")
    return back_to_settings(v, _("The device was removed: it will be asked for a code at the next sign-in."),
                            "info")


def disable(v: Visit) -> Answer:
    """``POST``: switch two-step verification off, when the policy allows it."""
    member = _change_guard(v)
    if not isinstance(member, Member):
        return member
    try:
        v.core.disable(member, actor=member.id, **v.client())
    except PolicyError:
        return back_to_settings(v, _("Two-step verification is required for your account and cannot be switched off."),
                                "error")
    return back_to_settings(v, _("Two-step verification is off. Your backup codes and trusted devices were removed."),
                            "info")


# ------------------------------------------------------------------ factors


def _own_factor(v: Visit, factor_id: str, *, change: bool) -> tuple[Member, FactorInfo] | Answer:
    """The member and their factor ``factor_id`` (a path segment), after the settings' guard (``change``:
    and a fresh confirmation); a message on the settings page when it is none of theirs."""
    number = inputs.factor_id(factor_id)
    if number is None:
        return page("otp_pro/message.html", 404, title=_("No such sign-in method"), message=_(NO_SUCH_FACTOR_TEXT),
                    link=v.url("settings"))
    member = _change_guard(v) if change else _settings_guard(v)
    if not isinstance(member, Member):
        return member
    found = next((f for f in current_status(v).factors if f.id == number), None)
    if found is None:
        return back_to_settings(v, _(NO_SUCH_FACTOR_TEXT), "error")
    return member, found


def factor_rename(v: Visit, factor_id: str) -> Answer:
    """``POST`` (``label``): give one of the member's factors a name (empty: the channel's own)."""
    owned = _own_factor(v, factor_id, change=False)
    if not isinstance(owned, tuple):
        return owned
    member, factor = owned
    label = v.form_field("label").strip() or None
    try:
        v.core.rename_factor(member, factor.id, label, actor=member.id, **v.client())
    except InvalidFactorLabel as exc:
        return back_to_settings(v, invalid_label_text(exc), "error")
    except UnknownFactor:
        return back_to_settings(v, _(NO_SUCH_FACTOR_TEXT), "error")
    new = next((f.label for f in v.core.factors(member) if f.id == factor.id), label or factor.kind)
    return back_to_settings(v, factor_renamed_text(new), "info")


def factor_default(v: Visit, factor_id: str) -> Answer:
    """``POST``: make one of the member's factors the default (offered first, sent to at sign-in)."""
    owned = _own_factor(v, factor_id, change=True)
    if not isinstance(owned, tuple):
        return owned
    member, factor = owned
    try:
        v.core.set_default_factor(member, factor.id, actor=member.id, **v.client())
    except UnknownFactor:
        return back_to_settings(v, _(NO_SUCH_FACTOR_TEXT), "error")
    return back_to_settings(v, factor_default_text(factor.label), "info")


def factor_remove(v: Visit, factor_id: str) -> Answer:
    """``POST``: remove one of the member's factors; refused for a required member's last allowed one."""
    owned = _own_factor(v, factor_id, change=True)
    if not isinstance(owned, tuple):
        return owned
    member, factor = owned
    try:
        v.core.remove_factor(member, factor.id, actor=member.id, **v.client())
    except PolicyError:
        return back_to_settings(v, _(LAST_FACTOR_TEXT), "error")
    except UnknownFactor:
        return back_to_settings(v, _(NO_SUCH_FACTOR_TEXT), "error")
    return back_to_settings(v, factor_removed_text(factor.label, any_left=bool(v.core.factors(member))), "info")


def factor_reconfirm(v: Visit, factor_id: str) -> Answer:
    """``POST``: confirm a delivered factor at the address the member record shows now (a code is sent there)."""
    owned = _own_factor(v, factor_id, change=True)
    if not isinstance(owned, tuple):
        return owned
    member, factor = owned
    if factor.kind == TOTP:
        return back_to_settings(v, _(NO_ADDRESS_TO_CONFIRM_TEXT), "error")
    return setup_pages.start(v, member, factor.kind, label=factor.own_label, reconfirm=factor.id,
                             refused=lambda _status, text: back_to_settings(v, text, "error"))
