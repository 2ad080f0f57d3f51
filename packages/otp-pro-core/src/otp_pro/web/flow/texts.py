"""The texts the flow shows to members about codes: refusals, lockouts, throttling, deliveries, failures.

The wording a member reads after an operation lives here, apart from the views
that show it, so the pages, the JSON API and a site's own login pages say the
same thing in every adapter. Each text is a gettext message (``otp_pro`` domain): the
constants are marked with ``N_`` and translated where they are shown (``_(TEXT)``, in the
request's language), the functions translate at once.
"""

from __future__ import annotations

import math

from ... import i18n
from ...i18n import N_, ngettext
from ...i18n import gettext as _
from ...results import ChallengeStatus, Reason

#: Why a code or a sign-in link was refused, keyed by :attr:`otp_pro.VerifyResult.reason`.
REASON_TEXT = {
    Reason.INVALID: N_("That code is not correct."),
    Reason.EXPIRED: N_("That code has expired: ask for a new one."),
    Reason.MALFORMED: N_("Enter the code as digits (or a backup code as letters and digits)."),
    Reason.NOT_ENROLLED: N_("Two-step verification is not set up for this account."),
    Reason.UNKNOWN: N_("This sign-in link is not valid: it may come from an old message. Ask for a new one."),
    Reason.USED: N_("This sign-in link was already used. Each link works once."),
    Reason.REPLACED: N_("A newer sign-in link was sent: only the newest one works."),
    Reason.WRONG_BROWSER: N_("Open the link in the browser you are signing in with."),
}
#: A refusal whose reason has no text in :data:`REASON_TEXT`.
OTHER_REASON_TEXT = N_("That code cannot be used.")

#: The delivery of a login's last code, keyed by its state (``%(label)s``: the channel, ``%(hint)s``: the masked
#: recipient).
DELIVERY_TEXT = {
    ChallengeStatus.SENDING: N_("Sending your code by %(label)s..."),
    ChallengeStatus.SENT: N_("Sent by %(label)s to %(hint)s."),
    ChallengeStatus.FAILED: N_("The code could not be sent by %(label)s: try another method."),
    ChallengeStatus.REPLACED: N_("A newer code was asked for: use the newest one."),
}

#: Shown (HTTP 503) when the database failed during a request; the operation was rolled back.
STORAGE_FAILED_TEXT = N_("Something went wrong on our side and nothing was changed (a code you entered is still "
                         "unused). Try again in a moment.")
#: Shown (HTTP 400) for a POST without the session's CSRF token.
CSRF_FAILED_TEXT = N_("This form has expired or did not come from this site. Reload the page and try again.")
#: Shown (HTTP 413) for a form larger than any of the flow's forms can be (refused before it is read whole).
TOO_LARGE_TEXT = N_("This form is too large. Reload the page and try again.")

SIGN_IN_FIRST_TEXT = N_("Sign in first.")
#: The password asked again before a change of settings is wrong (the attempts left may follow).
WRONG_PASSWORD_TEXT = N_("That password is not correct.")
SIGN_IN_EXPIRED_TEXT = N_("Your sign-in has expired: sign in again.")
EMPTY_CODE_TEXT = N_("Enter the code you received (or a backup code).")
NO_SUCH_CHANNEL_TEXT = N_("That delivery channel is not available.")
NO_SUCH_DEVICE_TEXT = N_("That device is not in your list (it may have expired already).")
VERIFIED_TEXT = N_("Verified.")

# The site's password step, as the sample login patterns (``otp_pro/patterns/``) and the demo write it.
#: The login form was sent without an email or a password.
LOGIN_INCOMPLETE_TEXT = N_("Enter your email and password.")
#: The email and password do not match an account (which one is wrong is not said).
LOGIN_WRONG_TEXT = N_("Email or password is not correct.")
#: The password step passed and the member's method is an authenticator app: nothing was sent.
AUTHENTICATOR_CODE_TEXT = N_("Enter the code from your authenticator app.")


def locked_text(minutes: int | None) -> str:
    """The lockout message for ``minutes`` left (from :func:`~otp_pro.web.flow.outcome.lock_minutes`; -1: hard lock)."""
    if minutes == -1:
        return _("Sign-in is blocked after too many failed attempts. Contact support to unlock your account.")
    return ngettext("Too many failed attempts. Try again in %(num)d minute.",
                    "Too many failed attempts. Try again in %(num)d minutes.", minutes or 1)


def cooldown_text(retry_after: int) -> str:
    """Another code was asked for before the resend cooldown ran out."""
    return ngettext("Please wait %(num)d second before asking for another code.",
                    "Please wait %(num)d seconds before asking for another code.", retry_after)


def hourly_cap_text(retry_after: int) -> str:
    """The hourly cap on codes sent (per member or per recipient) is reached."""
    return ngettext("Too many codes were sent recently. Try again in %(num)d minute.",
                    "Too many codes were sent recently. Try again in %(num)d minutes.",
                    max(1, math.ceil(retry_after / 60)))


def network_limit_text(retry_after: int, *, sends: bool) -> str:
    """The caller's IP address is over a per-IP limit (codes sent, or verifications that did not pass)."""
    minutes = max(1, math.ceil(retry_after / 60))
    if sends:
        return ngettext("Too many codes were sent from your network recently. Try again in %(num)d minute.",
                        "Too many codes were sent from your network recently. Try again in %(num)d minutes.", minutes)
    return ngettext("Too many attempts came from your network recently. Try again in %(num)d minute.",
                    "Too many attempts came from your network recently. Try again in %(num)d minutes.", minutes)


