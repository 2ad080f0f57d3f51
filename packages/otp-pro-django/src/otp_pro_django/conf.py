"""The app's settings: ``OTP_PRO`` (the keys of ``otp-pro.toml``) and the adapter's own ``OTP_PRO_*`` options.

``OTP_PRO`` is validated by the core (:meth:`otp_pro.Settings.from_mapping`), every
problem named by its key, exactly as a settings file would be. Two keys get a
default of their own here: ``database_url`` is Django's database (:mod:`.database`),
and ``member_lookup`` names :func:`.members.lookup_member`, so the pages and
``manage.py otp_pro`` know the site's users. The adapter's options are separate
Django settings, so ``OTP_PRO`` stays a copy of a settings file:

==============================  ============================================================
``OTP_PRO_DATABASE_ALIAS``      the ``DATABASES`` entry otp-pro uses (``"default"``)
``OTP_PRO_MEMBER``              dotted path of ``f(user) -> otp_pro.Member``: replaces the
                                mapping of :mod:`.members`
``OTP_PRO_PHONE_ATTRIBUTE``     the user's attribute holding a phone number (``"phone"``;
                                dots follow relations: ``"profile.phone"``)
``OTP_PRO_BASE_TEMPLATE``       the site template the pages extend (``"base.html"``, else
                                the app's own minimal one)
``OTP_PRO_URL_PREFIX``          where ``otp_pro_django.urls`` is included (``"/mfa"``)
``OTP_PRO_HOME_URL``            where a member goes after the second step when nothing asked
                                for a page (``"/"``)
``OTP_PRO_GATE_ALLOW``          more paths the gate never blocks (the static and media URLs,
                                the logout view and the pages are allowed already)
``OTP_PRO_LOGIN_BACKEND``       the authentication backend ``auth.login`` records when a
                                passkey signs a user in without a password (the first of
                                ``AUTHENTICATION_BACKENDS``)
==============================  ============================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from otp_pro.settings import Settings

from .database import url_for_database

#: The core's ``member_lookup`` setting for a Django site, unless ``OTP_PRO`` names another function.
MEMBER_LOOKUP = "otp_pro_django.members:lookup_member"


def database_alias() -> str:
    """The ``DATABASES`` entry whose database holds otp-pro's tables (and runs its migration)."""
    alias = getattr(settings, "OTP_PRO_DATABASE_ALIAS", "default")
    if not isinstance(alias, str) or alias not in settings.DATABASES:
        raise ImproperlyConfigured(f"OTP_PRO_DATABASE_ALIAS must name an entry of DATABASES, got {alias!r}")
    return alias


def raw_settings() -> dict[str, Any]:
    """``settings.OTP_PRO`` as a new dict (an error unless it is a mapping)."""
    raw = getattr(settings, "OTP_PRO", None)
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(f"OTP_PRO must be a dict of otp-pro settings, not {type(raw).__name__}")
    return dict(raw)


def database_url(alias: str | None = None) -> str:
    """``OTP_PRO["database_url"]`` when set, else the URL of Django's database ``alias``."""
    explicit = raw_settings().get("database_url")
    if explicit is not None:
        return str(explicit)
    alias = alias or database_alias()
    return url_for_database(alias, settings.DATABASES[alias])


def otp_settings() -> Settings:
    """The validated otp-pro settings of this Django site (a :class:`~otp_pro.ConfigurationError` lists problems).

    Read when the :class:`~otp_pro.OtpPro` is made, not at import: Django's test runner renames the
    database before that, and the settings then name the test database.
    """
    raw = raw_settings()
    raw.setdefault("database_url", database_url())
    # Django's users as members for this site's OtpPro (the pages, manage.py otp_pro): see .members.
    raw.setdefault("member_lookup", MEMBER_LOOKUP)
    base_dir = getattr(settings, "BASE_DIR", None)
    # A relative SQLite path in OTP_PRO is taken from the project's folder, as a settings file's is from its own.
    return Settings.from_mapping(raw, base_dir=Path(base_dir) if base_dir else None, source="settings.OTP_PRO")


