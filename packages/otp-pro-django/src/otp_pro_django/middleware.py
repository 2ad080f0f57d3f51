"""``OtpProMiddleware``: the verification gate in front of every view of the site, the admin included.

Place it after Django's ``AuthenticationMiddleware`` (a system check says so when it
is not). For a signed-in user whose second step is owed it answers a ``303`` to the
verify page, or to forced setup, carrying the requested address as ``?next=``; an
AJAX/JSON request gets ``401`` with ``{"error": "verification_required" |
"setup_required", "location": ...}``, the body every otp-pro adapter gives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import NoReverseMatch, get_script_prefix, reverse

from otp_pro.web.gate import GateConfig, decide, default_allow
from otp_pro.web.wsgi import REDIRECT_HEADERS, wants_json

from . import conf, logins

_config: GateConfig | None = None


def gate_config() -> GateConfig:
    """The gate's paths: the pages under ``OTP_PRO_URL_PREFIX``, the login and logout views, static and media."""
    global _config
    if _config is None:
        prefix = conf.url_prefix()
        extra = [*_own_paths(), *conf.extra_allow()]
        allow = default_allow(prefix, login=_path(settings.LOGIN_URL) or "/accounts/login",
                              logout=_reverse("logout") or "/accounts/logout")
        _config = GateConfig(verify_path=f"{prefix}/verify", setup_path=f"{prefix}/setup",
                             allow=tuple(dict.fromkeys([*allow, *extra])))
    return _config


def reset_gate_config() -> None:
    """Forget the computed paths (after a settings change in tests)."""
    global _config
    _config = None


def _own_paths() -> list[str]:
    # The admin's login and logout, and the static and media files: never behind a second step.
    paths = [_reverse("admin:login"), _reverse("admin:logout"), _path(getattr(settings, "STATIC_URL", None)),
             _path(getattr(settings, "MEDIA_URL", None))]
    return [p for p in paths if p and p != "/"]


def _reverse(name: str) -> str | None:
    try:
        return _path(reverse(name))
    except NoReverseMatch:
        return None


def _path(url: object) -> str | None:
    # Paths under the script prefix, as request.path_info shows them; a full URL (a CDN) is not a path here.
    if not isinstance(url, str) or not url or "://" in url:
        return None
    url = url if url.startswith("/") else "/" + url
    prefix = get_script_prefix()
    if prefix != "/" and url.startswith(prefix):
        url = "/" + url[len(prefix):]
    return url.rstrip("/") or "/"


class OtpProMiddleware:
    """The gate: pass, or send the member through the second step first (see the module docstring)."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        answer = gate(request)
        return answer if answer is not None else self.get_response(request)


def gate(request: Any) -> HttpResponse | None:
    """None to let ``request`` through, else the redirect (or the 401 JSON answer) the gate decided."""
    if not hasattr(request, "user") or not hasattr(request, "session"):
        raise ImproperlyConfigured("otp_pro_django.middleware.OtpProMiddleware needs SessionMiddleware and "
                                   "AuthenticationMiddleware before it in MIDDLEWARE")
    if logins.signed_in_user(request) is None:
        return None
    logins.ensure_login(request)
    decision = decide(logins.facts(request), request.path_info, gate_config(),
                      query=request.META.get("QUERY_STRING", ""))
    request.otp_pro_decision = decision
    if not decision.redirects or decision.location is None:
        return None
    location = get_script_prefix().rstrip("/") + decision.location
    response: HttpResponse
    if wants_json(request.META):
        error = "setup_required" if decision.action == "setup" else "verification_required"
        response = JsonResponse({"error": error, "location": location}, status=401)
    else:
        response = HttpResponseRedirect(location, status=303)
    for name, value in REDIRECT_HEADERS:
        response[name] = value
    return response
