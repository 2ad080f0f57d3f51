"""Decorators for the site's own views: ``otp_required`` and ``recently_verified`` (step-up).

``@otp_required``: the view answers only a member who passed the second step in this login (or
whose browser is a trusted device); a member without a second step is sent to set one up
(``if_configured=True`` lets them through instead), a signed-out visitor to ``LOGIN_URL``.

``@recently_verified(max_age=300)``: a sensitive action (a payout, an e-mail change) asks for a
fresh second step when the last one of this login is older than ``max_age`` seconds, even on a
trusted device, and comes back to the view afterwards (:meth:`otp_pro.web.flow.Flow.step_up`).

An AJAX request gets ``401`` with ``{"error": ..., "location": ...}`` instead of a redirect, as from
the gate.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse

from otp_pro.errors import StorageError

from . import adapter, logins

View = TypeVar("View", bound=Callable[..., Any])


def otp_required(view: View | None = None, *, if_configured: bool = False) -> Any:
    """Let the view answer only a verified member (see the module docstring). Use bare or called."""

    def decorate(func: View) -> View:
        @functools.wraps(func)
        def wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
            refusal = _otp_refusal(request, if_configured=if_configured)
            return refusal if refusal is not None else func(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate(view) if view is not None else decorate


def recently_verified(max_age: int = 300) -> Callable[[View], View]:
    """Ask for a fresh second step before the view when the last one is older than ``max_age`` seconds."""
    if not isinstance(max_age, int) or isinstance(max_age, bool) or max_age < 0:
        raise ValueError(f"max_age must be a number of seconds (0 or more), got {max_age!r}")

    def decorate(func: View) -> View:
        @functools.wraps(func)
        def wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
            if logins.signed_in_user(request) is None:
                return redirect_to_login(request.get_full_path())
            logins.ensure_login(request)
            v = adapter.visit(request)
            try:
                answer = v.flow.step_up(v, max_age)
            except StorageError as error:
                answer = v.flow.storage_failed(v, error)
            return adapter.to_response(answer, v) if answer is not None else func(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def _otp_refusal(request: Any, *, if_configured: bool) -> HttpResponse | None:
    if logins.signed_in_user(request) is None:
        return redirect_to_login(request.get_full_path())
    logins.ensure_login(request)
    v = adapter.visit(request)
    try:
        status = v.status()
        if status is None:
            return redirect_to_login(request.get_full_path())
        if not status.enrolled:
            return None if if_configured else _away(request, v.url("setup"), "setup_required")
        if v.is_verified() or v.is_trusted_device():
            return None
    except StorageError as error:
        return adapter.to_response(v.flow.storage_failed(v, error), v)
    return _away(request, v.url("verify"), "verification_required")


def _away(request: Any, page: str, error: str) -> HttpResponse:
    location = f"{page}?{urlencode({'next': request.get_full_path()}, quote_via=quote)}"
    if adapter.to_request(request).wants_json:
        return JsonResponse({"error": error, "location": location}, status=401)
    return HttpResponseRedirect(location, status=303)
