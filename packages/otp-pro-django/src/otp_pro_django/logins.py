"""A Django login handed to the flow: every path that signs a user in owes the second step.

Any view that calls ``django.contrib.auth.login()`` (the admin's, allauth's, the
site's own, ``Client.force_login``) sends ``user_logged_in``; :func:`start_login`
hands the member to the flow's login (:func:`otp_pro.web.flow.login`): a new
login in the session, not verified, the first code sent when one is due. A
session signed in to Django without an otp-pro login for that user (made before
the app was installed, or by code that bypassed ``login()``) is handed over on
its next request (:func:`ensure_login`), without a code sent; a session whose
Django login is gone loses its otp-pro keys.

The other way round, :func:`first_factor_login`: when a factor alone proved the member ("Sign in with
a passkey"), the flow has signed them in, second step passed, and Django's ``auth.login`` follows,
without starting a new otp-pro login.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import auth

from otp_pro.errors import StorageError
from otp_pro.member import Member
from otp_pro.web.flow import Visit, login, logout
from otp_pro.web.flow.state import K_MEMBER, safe_next

from . import adapter, conf
from .members import member_for, user_for

#: Set on the request while :func:`first_factor_login` calls ``auth.login``: its ``user_logged_in``
#: must not start a new otp-pro login (the factor answered the second step too).
FIRST_FACTOR_LOGIN = "_otp_pro_first_factor_login"

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
        # Only a login is ended: a signed-out visitor's own keys (the challenge of "Sign in with a passkey",
        # a message for the login page) stay.
        if session.get(K_MEMBER) is not None:
            logout(adapter.visit(request))
            adapter.forget_visit(request)
        return
    if session.get(K_MEMBER) != str(user.pk):
        start_login(request, user, send=False)


def first_factor_login(v: Visit, member: Member) -> None:
    """The flow's ``on_first_factor``: log ``member``'s Django user in (``auth.login``, with
    ``OTP_PRO_LOGIN_BACKEND``), keeping the otp-pro login the flow has just made, second step passed.

    ``auth.login`` flushes a session that held another user's login: the flow's keys are put back into the
    new session, as they belong to this login. A user gone or made inactive since the flow loaded them is
    not logged in; the next request then ends the otp-pro login too (:func:`ensure_login`).
    """
    request = getattr(v, "django_request", None)
    user = user_for(member.id)
    if request is None or user is None:
        return
    kept = {key: request.session[key] for key in list(request.session.keys()) if key.startswith(adapter.KEY_PREFIX)}
    request.__dict__[FIRST_FACTOR_LOGIN] = True
    try:
        auth.login(request, user, backend=conf.login_backend())
    finally:
        request.__dict__.pop(FIRST_FACTOR_LOGIN, None)
    for key, value in kept.items():
        request.session[key] = value
