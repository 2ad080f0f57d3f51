"""Who may use the operator console: the site's operator check, a second step passed recently, the actor's name.

The site names its operators with a callable (``operator(member) -> bool``) its adapter passes to the
:class:`~otp_pro.web.flow.Flow`; the console's routes exist only when it does. Every console route's
:func:`guard` asks :func:`operator_of`, once a request, and leaves the operator on the visit, where the
handler reads it with :func:`current`:

=========================================  =================================================
the request                                the answer
=========================================  =================================================
signed out, or not an operator             404, the same page as any unknown address
an operator without a second factor        403, "set up two-step verification first"
an operator whose last second step is      the verify page for a fresh code (step-up), then
older than ``operator_max_age`` seconds    back here
an operator, second step recent            the operator (the page is shown)
=========================================  =================================================

A refusal looks like a missing page so that the console's addresses tell a non-operator nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ....member import Member
from ..interface import Answer
from ..pages import message

if TYPE_CHECKING:
    from ..visit import Visit

#: The prefix of an operator's name in the audit log's ``actor`` column: ``console:<member id>``.
ACTOR_PREFIX = "console:"


def not_found(v: Visit) -> Answer:
    """The 404 page a non-operator gets for any console address."""
    return message(404, "Page not found", "There is no page at this address.", v.flow.home_url)


def operator_of(v: Visit) -> Member | Answer:
    """The signed-in operator, or the answer that refuses the request (see the table above)."""
    check = v.flow.operator
    member = v.member()
    if check is None or member is None or not check(member):
        return not_found(v)
    status = v.status()
    if status is None or not status.enrolled:
        return message(403, "Two-step verification needed",
                       "Set up two-step verification for your own account before using the operator console.",
                       v.url("setup"))
    away = v.flow.step_up(v, v.flow.operator_max_age)
    return away if away is not None else member


def guard(v: Visit) -> Answer | None:
    """The console routes' :attr:`Route.guard <otp_pro.web.flow.Route.guard>`: :func:`operator_of`'s refusal,
    before the CSRF check, so a non-operator's POST is a 404 like their GET; an operator is left on
    :attr:`Visit.operator <otp_pro.web.flow.visit.Visit.operator>` for the handler."""
    found = operator_of(v)
    if isinstance(found, Member):
        v.operator = found
        return None
    return found


def current(v: Visit) -> Member:
    """The operator :func:`guard` let in: every console handler runs behind it."""
    if v.operator is None:  # a handler reached without its guard is a wiring mistake, not a request to serve
        raise RuntimeError("an operator console handler ran without the console's route guard")
    return v.operator


def actor(operator: Member) -> str:
    """The operator as the audit log names them: ``console:<member id>``."""
    return f"{ACTOR_PREFIX}{operator.id}"
