"""The demo site behind ``otp-pro demo``: a Flask app on 127.0.0.1 with an embedded SQLite file.

Demo members in different roles sign in with a password and meet each login
pattern; every installed channel is enabled in a safe mode: whatever any
transport would send (email, SMS through ``sms_twilio``, magic links) goes to
the ``outbox`` transport instead and is shown on the dev mailbox page
(``/mailbox``), and written as ``.eml`` files next to the database. Nothing
ever leaves the machine.

``create_app(database=..., base_url=...)`` builds the app (tests use it);
``serve(host, port, database)`` runs it on a real HTTP server and prints the URL
and the demo logins.

The modules: :mod:`.site` (``DemoSite``), :mod:`.server` (``start``, ``running``, ``serve``),
:mod:`.accounts` (the demo logins), :mod:`.otp` (the demo's OtpPro),
:mod:`.store` (members and keys), :mod:`.sessions` (server-side sessions),
:mod:`.pages` (the app and its pages) and :mod:`.logins` (the login patterns).
"""

from __future__ import annotations

from .accounts import ACCOUNTS, DemoAccount
from .server import running, serve, start
from .site import DemoSite, create_app

__all__ = ["ACCOUNTS", "DemoAccount", "DemoSite", "create_app", "running", "serve", "start"]
