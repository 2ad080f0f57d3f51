"""The setup pages: choose a channel (and a name for the factor), confirm it with a code, the backup codes.

The same flow sets up a member's first factor and adds another one (a second
authenticator app, a phone next to the email) from the settings page, and
re-confirms a delivered factor at the address the member record shows now
(:func:`start`). Only the first factor's setup shows backup codes; a later one
says they are unchanged. Changing the factors of an enrolled member needs the
password + code confirmation (``reauth``) of :mod:`.settings_pages`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ... import i18n
from ...errors import (
    ChannelUnavailable,
    DeliveryError,
    InvalidCode,
    InvalidFactorLabel,
    LockedOut,
    PolicyError,
    SetupBegunElsewhere,
    SetupError,
    ThrottledError,
    UnknownFactor,
)
from ...i18n import gettext as _
from ...member import Member
from ...results import MemberStatus, Reason, VerifyResult
from ...transports import TOTP
from . import ceremonies, state
from .codes import refuse
from .interface import Answer, Redirect
from .outcome import lock_minutes
from .pages import back_to_settings, current_status, message, need_member, page
from .state import K_SENT, K_SETUP, K_SETUP_FACTOR, MAX_FIELD
from .texts import (
    CONFIRM_TO_ADD_TEXT,
    NO_SUCH_FACTOR_TEXT,
    cooldown_text,
    factor_added_text,
    factor_reconfirmed_text,
    invalid_label_text,
    locked_text,
)

if TYPE_CHECKING:
    from .visit import Visit


def _setup_allowed(v: Visit, status: MemberStatus) -> Answer | None:
    if status.requirement == "not_required":
        v.flash(_("Two-step verification is not offered for your account."), "error")
        return Redirect(location=v.flow.home_url)
    if status.enrolled and status.verification_needed and not v.is_verified():
        return Redirect(location=v.url("verify"))
    if status.enrolled and not v.reauth_ok():
        return back_to_settings(v, _(CONFIRM_TO_ADD_TEXT), "error")
    return None


def _choose(v: Visit, status: MemberStatus, http_status: int = 200, error: str | None = None) -> Answer:
    channels = v.core.channels
    options = []
    for name in status.channels:
        # What the member has on this channel already: a second app is fine, a second factor at the
        # same address is refused by the core.
        have = [f.label + (f" ({f.recipient_hint})" if f.recipient_hint else "")
                for f in status.factors if f.kind == name]
        options.append({"channel": name, "label": i18n.label(channels[name].label), "have": have})
    return page("otp_pro/setup_choose.html", http_status, status=status, options=options, adding=status.enrolled,
                unavailable=[(i18n.label(channels[n].label), i18n.translate(why))
                             for n, why in status.unavailable.items() if n in channels],
                error=error, name=v.form_field("label") if v.request.method == "POST" else "")


def setup(v: Visit) -> Answer:
    """``GET``: choose a channel. ``POST`` (``channel``, ``label``): start setting it up (QR code, or a code sent)."""
    member = need_member(v)
    if isinstance(member, Redirect):
        return member
    status = current_status(v)
    refused = _setup_allowed(v, status)
    if refused is not None:
        return refused
    if v.request.method == "GET":
        return _choose(v, status)
    channel = v.form_field("channel")
    if channel not in status.channels:
        return _choose(v, status, 400, _("Choose one of the methods listed."))
    return start(v, member, channel, label=v.form_field("label") or None,
                 refused=lambda code, text: _choose(v, status, code, text))


def start(v: Visit, member: Member, channel: str, *, label: str | None, reconfirm: int | None = None,
          refused: Callable[[int, str], Answer]) -> Answer:
    """Begin the setup of ``channel`` (``reconfirm``: of that factor at its new address); the confirm page.

    ``refused(http_status, text)`` answers a setup the core refuses.
    """
    core = v.core
    try:
        info = core.begin_setup(member, channel, label=label, reconfirm=reconfirm, binding=state.binding(v.session),
                                **v.client())
    except LockedOut as exc:
        return refused(429, locked_text(lock_minutes(exc.locked_until, core.clock())))
    except ThrottledError as exc:
        return refused(429, cooldown_text(exc.retry_after))
    except InvalidFactorLabel as exc:
        return refused(400, invalid_label_text(exc))
    except UnknownFactor:
        return refused(400, _(NO_SUCH_FACTOR_TEXT))
    except (ChannelUnavailable, PolicyError, SetupError) as exc:
        return refused(400, _("That method cannot be set up: %(reason)s.",
                               reason=i18n.translate(getattr(exc, "reason", None) or exc)))
    except DeliveryError:
        return refused(502, _("The code could not be sent just now. Try again in a moment."))
    v.session[K_SETUP] = channel
    channel_label = i18n.label(core.channels[channel].label)
    v.session[K_SETUP_FACTOR] = {"label": label or channel_label, "reconfirm": reconfirm}
    if info.challenge is not None:
        v.session[K_SENT] = {"at": time.time(), "hint": info.challenge.recipient_hint, "channel": channel,
                           "label": core.channels[channel].label}
    return page("otp_pro/setup_confirm.html", info=info, channel=channel, label=label or channel_label,
                is_link=channel.endswith(":magic_link"), code_length=core.settings.code_length,
                hint=info.challenge.recipient_hint if info.challenge else None, is_totp=channel == TOTP,
                # A factor answered in the browser: the page runs its ceremony over info.show.
                ceremony=ceremonies.input_kind(core, channel) if ceremonies.is_ceremony(core, channel) else None)


def setup_confirm(v: Visit) -> Answer:
    """``POST`` (``code``): finish the setup; a first factor's backup codes are shown on this one page, once."""
    member = need_member(v)
    if isinstance(member, Redirect):
        return member
    core = v.core
    channel = v.session.get(K_SETUP) if isinstance(v.session.get(K_SETUP), str) else None
    label = _pending_label(v) or (i18n.label(core.channels[channel].label) if channel in core.channels else "")
    answer = ceremonies.posted_answer(v)
    code = answer if answer is not None else v.request.form.get("code", "")
    common = {"info": None, "channel": channel, "label": label, "code_length": core.settings.code_length,
              "is_link": False, "hint": (v.session.get(K_SENT) or {}).get("hint"),
              "ceremony": ceremonies.input_kind(core, channel) if ceremonies.is_ceremony(core, channel) else None}
    if not isinstance(code, str) or not code.strip():
        return page("otp_pro/setup_confirm.html", 400, error=_("Enter the code to confirm."), **common)
    try:
        codes = core.complete_setup(member, code if answer is not None else code[:MAX_FIELD],
                                   binding=state.current_binding(v.session), **v.client())
    except SetupBegunElsewhere:
        # Another login of this member began the pending setup: finishing it here would verify this one.
        v.session.pop(K_SETUP, None)
        return message(403, _("Start the setup again"), _("This setup was started in another browser or sign-in, "
                       "so it can only be finished there. Start the setup again here if you want to use this "
                       "browser."), v.url("setup"))
    except InvalidCode as exc:
        result = exc.result if isinstance(exc.result, VerifyResult) else VerifyResult(False, reason=Reason.INVALID)
        outcome = refuse(v, result)
        text = ceremonies.answer_refused_text(result.reason) if answer is not None and result.reason != Reason.LOCKED \
            else outcome.message
        return page("otp_pro/setup_confirm.html", outcome.status, error=text, **common)
    except LockedOut as exc:
        minutes = lock_minutes(exc.locked_until, core.clock())
        return page("otp_pro/setup_confirm.html", 429, error=locked_text(minutes), **common)
    except SetupError as exc:
        reason = i18n.translate(exc)
        v.flash(f"{reason[:1].upper()}{reason[1:]}.", "error")
        return Redirect(location=v.url("setup"))
    return setup_done(v, codes)


def _pending_label(v: Visit) -> str | None:
    data = v.session.get(K_SETUP_FACTOR)
    label = data.get("label") if isinstance(data, dict) else None
    return label if isinstance(label, str) else None


def setup_done(v: Visit, codes: list[str] | tuple[str, ...]) -> Answer:
    """The end of a setup: the first factor's backup codes (once), or back to the settings for a later one."""
    data = v.session.pop(K_SETUP_FACTOR, None)
    v.session.pop(K_SETUP, None)
    if not codes:
        # A factor added next to others (or re-confirmed): this login was verified to begin it, and keeps
        # its confirmation for further changes; the backup codes stay the ones the member holds.
        label = (data or {}).get("label") if isinstance(data, dict) else None
        name = label if isinstance(label, str) and label else _("The new method")
        reconfirmed = isinstance(data, dict) and data.get("reconfirm") is not None
        return back_to_settings(v, factor_reconfirmed_text(name) if reconfirmed else factor_added_text(name), "info")
    state.mark_verified(v)
    return page("otp_pro/backup_codes.html", codes=list(codes), fresh_setup=True, next=v.next_url())
