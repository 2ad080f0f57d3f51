"""The flow layer: the pages and the JSON API of the second step, written once, with no framework in it.

:class:`Flow` holds a site's options and its route table; an adapter (``otp_pro_flask``,
``otp_pro_django``, ...) fills a :class:`Request`, supplies a :class:`Session`, and turns the
:class:`Page`, :class:`Redirect` or :class:`Json` a handler answers into its framework's response.
:mod:`.interface` describes the contract step by step.

The modules: :mod:`.interface` (the request, session, responses and routes), :mod:`.engine`
(``Flow``: dispatch, the gate, step-up, rendering), :mod:`.visit` (one request: member, status,
CSRF token, messages), :mod:`.routes` (the route table), :mod:`.login` (the login hand-off),
:mod:`.signin` (verify, send, the magic-link landing), :mod:`.setup_pages`, :mod:`.settings_pages`,
:mod:`.api` (the JSON endpoints) and :mod:`.openapi` (their document), :mod:`.codes` (sending and
checking codes), :mod:`.outcome`, :mod:`.state` (the session keys), :mod:`.security` (CSRF, security
headers), :mod:`.inputs` (reading bodies and path segments safely), :mod:`.texts` (what members read),
:mod:`.render` (the default Jinja2 renderer) and :mod:`.operator` (the operator console, mounted when the
site names its operators).
"""

from __future__ import annotations

from .codes import delivery, send_code, verify_code
from .engine import Flow
from .first_factor import buttons_html as first_factor_html
from .first_factor import sign_in as sign_in_first_factor
from .inputs import MAX_JSON_BYTES, InputError
from .interface import (
    MAX_BODY_BYTES,
    Answer,
    Cookie,
    Download,
    Handler,
    Json,
    Page,
    Redirect,
    Renderer,
    Request,
    Route,
    Session,
)
from .login import login, logout
from .outcome import Outcome, lock_minutes
from .security import CSRF_FIELD, CSRF_HEADER, SECURITY_HEADERS, CsrfError, check_csrf, csrf_ok, csrf_token
from .state import DEVICE_COOKIE, safe_next
from .texts import CSRF_FAILED_TEXT, REASON_TEXT, STORAGE_FAILED_TEXT
from .visit import Visit

__all__ = [
    "CSRF_FAILED_TEXT",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "DEVICE_COOKIE",
    "MAX_BODY_BYTES",
    "MAX_JSON_BYTES",
    "REASON_TEXT",
    "SECURITY_HEADERS",
    "STORAGE_FAILED_TEXT",
    "Answer",
    "Cookie",
    "CsrfError",
    "Download",
    "Flow",
    "Handler",
    "InputError",
    "Json",
    "Outcome",
    "Page",
    "Redirect",
    "Renderer",
    "Request",
    "Route",
    "Session",
    "Visit",
    "check_csrf",
    "csrf_ok",
    "csrf_token",
    "delivery",
    "first_factor_html",
    "lock_minutes",
    "login",
    "logout",
    "safe_next",
    "send_code",
    "sign_in_first_factor",
    "verify_code",
]
