"""``OtpProMiddleware``: the verification gate in front of every view of the site, the admin included.

Place it after Django's ``AuthenticationMiddleware`` (a system check says so when it is not).
For a signed-in user whose second step is owed it answers the flow's gate
(:meth:`otp_pro.web.flow.Flow.gate`): a ``303`` to the verify page or to forced setup,
carrying the requested address as ``?next=``; an AJAX/JSON request gets ``401`` with
``{"error": "verification_required" | "setup_required", "location": ...}``, the body every
otp-pro adapter gives. Requests of signed-out visitors (no Django login, no otp-pro login) pass
without a database query.
It also serves the flow's one page outside ``otp_pro_django.urls``: the magic-link landing
(``providers.magic_links.path``), and puts the request's visit on ``request.otp_pro``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.functional import SimpleLazyObject

from otp_pro.errors import StorageError
from otp_pro.web.flow.routes import MAGIC_LINK
from otp_pro.web.flow.state import K_MEMBER

from . import adapter, logins


class OtpProMiddleware:
    """The gate: pass, or send the member through the second step first (see the module docstring)."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        if not hasattr(request, "user") or not hasattr(request, "session"):
            raise ImproperlyConfigured("otp_pro_django.middleware.OtpProMiddleware needs SessionMiddleware and "
                                       "AuthenticationMiddleware before it in MIDDLEWARE")
        answer = gate(request)
        if answer is not None:
            return answer
        return self.get_response(request)


def gate(request: Any) -> Any | None:
    """None to let ``request`` through, else the flow's answer (a redirect, a 401, the magic-link landing)."""
    request.otp_pro = SimpleLazyObject(lambda: adapter.visit(request))
    if logins.signed_in_user(request) is None and request.session.get(K_MEMBER) is None:
        return None
    try:
        logins.ensure_login(request)
        v = adapter.visit(request)
        flow = v.flow
        if flow.magic_link_path and request.path_info.rstrip("/") == flow.magic_link_path.rstrip("/"):
            return adapter.dispatch(request, MAGIC_LINK, {})
        answer = flow.gate(v)
    except StorageError as error:
        v = adapter.visit(request)
        return adapter.to_response(v.flow.storage_failed(v, error), v)
    return adapter.to_response(answer, v) if answer is not None else None
