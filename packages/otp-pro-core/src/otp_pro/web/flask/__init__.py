"""``OtpProFlask``: the gate, views, JSON endpoints and sample templates for a Flask application.

Install with the ``flask`` extra (``pip install 'otp-pro-core[flask]'``)::

    from otp_pro.web.flask import OtpProFlask

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

The session holds the member id, a random *login id* made at each ``login()``,
and the login id the second step was passed for: a new login, another browser
or a cleared session asks again. Use a server-side session store (the demo site
has a small one) so that ``logout()`` really ends a session everywhere.

The modules: :mod:`.extension` (``OtpProFlask``: options, the login, the facade),
:mod:`.wiring` (blueprint, request hooks, error pages), :mod:`.views` (the
sign-in pages), :mod:`.setup_views` (setting up and adding a factor),
:mod:`.settings_views` (the member's factors and settings), :mod:`.rendering`
(what every page view shares), :mod:`.api` (the JSON endpoints), :mod:`.openapi` (their OpenAPI
document), :mod:`.inputs` (reading request
bodies and path segments safely), :mod:`.codes` (sending and checking
codes), :mod:`.outcome` (what an operation ended with), :mod:`.state` (the
session keys), :mod:`.security` (CSRF, security headers) and :mod:`.texts`
(what members read).
"""

from __future__ import annotations

from .extension import OtpProFlask
from .outcome import Outcome
from .outcome import lock_minutes as lock_minutes
from .security import CSRF_FIELD, CSRF_HEADER, SECURITY_HEADERS, CsrfError
from .state import DEVICE_COOKIE as DEVICE_COOKIE
from .state import K_ATTEMPTS as K_ATTEMPTS
from .state import K_BINDING as K_BINDING
from .state import K_CSRF as K_CSRF
from .state import K_LOGIN as K_LOGIN
from .state import K_MEMBER as K_MEMBER
from .state import K_NEXT as K_NEXT
from .state import K_REAUTH as K_REAUTH
from .state import K_SENT as K_SENT
from .state import K_SETUP as K_SETUP
from .state import K_VERIFIED as K_VERIFIED
from .state import safe_next
from .texts import REASON_TEXT as REASON_TEXT
from .texts import STORAGE_FAILED_TEXT as STORAGE_FAILED_TEXT

__all__ = ["CSRF_FIELD", "CSRF_HEADER", "SECURITY_HEADERS", "CsrfError", "OtpProFlask", "Outcome", "safe_next"]