def member_function() -> Callable[[Any], Any] | None:
    """The ``OTP_PRO_MEMBER`` function (imported), or None for the default mapping."""
    path = getattr(settings, "OTP_PRO_MEMBER", None)
    if path is None:
        return None
    if callable(path):
        return path
    try:
        found = import_string(str(path))
    except ImportError as exc:
        raise ImproperlyConfigured(f"OTP_PRO_MEMBER: cannot import {path!r}: {exc}") from None
    if not callable(found):
        raise ImproperlyConfigured(f"OTP_PRO_MEMBER: {path!r} is not a function")
    return found


def phone_attribute() -> str:
    """The user's attribute (dotted through relations) that holds a phone number."""
    value = getattr(settings, "OTP_PRO_PHONE_ATTRIBUTE", "phone")
    if not isinstance(value, str) or not value or any(not part.isidentifier() for part in value.split(".")):
        raise ImproperlyConfigured(f"OTP_PRO_PHONE_ATTRIBUTE must be an attribute name such as 'phone' or "
                                   f"'profile.phone', got {value!r}")
    return value


def base_template() -> str:
    """The template the pages extend (``OTP_PRO_BASE_TEMPLATE``, default ``base.html``)."""
    value = getattr(settings, "OTP_PRO_BASE_TEMPLATE", "base.html")
    if not isinstance(value, str) or not value:
        raise ImproperlyConfigured(f"OTP_PRO_BASE_TEMPLATE must name a template, got {value!r}")
    return value


def url_prefix() -> str:
    """Where ``otp_pro_django.urls`` is included: ``/mfa`` unless ``OTP_PRO_URL_PREFIX`` says otherwise."""
    value = getattr(settings, "OTP_PRO_URL_PREFIX", "/mfa")
    if not isinstance(value, str) or not value.strip("/") or "?" in value or "#" in value:
        raise ImproperlyConfigured(f"OTP_PRO_URL_PREFIX must be a path such as '/mfa', got {value!r}")
    return "/" + value.strip("/")


def extra_allow() -> tuple[str, ...]:
    """``OTP_PRO_GATE_ALLOW``: more paths the gate passes."""
    value = getattr(settings, "OTP_PRO_GATE_ALLOW", ())
    if isinstance(value, str) or not all(isinstance(v, str) and v.startswith("/") for v in value):
        raise ImproperlyConfigured(f"OTP_PRO_GATE_ALLOW must be a list of paths starting with '/', got {value!r}")
    return tuple(value)


def home_url() -> str:
    """``OTP_PRO_HOME_URL``: where a member goes after the second step without a ``next`` (``/``)."""
    value = getattr(settings, "OTP_PRO_HOME_URL", "/")
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        raise ImproperlyConfigured(f"OTP_PRO_HOME_URL must be a path on this site such as '/', got {value!r}")
    return value


def operator_permission() -> str | None:
    """``OTP_PRO_OPERATOR_PERMISSION``: the Django permission (``"app_label.codename"``) that opens the operator
    console to an active staff user (superusers hold every permission); None (the default): not mounted."""
    value = getattr(settings, "OTP_PRO_OPERATOR_PERMISSION", None)
    if value is None:
        return None
    if not isinstance(value, str) or value.count(".") != 1 or not all(value.split(".")):
        raise ImproperlyConfigured(f"OTP_PRO_OPERATOR_PERMISSION must name a permission such as "
                                   f"'admin.view_logentry', got {value!r}")
    return value


def login_backend() -> str:
    """``OTP_PRO_LOGIN_BACKEND``: the backend recorded for a passwordless login (the first configured one)."""
    backends = list(getattr(settings, "AUTHENTICATION_BACKENDS", ()))
    value = getattr(settings, "OTP_PRO_LOGIN_BACKEND", None) or (backends[0] if backends else None)
    if not isinstance(value, str) or value not in backends:
        raise ImproperlyConfigured(f"OTP_PRO_LOGIN_BACKEND must name one of AUTHENTICATION_BACKENDS, got {value!r}")
    return value
