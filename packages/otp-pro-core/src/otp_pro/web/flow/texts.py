"""The texts the flow shows to members about codes: refusals, lockouts, throttling, deliveries, failures.

The wording a member reads after an operation lives here, apart from the views
that show it, so the pages, the JSON API and a site's own login pages say the
same thing in every adapter.
"""

from __future__ import annotations

import math

from ...results import ChallengeStatus, Reason

#: Why a code or a sign-in link was refused, keyed by :attr:`otp_pro.VerifyResult.reason`.
REASON_TEXT = {
    Reason.INVALID: "That code is not correct.",
    Reason.EXPIRED: "That code has expired: ask for a new one.",
    Reason.MALFORMED: "Enter the code as digits (or a backup code as letters and digits).",
    Reason.NOT_ENROLLED: "Two-step verification is not set up for this account.",
    Reason.UNKNOWN: "This sign-in link is not valid: it may come from an old message. Ask for a new one.",
    Reason.USED: "This sign-in link was already used. Each link works once.",
    Reason.REPLACED: "A newer sign-in link was sent: only the newest one works.",
    Reason.WRONG_BROWSER: "Open the link in the browser you are signing in with.",
}
#: A refusal whose reason has no text in :data:`REASON_TEXT`.
OTHER_REASON_TEXT = "That code cannot be used."

#: The delivery of a login's last code, keyed by its state (``{label}``: the channel, ``{hint}``: the masked recipient).
DELIVERY_TEXT = {
    ChallengeStatus.SENDING: "Sending your code by {label}...",
    ChallengeStatus.SENT: "Sent by {label} to {hint}.",
    ChallengeStatus.FAILED: "The code could not be sent by {label}: try another method.",
    ChallengeStatus.REPLACED: "A newer code was asked for: use the newest one.",
}

#: Shown (HTTP 503) when the database failed during a request; the operation was rolled back.
STORAGE_FAILED_TEXT = ("Something went wrong on our side and nothing was changed (a code you entered is still "
                       "unused). Try again in a moment.")
#: Shown (HTTP 400) for a POST without the session's CSRF token.
CSRF_FAILED_TEXT = "This form has expired or did not come from this site. Reload the page and try again."

SIGN_IN_FIRST_TEXT = "Sign in first."
#: The password asked again before a change of settings is wrong (the attempts left may follow).
WRONG_PASSWORD_TEXT = "That password is not correct."
SIGN_IN_EXPIRED_TEXT = "Your sign-in has expired: sign in again."
EMPTY_CODE_TEXT = "Enter the code you received (or a backup code)."
NO_SUCH_CHANNEL_TEXT = "That delivery channel is not available."
NO_SUCH_DEVICE_TEXT = "That device is not in your list (it may have expired already)."
VERIFIED_TEXT = "Verified."


def locked_text(minutes: int | None) -> str:
    """The lockout message for ``minutes`` left (from :func:`~otp_pro.web.flow.outcome.lock_minutes`; -1: hard lock)."""
    if minutes == -1:
        return "Sign-in is blocked after too many failed attempts. Contact support to unlock your account."
    return f"Too many failed attempts. Try again in {minutes or 1} minute{'s' if minutes != 1 else ''}."


def cooldown_text(retry_after: int) -> str:
    """Another code was asked for before the resend cooldown ran out."""
    return f"Please wait {retry_after} seconds before asking for another code."


def hourly_cap_text(retry_after: int) -> str:
    """The hourly cap on codes sent (per member or per recipient) is reached."""
    return f"Too many codes were sent recently. Try again in {max(1, math.ceil(retry_after / 60))} minutes."


def network_limit_text(retry_after: int, *, sends: bool) -> str:
    """The caller's IP address is over a per-IP limit (codes sent, or verifications that did not pass)."""
    what = "Too many codes were sent from your network" if sends else "Too many attempts came from your network"
    return f"{what} recently. Try again in {max(1, math.ceil(retry_after / 60))} minutes."


def attempts_left_text(left: int) -> str:
    """Appended to a refusal while the member still has attempts before a lockout."""
    return f" {left} attempt{'s' if left != 1 else ''} left before a lockout."


