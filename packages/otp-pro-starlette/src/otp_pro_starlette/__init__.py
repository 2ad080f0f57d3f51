"""otp-pro in Starlette and FastAPI: the second step's pages, JSON API, gate, CSRF and step-up over ASGI.

::

    from otp_pro_starlette import OtpProStarlette, recently_verified, require_verified

    otp_web = OtpProStarlette(otp, load_member=load_member, check_password=check_password)
    otp_web.install(app)                                   # pages at /otp, the gate on every route
    app.add_middleware(SessionMiddleware, secret_key=...)  # after install: the session wraps the gate

    @app.post("/login")
    async def login(request: Request):
        user = ...  # the site's own password check
        return RedirectResponse(await otp_web.login(request, member_for(user)), status_code=303)

    @app.post("/account/delete", dependencies=[Depends(recently_verified(max_age=300))])
    async def delete_account(): ...

The core is synchronous; every call into it runs in anyio's worker threads, so a slow SMTP or SMS send
never holds up the other requests of the process.

The modules: :mod:`.extension` (``OtpProStarlette``: options, the facade), :mod:`.adapter` (ASGI's
request, session and responses onto the flow layer, and the worker threads), :mod:`.middleware` (the
gate and the CSRF rule), :mod:`.routing` (the flow's routes as a Starlette router), :mod:`.dependencies`
(``require_verified``, ``recently_verified``) and :mod:`.sessions` (server-side sessions with a real
rotation).
"""

from __future__ import annotations

from otp_pro.web.flow import CSRF_FIELD, CSRF_HEADER, SECURITY_HEADERS

from .dependencies import SecondStepRequired, recently_verified, require_verified
from .extension import OtpProStarlette
from .middleware import OtpProMiddleware
from .sessions import ServerSessionMiddleware, SqliteSessionStore

__all__ = ["CSRF_FIELD", "CSRF_HEADER", "SECURITY_HEADERS", "OtpProMiddleware", "OtpProStarlette",
           "SecondStepRequired", "ServerSessionMiddleware", "SqliteSessionStore", "recently_verified",
           "require_verified"]
