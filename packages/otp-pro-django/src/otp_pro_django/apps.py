"""The app's configuration: what it connects when Django starts.

* ``user_logged_in``: every login, through any view, starts an otp-pro login (:mod:`.logins`), except
  the one that follows "Sign in with a passkey" (the passkey answered the second step too);
* ``post_migrate``: ``manage.py migrate`` brings otp-pro's tables to the core's newest revision
  (:mod:`.schema`);
* ``setting_changed``: a test that overrides ``OTP_PRO*`` settings gets a fresh ``OtpPro``;
* the system checks of :mod:`.checks`;
* the admin's index and sidebar list the operator console for the staff who may open it (:mod:`.admin_link`).

Nothing here touches the database or builds the ``OtpPro``: that waits for the first use.
"""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class OtpProDjangoConfig(AppConfig):
    """``INSTALLED_APPS += ["otp_pro_django"]``."""

    name = "otp_pro_django"
    label = "otp_pro_django"
    verbose_name = "otp-pro two-step verification"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in
        from django.core.signals import setting_changed
        from django.db.models.signals import post_migrate

        from . import checks  # noqa: F401 - registers the system checks

        user_logged_in.connect(_logged_in, dispatch_uid="otp_pro_django.logged_in")
        post_migrate.connect(_migrated, sender=self, dispatch_uid="otp_pro_django.migrated")
        setting_changed.connect(_setting_changed, dispatch_uid="otp_pro_django.setting_changed")
        from django.apps import apps

        if apps.is_installed("django.contrib.admin"):
            from django.contrib import admin

            from .admin_link import link_console

            link_console(admin.site)


def _logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    # A login without a request (a test's or a script's authenticate-and-login) has no session to mark.
    if request is None or not hasattr(request, "session"):
        return
    from .logins import FIRST_FACTOR_LOGIN, start_login

    if request.__dict__.get(FIRST_FACTOR_LOGIN):
        return  # a passkey signed the member in: the flow's login, second step passed, stands

    start_login(request, user, send=True)


def _migrated(sender: Any, using: str, plan: Any = None, **kwargs: Any) -> None:
    from django.db import connections
    from django.db.migrations.recorder import MigrationRecorder

    from . import schema

    connection = connections[using]
    if not schema.is_otp_database(connection):
        return
    # Only once Django's own migration created the tables: after `migrate otp_pro_django zero` they stay gone.
    applied = MigrationRecorder(connection).applied_migrations()
    if ("otp_pro_django", "0001_otp_pro_schema") not in applied:
        return
    if schema.upgrade_if_behind(schema.url_of(connection)) is not None:
        from .instance import close_otp

        close_otp()


def _setting_changed(sender: Any, setting: str, **kwargs: Any) -> None:
    if setting.startswith("OTP_PRO") or setting in ("DATABASES", "LOGIN_URL", "STATIC_URL", "MEDIA_URL"):
        from .adapter import reset_flow
        from .instance import close_otp

        close_otp()
        reset_flow()