def channel_refused_text(reason: object) -> str:
    """The member's channel cannot be used now (not enrolled, unavailable, not allowed by policy)."""
    return f"That delivery channel cannot be used: {reason}."


def backup_code_used_text(remaining: int) -> str:
    """Signed in with a backup code; ``remaining`` are left."""
    return f"Signed in with a backup code. {remaining} backup codes left."


def sent_text(what: str, label: str, hint: str | None, *, queued: bool) -> str:
    """A code or link (``what``) was handed to the channel ``label`` (``queued``: to a task queue)."""
    if queued:
        return f"Sending {what} by {label} to {hint}..."
    return f"We sent {what} by {label} to {hint}."


def delivery_failed_text(label: str, fallback_labels: list[str]) -> str:
    """A send failed on ``label``; ``fallback_labels`` are the member's other channels, in policy order."""
    text = f"The code could not be sent by {label}."
    if fallback_labels:
        return text + " Try another method: " + ", ".join(fallback_labels) + "."
    return text + " Try again in a moment, or use a backup code."


# ------------------------------------------------------------------ factors

#: A send asked for on a channel the member has no factor on (the role may allow it: only their own count).
FACTOR_NOT_ENROLLED_TEXT = ("You have not set up that method, so no code can be sent by it. "
                            "Use one of the methods listed, or a backup code.")
#: A factor id that is none of the member's (or no id at all).
NO_SUCH_FACTOR_TEXT = "That sign-in method is not in your list (it may have been removed already)."
#: Removing the last factor a required member's role allows.
LAST_FACTOR_TEXT = ("This is your last sign-in method and your account requires one: add another method before "
                    "removing this one.")
#: A setup that added a factor after the first: the backup codes are the same as before.
BACKUP_CODES_UNCHANGED_TEXT = "Your backup codes are unchanged: keep using the ones you saved."
#: Changing the factors needs the password + code confirmation first.
CONFIRM_FIRST_TEXT = "Confirm your password and a fresh code first."
#: The setup page, asked for by an enrolled member without the confirmation.
CONFIRM_TO_ADD_TEXT = CONFIRM_FIRST_TEXT + " Then you can add a sign-in method."
#: Re-confirm asked for an authenticator app (only a delivered factor has an address).
NO_ADDRESS_TO_CONFIRM_TEXT = "An authenticator app has no address to confirm."
#: The title of the page that refuses a send on a channel (outside the verify page).
CHANNEL_REFUSED_TITLE = "That method cannot be used"


def factor_needs_reconfirming_text(label: str) -> str:
    """A send to a factor whose address the member record no longer shows: nothing was sent."""
    return (f"Your address for {label} has changed since you set it up, so no code was sent to it. Sign in with "
            "another method or a backup code, then confirm the new address in your security settings.")


def factor_added_text(label: str) -> str:
    """A setup added ``label`` next to the member's other factors."""
    return f"{label} was added to your sign-in methods. {BACKUP_CODES_UNCHANGED_TEXT}"


def factor_reconfirmed_text(label: str) -> str:
    """A delivered factor was confirmed at the address the member record shows now."""
    return f"{label} is confirmed at its new address. {BACKUP_CODES_UNCHANGED_TEXT}"


def factor_removed_text(label: str, *, any_left: bool) -> str:
    """A factor was removed (its trusted devices with it); ``any_left``: the member still has one."""
    if any_left:
        return (f"{label} was removed from your sign-in methods. Trusted devices were removed too: they will be "
                "asked for a code at the next sign-in.")
    return f"{label} was removed. Two-step verification is off: your backup codes and trusted devices were removed."


def factor_renamed_text(label: str) -> str:
    """A factor was given a new name (or its channel's name back)."""
    return f"The method is now called {label}."


def factor_default_text(label: str) -> str:
    """A factor was made the default: the one offered first at sign-in."""
    return f"{label} is now your default sign-in method."


def invalid_label_text(reason: object) -> str:
    """The name given to a factor cannot be used (too long, control characters)."""
    return f"That name cannot be used: {reason}."
