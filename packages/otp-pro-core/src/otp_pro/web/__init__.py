"""The web layer: a pure verification gate, a WSGI middleware around it, and a Flask extension.

* :mod:`otp_pro.web.gate`: :func:`decide` answers, for a request's session facts
  and path, pass / redirect to verify / redirect to forced setup / pass with a
  "set up soon" notice. No I/O, no framework.
* :mod:`otp_pro.web.wsgi`: :class:`OtpProMiddleware` wraps any WSGI app (Django,
  Pyramid, Bottle, ...) with the gate.
* :mod:`otp_pro.web.flask`: ``OtpProFlask``, the Flask extension with the views,
  JSON endpoints and sample templates (needs the ``flask`` extra).
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
