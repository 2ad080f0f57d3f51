"""Passkeys in Chromium on a Django project (otp-pro-django) served by ``manage.py runserver``.

The project is the Django adapter's startproject site (its ``startproject.py``), with passkeys turned on
for staff and a login page of the site's own (``django.contrib.auth.views.LoginView``) carrying
``{% otp_pro_first_factor %}``. The DevTools virtual authenticator (:mod:`passkeys`) registers a passkey at
the forced setup the admin's login leads to, answers the verify page, then signs the superuser in from the
site's login page without a password: the flow passes the second step and ``auth.login`` follows, so the
admin opens. The audit log is read with ``manage.py otp_pro``, as an operator would.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from passkeys import (
    credentials,
    refused_without_the_credential,
    register_passkey,
    relying_party,
    sign_in_with_passkey,
    with_authenticator,
)
from startproject import ADMIN_PASSWORD, PROJECT, Project, base_env, make_project, serve, stop
from test_browser import visible

from otp_pro.testing import Mailbox, free_port

pytest_plugins = ("test_browser",)

#: The site's choices for this test, after the lines otp-pro asks for: staff sign in with passkeys.
PASSKEY_SETTINGS = (
    "import json, os",
    'OTP_PRO["channels"] = ["email:code", "totp", "webauthn"]',
    'OTP_PRO["roles"]["staff"].update({"channels": ["webauthn"], "grace_days": 0})',
    'OTP_PRO["providers"]["webauthn"] = json.loads(os.environ["TEST_WEBAUTHN"])',
    'LOGIN_URL = "/accounts/login/"',
    'TEMPLATES[0]["DIRS"] = [BASE_DIR / "templates"]',
)
PASSKEY_URLS = ('urlpatterns += [path("accounts/", include("django.contrib.auth.urls"))]',)
#: The site's login page: Django's form, and the passkey button under it.
LOGIN_TEMPLATE = """{% load otp_pro %}<!doctype html>
<html lang="en"><head><title>Sign in</title></head><body><main>
<h1>Sign in</h1>
<form method="post">{% csrf_token %}{{ form.as_p }}<input type="hidden" name="next" value="{{ next }}">
<button type="submit">Sign in</button></form>
{% otp_pro_first_factor %}
</main></body></html>
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, smtp_server: tuple[str, int, Mailbox]) -> Iterator[Project]:
    """The project, migrated, with a superuser ``admin``, served on ``http://localhost:<port>``."""
    port = free_port()
    origin = f"http://localhost:{port}"
    env = base_env({"OTP_PRO_SECRET_KEY": "django-passkeys-secret-" + "k" * 32, "TEST_SMTP_PORT": str(smtp_server[1]),
                    "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD, "TEST_WEBAUTHN": json.dumps(relying_party(origin))})
    made = make_project(tmp_path_factory.mktemp("django-passkeys"), env, "sqlite")
    settings = made.folder / PROJECT / "settings.py"
    settings.write_text(settings.read_text() + "\n".join(PASSKEY_SETTINGS) + "\n")
    urls = made.folder / PROJECT / "urls.py"
    urls.write_text(urls.read_text() + "\n".join(PASSKEY_URLS) + "\n")
    (made.folder / "templates" / "registration").mkdir(parents=True)
    (made.folder / "templates" / "registration" / "login.html").write_text(LOGIN_TEMPLATE)
    made.manage("migrate", "--noinput")
    made.manage("createsuperuser", "--noinput", "--username", "admin", "--email", "admin@example.com")
    process = serve(made, made.folder / "runserver.log", port)
    made.base_url = origin
    try:
        yield made
    finally:
        stop(process)


def admin_password_step(page: Any, base: str) -> None:
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("input[type=submit]")


def sign_out(page: Any, base: str) -> None:
    page.goto(f"{base}/admin/")
    page.click("#logout-form button")
    page.wait_for_url(f"{base}/admin/logout/")


def audit(project: Project, *args: str) -> list[dict[str, Any]]:
    run = project.manage("otp_pro", "audit", "list", "--member", "1", "--json", *args)
    return list(json.loads(run.stdout))


def test_a_passkey_registered_at_setup_verifies_then_signs_in_to_django_without_a_password(
        site: Project, context: Any, shots: Any) -> None:
    base = site.base_url
    page, cdp, authenticator = with_authenticator(context)
    admin_password_step(page, base)
    page.wait_for_url(re.compile(re.escape(f"{base}/mfa/setup")))
    register_passkey(page, "This laptop")
    page.get_by_role("link", name="I saved them, continue").click()
    page.wait_for_url(f"{base}/admin/")
    shown = json.loads(site.manage("otp_pro", "members", "show", "1", "--json").stdout)
    assert [(f["kind"], f["label"]) for f in shown["factors"]] == [("webauthn", "This laptop")]

    # The second step with the passkey, after the admin's own login.
    sign_out(page, base)
    admin_password_step(page, base)
    page.wait_for_url(re.compile(re.escape(f"{base}/mfa/verify")))
    page.get_by_role("button", name="Use your passkey or security key").click()
    page.wait_for_url(f"{base}/admin/")

    # No password: the site's login page has the button; the admin opens, so Django's login happened too.
    sign_out(page, base)
    sign_in_with_passkey(page, f"{base}/accounts/login/?next=/admin/", f"{base}/admin/")
    assert page.get_by_text("Site administration").is_visible()
    [first] = [e for e in audit(site, "--kind", "verify_ok") if e["details"].get("first_factor")]
    assert first["channel"] == "webauthn"
    # One login, passed by the passkey: no second step asked for, no login event started after it.
    page.goto(f"{base}/mfa/settings")
    visible(page.locator("tr[data-kind=webauthn]"))
    assert credentials(cdp, authenticator)[0]["signCount"] >= 2

    # Signed out, with no credential for the site left: refused in the browser, Django's login not made.
    sign_out(page, base)
    shots(page, "django-login")
    refused_without_the_credential(page, cdp, authenticator, f"{base}/accounts/login/?next=/admin/")
    page.goto(f"{base}/admin/")
    page.wait_for_url(re.compile(re.escape(f"{base}/admin/login/")))
