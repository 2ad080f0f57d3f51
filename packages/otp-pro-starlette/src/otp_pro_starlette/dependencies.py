"""Guards for the site's own endpoints: ``require_verified`` and ``recently_verified(max_age=...)`` (step-up).

Both are async callables taking the Starlette request and answering the signed-in
:class:`~otp_pro.Member`, so they are FastAPI dependencies as they stand and plain awaitables in a
Starlette endpoint::

    @app.get("/billing")
    async def billing(member: Member = Depends(require_verified)): ...

    @app.post("/account/delete", dependencies=[Depends(recently_verified(max_age=300))])
    async def delete_account(): ...

    async def payout(request):                       # Starlette
        member = await recently_verified(max_age=300)(request)

When the member may not go on, they raise :class:`SecondStepRequired` holding the flow's answer, and the
exception handler that :meth:`OtpProStarlette.install <otp_pro_starlette.OtpProStarlette.install>`
registers turns it into the response: a ``303`` to the verify page (a fresh code, even on a trusted
device, for a step-up), to setup or to the site's login, and back once passed; an AJAX/JSON request gets
``401 {"error": ..., "location": ...}`` as from the gate.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response

from otp_pro.errors import StorageError
from otp_pro.member import Member
from otp_pro.web.flow import Answer, Json, Redirect, Visit
from otp_pro.web.flow.security import secure

from .adapter import SCOPE_WEB, mark_changed, run, snapshot, to_response
from .routing import visit_of


class SecondStepRequired(Exception):
    """The member must pass a (fresh) second step, or sign in, first; ``answer`` says where to go."""

    def __init__(self, answer: Answer) -> None:
        super().__init__("a second step is required")
        self.answer = answer


async def second_step_required(request: Request, exc: Exception) -> Response:
    """The exception handler for :class:`SecondStepRequired`: the flow's answer as a response."""
    assert isinstance(exc, SecondStepRequired)
    web = request.scope[SCOPE_WEB]
    return await to_response(web.flow, exc.answer, visit_of(request.scope))


def _away(v: Visit, location: str, error: str) -> Answer:
    answer: Answer = Json(body={"error": error, "location": location}, status=401) if v.request.wants_json \
        else Redirect(location=location)
    secure(answer)
    return answer


def verified_refusal(v: Visit) -> Answer | None:
    """None when this login passed its second step (or the browser is a trusted device); else where to go.

    Signed out: the site's login; no second step set up yet: setup; not verified: the verify page. Each
    with this request's address as ``next``. Reads the database: call it in a worker thread.
    """
    here = v.request.root + v.request.path + (f"?{v.request.query_string}" if v.request.query_string else "")
    status = v.status()
    if status is None:
        return _away(v, v.request.root + v.login_redirect(), "login_required")
    after = f"?{urlencode({'next': here}, quote_via=quote)}"
    if not status.enrolled:
        return _away(v, v.url("setup") + after, "setup_required")
    if v.is_verified() or v.is_trusted_device():
        return None
    return _away(v, v.url("verify") + after, "verification_required")


async def _guard(request: Request, check: Callable[[Visit], Answer | None]) -> Member:
    v = visit_of(request.scope)
    before = snapshot(v.session)
    try:
        answer = await run(check, v)
    except StorageError as error:
        answer = v.flow.storage_failed(v, error)
    mark_changed(v.session, before)
    if answer is not None:
        raise SecondStepRequired(answer)
    member = v.member()  # loaded by the check already
    if member is None:  # pragma: no cover - a check passes only a signed-in member
        raise SecondStepRequired(_away(v, v.request.root + v.login_redirect(), "login_required"))
    return member


async def require_verified(request: Request) -> Member:
    """The signed-in member, once this login passed its second step (see the module docstring)."""
    return await _guard(request, verified_refusal)


def recently_verified(max_age: int = 300) -> Callable[[Request], Awaitable[Member]]:
    """A guard asking for a fresh second step when this login's last one is older than ``max_age`` seconds.

    Uses :meth:`Flow.step_up <otp_pro.web.flow.Flow.step_up>`: a trusted device does not skip it, and the
    member comes back to this request's address once it is passed. A member whose policy offers no second
    step passes (there is nothing to step up to); a signed-out visitor is sent to the site's login.
    """
    if not isinstance(max_age, int) or isinstance(max_age, bool) or max_age < 0:
        raise ValueError(f"max_age must be a number of seconds (0 or more), got {max_age!r}")

    def check(v: Visit) -> Answer | None:
        return v.flow.step_up(v, max_age)

    async def recently_verified_member(request: Request) -> Member:
        return await _guard(request, check)

    return recently_verified_member
