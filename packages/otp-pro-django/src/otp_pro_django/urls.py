"""``path("mfa/", include("otp_pro_django.urls"))``: every route of the flow's route table, and its static files.

One loop over :data:`otp_pro.web.flow.routes.ROUTES` (names ``otp_pro:verify``, ``otp_pro:settings``, ...);
each view maps the request onto the flow (:func:`otp_pro_django.adapter.dispatch`). The views are exempt
from ``CsrfViewMiddleware`` only to run Django's same check themselves, after handing it the token under
Django's name (the flow's forms call the field ``csrf_token``): a POST without Django's token is refused.
Mount them where ``OTP_PRO_URL_PREFIX`` says (``/mfa`` by default): the gate's redirects are built from it.
With ``OTP_PRO_OPERATOR_PERMISSION`` set, the operator console's routes (``otp_pro:operator_members``, ...)
are mounted too, under ``<prefix>/operator/``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.urls import URLPattern, path
from django.views.decorators.csrf import csrf_exempt

from otp_pro.web.flow import operator as console
from otp_pro.web.flow.routes import ROUTES

from . import adapter, conf
from .static import static_file

app_name = "otp_pro"


def _view(name: str) -> Callable[..., Any]:
    @csrf_exempt
    def view(request: Any, **params: str) -> Any:
        return adapter.dispatch(request, name, params)

    view.__name__ = view.__qualname__ = f"otp_pro_{name}"
    return view


def _pattern(route_path: str) -> str:
    # The flow writes parameters as <name>: Django's path() reads them as <str:name>, a segment without "/".
    return re.sub(r"<([A-Za-z_][A-Za-z0-9_]*)>", r"<str:\1>", route_path.lstrip("/"))


#: The operator console's routes join the table when ``OTP_PRO_OPERATOR_PERMISSION`` names who may use it.
_TABLE = (*ROUTES, *console.ROUTES) if conf.operator_permission() else ROUTES

urlpatterns: list[URLPattern] = [
    *(path(_pattern(route.path), _view(route.name), name=route.name) for route in _TABLE if route.prefixed),
    path("static/<str:filename>", static_file, name="static"),
]
