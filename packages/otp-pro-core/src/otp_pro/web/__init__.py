"""The web layer: a pure verification gate, a WSGI middleware around it, and the framework-neutral flow layer.

* :mod:`otp_pro.web.gate`: :func:`decide` answers, for a request's session facts
  and path, pass / redirect to verify / redirect to forced setup / pass with a
  "set up soon" notice. No I/O, no framework.
* :mod:`otp_pro.web.wsgi`: :class:`OtpProMiddleware` wraps any WSGI app (Django,
  Pyramid, Bottle, ...) with the gate.
* :mod:`otp_pro.web.flow`: ``Flow``, the pages, the JSON API, step-up and the
  login hand-off written once against a small request / session / response
  interface; the adapters (``otp_pro_flask``, ``otp_pro_django``) map their
  framework onto it. The Jinja2 templates and static files sit beside it.
"""

from __future__ import annotations

from .gate import (
    DEFAULT_ALLOW,
    NOTICE,
    PASS,
    SETUP,
    VERIFY,
    Decision,
    GateConfig,
    SessionFacts,
    decide,
    is_allowed,
    normalize_path,
)
from .wsgi import OtpProMiddleware

__all__ = [
    "DEFAULT_ALLOW",
    "NOTICE",
    "PASS",
    "SETUP",
    "VERIFY",
    "Decision",
    "GateConfig",
    "OtpProMiddleware",
    "SessionFacts",
    "decide",
    "is_allowed",
    "normalize_path",
]
