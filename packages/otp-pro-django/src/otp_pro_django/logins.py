"""A Django login handed to the flow: every path that signs a user in owes the second step.

Any view that calls ``django.contrib.auth.login()`` (the admin's, allauth's, the
site's own, ``Client.force_login``) sends ``user_logged_in``; :func:`start_login`
hands the member to the flow's login (:func:`otp_pro.web.flow.login`): a new
login in the session, not verified, the first code sent when one is due. A
session signed in to Django without an otp-pro login for that user (made before
the app was installed, or by code that bypassed ``login()``) is handed over on
its next request (:func:`ensure_login`), without a code sent; a session whose
Django login is gone loses its otp-pro keys.
"""

from __future__ import annotations

import logging
from typing import Any

from otp_pro.errors import StorageError
from otp_pro.web.flow import login, logout
from otp_pro.web.flow.state import K_MEMBER, safe_next

from . import adapter
from .members import member_for

log = logging.getLogger("otp_pro_django")


def signed_in_user(request: Any) -> Any | None:
    """The request's authenticated Django user, or None."""
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def start_login(request: Any, user: Any, *, send: bool = True) -> None:
    """Start a new otp-pro login for ``user`` (see the module docstring); ``next`` is the login form's own."""
    adapter.forget_visit(request)
    v = adapter.visit(request)
    wanted = request.POST.get("next") if request.method == "POST" else None
    wanted = wanted or request.GET.get("next")
    try:
        login(v, member_for(user), next=safe_next(wanted, v.flow.home_url), send=send)
    except StorageError as exc:
        # The login itself stands; the verify page sends the code (and says what failed) once the
        # database answers again. The session holds the new login already, so the gate still asks.
        log.warning("otp-pro: the first code of a login could not be sent: %s", exc)


def ensure_login(request: Any) -> None:
    """Match the session's otp-pro login to its Django login (see the module docstring)."""
    user = signed_in_user(request)
    session = request.session
    if user is None:
        if any(key.startswith(adapter.KEY_PREFIX) for key in session.keys()):
            logout(adapter.visit(request))
            adapter.forget_visit(request)
        return
    if session.get(K_MEMBER) != str(user.pk):
        start_login(request, user, send=False)
