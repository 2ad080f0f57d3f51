"""A Django login as otp-pro sees it: the markers ``user_logged_in`` leaves and the gate's facts for a request.

Any view that calls ``django.contrib.auth.login()`` (the admin's, allauth's, the
site's own, ``Client.force_login``) sends ``user_logged_in``; the receiver in
:mod:`.apps` starts a new otp-pro login in the session, so its second step is
owed. A session that is signed in to Django but carries no otp-pro login for
that user (made before the app was installed, or by code that bypassed
``login()``) is treated the same way on its next request: started, not verified.
"""

from __future__ import annotations

import secrets
from typing import Any

from otp_pro.member import Member
from otp_pro.web.gate import SessionFacts

from .instance import get_otp
from .members import member_for

# The session keys: the flow layer's names, so the pages read what the login wrote.
K_MEMBER = "otp_pro_member"
K_LOGIN = "otp_pro_login"
K_VERIFIED = "otp_pro_verified"
K_BINDING = "otp_pro_binding"
K_PREFIX = "otp_pro_"

#: Per-request cache on the HttpRequest: the member and its status are looked up once.
REQUEST_MEMBER = "_otp_pro_member"
REQUEST_STATUS = "_otp_pro_status"


def start_login(request: Any, user: Any) -> None:
    """Start a new otp-pro login for ``user`` in ``request.session``: nothing of an earlier one is kept.

    Django's ``login()`` has already given the session a new key; this drops every ``otp_pro_*`` key
    left from before (a verified marker above all) and writes fresh markers.
    """
    session = request.session
    for key in [k for k in session.keys() if k.startswith(K_PREFIX)]:
        del session[key]
    session[K_MEMBER] = str(user.pk)
    session[K_LOGIN] = secrets.token_urlsafe(24)
    session[K_BINDING] = secrets.token_urlsafe(32)
    for attr in (REQUEST_MEMBER, REQUEST_STATUS):
        request.__dict__.pop(attr, None)


def signed_in_user(request: Any) -> Any | None:
    """The request's authenticated Django user, or None."""
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def current_member(request: Any) -> Member | None:
    """The signed-in member of this request (cached on the request), or None."""
    if REQUEST_MEMBER in request.__dict__:
        cached: Member | None = request.__dict__[REQUEST_MEMBER]
        return cached
    user = signed_in_user(request)
    member = member_for(user) if user is not None else None
    request.__dict__[REQUEST_MEMBER] = member
    return member


def ensure_login(request: Any) -> None:
    """Start an otp-pro login when the session is signed in to Django without one for its user."""
    user = signed_in_user(request)
    if user is not None and request.session.get(K_MEMBER) != str(user.pk):
        start_login(request, user)


def is_verified(request: Any) -> bool:
    """Whether this login passed the second step (both markers real and equal: never ``None == None``)."""
    session = request.session
    return SessionFacts.is_verified_login(session.get(K_VERIFIED), session.get(K_LOGIN))


def facts(request: Any) -> SessionFacts:
    """The gate's facts for ``request``."""
    member = current_member(request)
    if member is None:
        return SessionFacts()
    if REQUEST_STATUS not in request.__dict__:
        request.__dict__[REQUEST_STATUS] = get_otp().status(member)
    return SessionFacts.from_status(request.__dict__[REQUEST_STATUS], verified=is_verified(request))
