"""``OtpProFlask``: the flow layer's pages, JSON endpoints and gate in a Flask application.

::

    from otp_pro_flask import OtpProFlask

    otp_web = OtpProFlask(app, otp, load_member=load_member, check_password=check_password)

    @app.post("/login")
    def login():
        user = ...  # the site's own password check
        return redirect(otp_web.login(member_for(user), next=request.args.get("next")))

``load_member(member_id) -> Member | None`` rebuilds the member of a session;
``check_password(member, password) -> bool`` is asked before any change of MFA
settings (with a fresh one-time code as well). ``login(member)`` rotates the
session (no session fixation), sends the first code when the member's channel
delivers one, and answers where to send the browser next: the verify page, the
forced setup page or ``next``. ``logout()`` clears the session.
``@otp_web.recently_verified(max_age=300)`` guards a sensitive view of the site
with a fresh second step.

The modules: :mod:`.extension` (``OtpProFlask``: options, the facade),
:mod:`.adapter` (Flask's request, session and responses onto the flow layer)
and :mod:`.wiring` (the blueprint, request hooks, template context, error pages).
"""

from __future__ import annotations

from otp_pro.web.flow import (
           CSRF_FIELD,
           CSRF_HEADER,
           DEVICE_COOKIE,
           REASON_TEXT,
           SECURITY_HEADERS,
           STORAGE_FAILED_TEXT,
           CsrfError,
           Outcome,
           lock_minutes,
           safe_next,
)
from otp_pro.web.flow.state import (
           K_ATTEMPTS,
           K_BINDING,
           K_CSRF,
           K_LOGIN,
           K_MEMBER,
           K_NEXT,
           K_REAUTH,
           K_SENT,
           K_SETUP,
           K_VERIFIED,
)

from .extension import OtpProFlask

__all__ = ["CSRF_FIELD", "CSRF_HEADER", "DEVICE_COOKIE", "K_ATTEMPTS", "K_BINDING", "K_CSRF", "K_LOGIN", "K_MEMBER",
           "K_NEXT", "K_REAUTH", "K_SENT", "K_SETUP", "K_VERIFIED", "REASON_TEXT", "SECURITY_HEADERS",
           "STORAGE_FAILED_TEXT", "CsrfError", "OtpProFlask", "Outcome", "lock_minutes", "safe_next"]