def attempts_left_text(left: int) -> str:
    """Appended to a refusal while the member still has attempts before a lockout."""
    return " " + ngettext("%(num)d attempt left before a lockout.", "%(num)d attempts left before a lockout.", left)


def channel_refused_text(reason: object) -> str:
    """The member's channel cannot be used now (not enrolled, unavailable, not allowed by policy); ``reason``: the
    core's or a plugin's (:func:`otp_pro.i18n.translate` writes it in the page's language)."""
    return _("That delivery channel cannot be used: %(reason)s.", reason=i18n.translate(reason))


def backup_code_used_text(remaining: int) -> str:
    """Signed in with a backup code; ``remaining`` are left."""
    return ngettext("Signed in with a backup code. %(num)d backup code left.",
                    "Signed in with a backup code. %(num)d backup codes left.", remaining)


def sent_text(link: bool, label: str, hint: str | None, *, queued: bool) -> str:
    """A code (``link``: a sign-in link) was handed to the channel ``label`` (``queued``: to a task queue)."""
    # Four whole sentences: "a code" and "a sign-in link" take different words around them in other languages.
    if link:
        if queued:
            return _("Sending a sign-in link by %(label)s to %(hint)s...", label=label, hint=hint)
        return _("We sent a sign-in link by %(label)s to %(hint)s.", label=label, hint=hint)
    if queued:
        return _("Sending a code by %(label)s to %(hint)s...", label=label, hint=hint)
    return _("We sent a code by %(label)s to %(hint)s.", label=label, hint=hint)


def delivery_failed_text(label: str, fallback_labels: list[str]) -> str:
    """A send failed on ``label``; ``fallback_labels`` are the member's other channels, in policy order."""
    if fallback_labels:
        return _("The code could not be sent by %(label)s. Try another method: %(methods)s.", label=label,
                 methods=", ".join(fallback_labels))
    return _("The code could not be sent by %(label)s. Try again in a moment, or use a backup code.", label=label)


# ------------------------------------------------------------------ factors

#: A send asked for on a channel the member has no factor on (the role may allow it: only their own count).
FACTOR_NOT_ENROLLED_TEXT = N_("You have not set up that method, so no code can be sent by it. "
                              "Use one of the methods listed, or a backup code.")
#: A factor id that is none of the member's (or no id at all).
NO_SUCH_FACTOR_TEXT = N_("That sign-in method is not in your list (it may have been removed already).")
#: Removing the last factor a required member's role allows.
LAST_FACTOR_TEXT = N_("This is your last sign-in method and your account requires one: add another method "
                      "before removing this one.")
#: A setup that added a factor after the first: the backup codes are the same as before.
BACKUP_CODES_UNCHANGED_TEXT = N_("Your backup codes are unchanged: keep using the ones you saved.")
#: Changing the factors needs the password + code confirmation first.
CONFIRM_FIRST_TEXT = N_("Confirm your password and a fresh code first.")
#: The setup page, asked for by an enrolled member without the confirmation.
CONFIRM_TO_ADD_TEXT = N_("Confirm your password and a fresh code first. Then you can add a sign-in method.")
#: Re-confirm asked for an authenticator app (only a delivered factor has an address).
NO_ADDRESS_TO_CONFIRM_TEXT = N_("An authenticator app has no address to confirm.")
#: The title of the page that refuses a send on a channel (outside the verify page).
CHANNEL_REFUSED_TITLE = N_("That method cannot be used")


def factor_needs_reconfirming_text(label: str) -> str:
    """A send to a factor whose address the member record no longer shows: nothing was sent."""
    return _("Your address for %(label)s has changed since you set it up, so no code was sent to it. Sign in with "
             "another method or a backup code, then confirm the new address in your security settings.", label=label)


def factor_added_text(label: str) -> str:
    """A setup added ``label`` next to the member's other factors."""
    return _("%(label)s was added to your sign-in methods.", label=label) + " " + _(BACKUP_CODES_UNCHANGED_TEXT)


def factor_reconfirmed_text(label: str) -> str:
    """A delivered factor was confirmed at the address the member record shows now."""
    return _("%(label)s is confirmed at its new address.", label=label) + " " + _(BACKUP_CODES_UNCHANGED_TEXT)


def factor_removed_text(label: str, *, any_left: bool) -> str:
    """A factor was removed (its trusted devices with it); ``any_left``: the member still has one."""
    if any_left:
        return _("%(label)s was removed from your sign-in methods. Trusted devices were removed too: they will be "
                 "asked for a code at the next sign-in.", label=label)
    return _("%(label)s was removed. Two-step verification is off: your backup codes and trusted devices were "
             "removed.", label=label)


def factor_renamed_text(label: str) -> str:
    """A factor was given a new name (or its channel's name back)."""
    return _("The method is now called %(label)s.", label=label)


def factor_default_text(label: str) -> str:
    """A factor was made the default: the one offered first at sign-in."""
    return _("%(label)s is now your default sign-in method.", label=label)


def invalid_label_text(reason: object) -> str:
    """The name given to a factor cannot be used (too long, control characters)."""
    return _("That name cannot be used: %(reason)s.", reason=i18n.translate(reason))
