"""The login hand-off: the site's password step is done, the flow takes the member on (or signs them out)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from ...member import Member
from ...transports import TOTP
from . import codes, state
from .state import K_BINDING, K_LOGIN, K_MEMBER, K_NEXT, safe_next

if TYPE_CHECKING:
    from .visit import Visit


def login(v: Visit, member: Member, *, next: str | None = None, send: bool = True) -> str:
    """Sign ``member`` in after the site's password check; answer the address to redirect to.

    Clears and rotates the session and starts a new login (so a new second step). A
    trusted-device cookie of this member skips the step. When the member must
    verify and their channel delivers codes, the first code is sent now
    (``send=False`` leaves that to the verify page's button).
    """
    state.restart(v)
    data = v.session
    data[K_MEMBER] = member.id
    data[K_LOGIN] = secrets.token_urlsafe(24)
    data[K_BINDING] = secrets.token_urlsafe(32)
    target = safe_next(next, v.flow.home_url)
    data[K_NEXT] = target
    v.set_member(member)
    status = v.status()
    assert status is not None
    if status.must_setup:
        return v.url("setup")
    if not status.verification_needed:
        return target
    if v.is_trusted_device():
        state.mark_verified(v, fresh=False)  # no code was typed: a step-up still asks for one
        return target
    definition = v.core.channels.get(status.channel) if status.channel else None
    # Only a delivered channel has a code to send; a passkey's page asks for its challenge itself.
    if send and status.channel != TOTP and definition is not None and definition.transport is not None:
        codes.send_code(v)
    return v.url("verify")


def logout(v: Visit) -> None:
    """End the login: the whole session is cleared and rotated."""
    state.restart(v)
