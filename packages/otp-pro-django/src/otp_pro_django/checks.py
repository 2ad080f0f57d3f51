"""System checks (``manage.py check``, and before ``runserver`` and ``migrate``): the wiring mistakes that would
leave a login path ungated, caught before the site serves a request."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

MIDDLEWARE = "otp_pro_django.middleware.OtpProMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"


@checks.register(checks.Tags.security)
def check_middleware(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The gate is in ``MIDDLEWARE``, after ``AuthenticationMiddleware``."""
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    if MIDDLEWARE not in middleware:
        return [checks.Error(f"{MIDDLEWARE} is not in MIDDLEWARE: no login is asked for its second step",
                             hint=f"add it to MIDDLEWARE after {AUTH_MIDDLEWARE}", id="otp_pro_django.E001")]
    auth = [i for i, name in enumerate(middleware) if name.endswith(".AuthenticationMiddleware")]
    if not auth or auth[0] > middleware.index(MIDDLEWARE):
        return [checks.Error(f"{MIDDLEWARE} must come after {AUTH_MIDDLEWARE} in MIDDLEWARE",
                             hint="it reads request.user", id="otp_pro_django.E002")]
    return []


@checks.register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``OTP_PRO`` validates (every problem listed), without connecting to the database."""
    from django.core.exceptions import ImproperlyConfigured

    from otp_pro.errors import ConfigurationError

    from . import conf

    try:
        conf.otp_settings()
        conf.member_function()
        conf.phone_attribute()
        conf.url_prefix()
        conf.extra_allow()
        conf.operator_permission()
        conf.login_backend()
    except ConfigurationError as exc:
        return [checks.Error(f"OTP_PRO: {problem}", id="otp_pro_django.E003") for problem in exc.problems or
                [str(exc)]]
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="otp_pro_django.E004")]
    return []


@checks.register(checks.Tags.urls)
def check_urls(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The pages are included where ``OTP_PRO_URL_PREFIX`` says: the gate's redirects lead there."""
    from django.core.exceptions import ImproperlyConfigured
    from django.urls import NoReverseMatch, get_script_prefix, reverse

    from . import conf

    try:
        prefix = conf.url_prefix()
        verify = reverse("otp_pro:verify")
    except NoReverseMatch:
        return [checks.Warning("otp_pro_django.urls is not included: the gate would send members to pages that "
                               "do not exist", hint='add path("mfa/", include("otp_pro_django.urls")) to urlpatterns',
                               id="otp_pro_django.W001")]
    except ImproperlyConfigured:
        return []  # reported by check_settings
    path = "/" + verify[len(get_script_prefix()):]
    if path != f"{prefix}/verify":
        return [checks.Error(f"otp_pro_django.urls is included at {path.rsplit('/verify', 1)[0] or '/'}, but "
                             f"OTP_PRO_URL_PREFIX is {prefix!r}: the gate's redirects would miss the pages",
                             hint="include the URLs at the prefix, or set OTP_PRO_URL_PREFIX to where they are",
                             id="otp_pro_django.E005")]
    return []
