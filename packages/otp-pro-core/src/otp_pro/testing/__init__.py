"""Helpers for testing otp-pro and its plugins: the third-party authoring kit.

Installed with otp-pro-core, this package is a pytest plugin (entry point
``pytest11``; it needs the ``testing`` extra, i.e. pytest, and aiosmtpd for the
SMTP fixtures). pytest registers this module object, so every fixture and hook
of the kit is imported here. Its fixtures:

* ``clock``: a :class:`Clock` tests can move;
* ``smtp_server`` / ``mailbox``: a real SMTP server (aiosmtpd) on 127.0.0.1 and
  what it received, parsed with the standard library's ``email`` package;
  ``smtp_login_server``: one that requires a login;
* ``pg_url``: a PostgreSQL database made for the run, migrated, dropped at the
  end, or None when ``OTP_PRO_TEST_POSTGRES_URL`` is not set;
* ``backend``: a database URL, once on SQLite and once on PostgreSQL (skipped,
  saying why, without ``OTP_PRO_TEST_POSTGRES_URL``); ``sqlite_url``: SQLite only;
* ``otp``: an :class:`~otp_pro.OtpPro` on a fresh SQLite file, closed after the
  test; configure it by overriding ``otp_settings`` (a dict) and ``otp_plugins``
  (plugin objects passed as ``OtpPro(plugins=...)``);
* ``otp_factory``: ``otp_factory(settings, plugins=())`` builds more instances on the
  ``clock`` and closes every one when the test ends;
* ``make_member``: builds :class:`~otp_pro.Member` objects with unique ids;
* ``register_plugin``: registers a plugin object on an instance's plugin manager
  for one test and always unregisters it, even when the test fails.

Helpers for a test's steps: :func:`outbox_code` (the code the ``outbox``
transport holds), :func:`enrol` (set up ``outbox:code`` or ``totp`` for a
member), :func:`mailed_text` and :func:`mailed_code` (what the loopback SMTP
server received), :func:`page_csrf` (the CSRF token of an otp-pro page), :func:`fill_activity` (days of
generated sign-ins, deliveries and failures, for statistics),
:func:`settings_toml` (settings as a file for the CLI), :func:`free_port` and
:func:`tls_server_context` (for a fake provider), :func:`system_chromium`,
which opens the system's Chromium (Debian's ``chromium``) through Playwright for
browser tests, failing under CI and skipping elsewhere without it, and
:func:`blocking_violations`, the accessibility check every adapter's browser tests
run: axe-core's serious and critical violations on a page.

``DiscoveryContract`` checks that an installed distribution is found through
the ``otp_pro`` entry-point group and loaded by the core's plugin manager, that
both switches (``disable_plugins`` and ``OTP_PRO_DISABLE_PLUGINS``) turn it off,
and that discovery in a fresh interpreter does not import ``lazy_imports``.
``TransportContract`` is the behaviour every transport owes the core
(registration, settings and redaction, recipients, availability, sending,
failure mapping, dry-run, no leaked secret); a transport's test module
subclasses it and points it at a real fake of its provider.
``FactorTypeContract`` is what every factor type that is not delivered owes the
core (registration and description, setup, each answer accepted once even when
raced, wrong answers counted toward the lockout, two factors of the type, the
secret sealed and never shown); a factor type's test module subclasses it and
says how to answer. ``EmailTransportContract`` is the transport contract already set up for the built-in
``email`` transport on a loopback SMTP server that checks the login, for
templating and payload plugins to run with themselves installed.

Loading the plugin is part of every pytest run where otp-pro-core is installed,
so what only some tests need (aiosmtpd, Playwright, the x509 machinery, the
CLI, the migrations) is imported inside the function that needs it.
"""

from __future__ import annotations

from ._activity import fill_activity
from ._axe import AxeReport, axe_source, blocking_violations
from ._browser import CHROMIUM_ARGS, in_ci, system_chromium, unavailable
from ._clock import Clock, clock
from ._databases import PG_ENV, PG_SKIP_REASON, backend, pg_url, sqlite_url, temporary_pg_database, truncate_all
from ._discovery import DiscoveryContract
from ._email_contract import EmailTransportContract
from ._factor_contract import FactorTypeContract
from ._instances import (
    TEST_SECRET_KEY,
    enrol,
    make_member,
    otp,
    otp_factory,
    otp_plugins,
    otp_settings,
    outbox_code,
)
from ._network import free_port, self_signed_certificate, tls_server_context
from ._pages import page_csrf
from ._registration import STARTUP_HOOKS, PluginRegistrar, register_plugin, registered_plugin
from ._smtp import (
    SMTP_PASSWORD,
    SMTP_USERNAME,
    Mailbox,
    mailbox,
    mailed_code,
    mailed_text,
    pytest_configure,
    smtp_login_server,
    smtp_server,
)
from ._spies import PERMANENT, SUCCESS, TRANSIENT, Received
from ._toml import settings_toml
from ._transport_contract import TransportContract

__all__ = [
    "CHROMIUM_ARGS",
    "PERMANENT",
    "PG_ENV",
    "PG_SKIP_REASON",
    "SMTP_PASSWORD",
    "SMTP_USERNAME",
    "STARTUP_HOOKS",
    "SUCCESS",
    "TEST_SECRET_KEY",
    "TRANSIENT",
    "AxeReport",
    "Clock",
    "DiscoveryContract",
    "EmailTransportContract",
    "FactorTypeContract",
    "Mailbox",
    "PluginRegistrar",
    "Received",
    "TransportContract",
    "axe_source",
    "backend",
    "blocking_violations",
    "clock",
    "enrol",
    "fill_activity",
    "free_port",
    "in_ci",
    "mailbox",
    "mailed_code",
    "mailed_text",
    "make_member",
    "otp",
    "otp_factory",
    "otp_plugins",
    "otp_settings",
    "outbox_code",
    "page_csrf",
    "pg_url",
    "pytest_configure",
    "register_plugin",
    "registered_plugin",
    "self_signed_certificate",
    "settings_toml",
    "smtp_login_server",
    "smtp_server",
    "sqlite_url",
    "system_chromium",
    "temporary_pg_database",
    "tls_server_context",
    "truncate_all",
    "unavailable",
]
