"""otp-pro for Django: a second sign-in step for every login path, the admin included.

Fifteen lines in a new project (docs/web-django.md)::

    INSTALLED_APPS += ["otp_pro_django"]
    MIDDLEWARE += ["otp_pro_django.middleware.OtpProMiddleware"]   # after AuthenticationMiddleware
    OTP_PRO = {"secret_key": ..., "site_name": ...}                # the keys of otp-pro.toml
    urlpatterns += [path("mfa/", include("otp_pro_django.urls"))]

The map: :mod:`.conf` (settings), :mod:`.database` (Django's database as a SQLAlchemy
URL), :mod:`.instance` (the process's one ``OtpPro``), :mod:`.schema` and
``migrations/`` (otp-pro's tables under ``manage.py migrate``), :mod:`.members`
(users as members, and the member lookup of the CLI),
:mod:`.logins` (every Django login handed to the flow), :mod:`.adapter` (requests, the
session, CSRF and responses mapped onto :mod:`otp_pro.web.flow`), :mod:`.urls` (the flow's
route table mounted), :mod:`.render` (the pages in the site's base template),
:mod:`.middleware` (the gate), :mod:`.decorators` (``otp_required``, ``recently_verified``),
:mod:`.static` (the flow's static files), :mod:`.checks` (system checks) and
``management/commands/otp_pro.py`` (``manage.py otp_pro``).

Importing this package imports neither Django's models nor the core's database
layer: the names below are loaded on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "get_otp": "instance",
    "close_otp": "instance",
    "member_for": "members",
    "OtpProMiddleware": "middleware",
    "get_flow": "adapter",
    "otp_required": "decorators",
    "recently_verified": "decorators",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'otp_pro_django' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = ["OtpProMiddleware", "__version__", "close_otp", "get_flow", "get_otp", "member_for", "otp_required",
           "recently_verified"]
