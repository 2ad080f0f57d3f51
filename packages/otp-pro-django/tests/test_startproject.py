"""A new project, as ``django-admin startproject`` makes it, with otp-pro's lines added: counted, migrated, gated.

Django's test client against the project this process runs (the browser tests, on the same
project served by ``runserver``, are in ``test_browser.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from django_steps import (
    PASSWORD,
    admin_login,
    admin_logout,
    client,
    csrf,
    make_user,
    post,
    set_up_email,
    set_up_totp,
    totp_now,
)
from startproject import ADMIN_PASSWORD, PROJECT, SETTINGS_LINES, SITE_LINES, URLS_LINES

from otp_pro.testing import mailed_code

MAX_ADDED_LINES = 15


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


def test_the_project_adds_at_most_15_lines_to_what_startproject_makes(project, tmp_path):
    # A second, untouched startproject: every line of the test project that it lacks was added.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    subprocess.run([sys.executable, "-m", "django", "startproject", PROJECT, str(fresh)], check=True,
                   capture_output=True, timeout=120)
    added = []
    for name in ("settings.py", "urls.py"):
        original = _lines(fresh / PROJECT / name)
        ours = _lines(project.folder / PROJECT / name)
        # The generated SECRET_KEY differs between two projects; every other line is the same.
        added += [line for line in ours if line not in original and not line.startswith("SECRET_KEY")]
    database_lines = [line for line in added if "TEST_PG_" in line or line in ("import os",)
                      or line.startswith("DATABASES")]
    otp_pro_lines = [line for line in added if line not in database_lines]
    assert otp_pro_lines == [*SETTINGS_LINES, *URLS_LINES, *SITE_LINES]
    assert len(otp_pro_lines) <= MAX_ADDED_LINES, otp_pro_lines
    # The site's database (PostgreSQL run only) is the site's choice, not a line otp-pro asks for.
    assert project.backend == "postgresql" or database_lines == []


def test_manage_py_check_and_the_migration_are_clean(project):
    assert "no issues" in project.manage("check").stdout
    # migrate made otp-pro's tables at the core's newest revision: `db current` through manage.py says so.
    assert "up to date" in project.manage("otp_pro", "db", "current").stdout
    assert "No migrations to apply" in project.manage("migrate", "--noinput").stdout


def test_a_superuser_signing_in_through_the_admin_is_sent_to_setup_before_the_admin_answers(project):
    c = client()
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.get(username="admin")
    signed_in = admin_login(c, admin, password=ADMIN_PASSWORD)
    assert signed_in.status_code == 302 and signed_in["Location"] == "/admin/"
    for path in ("/admin/", "/admin/auth/user/", "/payout/"):
        refused = c.get(path)
        assert refused.status_code == 303, path
        assert refused["Location"].startswith("/mfa/setup?next=")
    # An AJAX call gets the body every adapter gives, not a redirect.
    ajax = c.get("/admin/", HTTP_ACCEPT="application/json")
    assert ajax.status_code == 401
    assert ajax.json() == {"error": "setup_required", "location": "/mfa/setup?next=%2Fadmin%2F"}
    page = c.get("/mfa/setup?next=%2Fadmin%2F")
    assert page.status_code == 200 and b"Set up two-step verification" in page.content
    # The page sits in a whole document (the app's base: startproject has no base.html) with Django's token.
    assert page.content.lstrip().startswith(b"<!doctype html>") and csrf(c) and b"csrf-token" in page.content


def test_email_setup_then_an_email_code_sign_in_through_the_admin(project, mailbox):
    c = client()
    user = make_user()
    admin_login(c, user)
    assert c.get("/admin/").status_code == 303
    set_up_email(c, user, mailbox)
    assert c.get("/admin/").status_code == 200
    admin_logout(c)

    mailbox.clear()
    admin_login(c, user)
    # The login itself sent the code (user_logged_in handed it to the flow's login); the admin waits.
    code = mailed_code(mailbox, user.email)
    gated = c.get("/admin/")
    assert gated.status_code == 303 and gated["Location"] == "/mfa/verify?next=%2Fadmin%2F"
    page = c.get(gated["Location"])
    assert page.status_code == 200 and b"Verify" in page.content
    wrong = post(c, "/mfa/verify", {"code": "000000" if code != "000000" else "111111"})
    assert wrong.status_code in (200, 400) and c.get("/admin/").status_code == 303
    passed = post(c, "/mfa/verify", {"code": code})
    assert passed.status_code == 303 and passed["Location"] == "/admin/"
    admin = c.get("/admin/")
    assert admin.status_code == 200 and b"Site administration" in admin.content


def test_totp_setup_then_an_authenticator_sign_in(project):
    c = client()
    user = make_user("totp")
    admin_login(c, user)
    seed = set_up_totp(c)
    assert c.get("/admin/").status_code == 200
    admin_logout(c)

    admin_login(c, user)
    gated = c.get("/admin/auth/group/")
    assert gated.status_code == 303 and gated["Location"].startswith("/mfa/verify")
    # The setup used this time step's code: a code is accepted once, so the sign-in takes the next one.
    passed = post(c, "/mfa/verify", {"code": totp_now(seed, later=True)})
    assert passed.status_code == 303, passed.content[:400]
    assert c.get("/admin/auth/group/").status_code == 200


def test_the_settings_page_lists_the_members_factors(project, mailbox):
    c = client()
    user = make_user("settings")
    admin_login(c, user)
    set_up_email(c, user, mailbox)
    page = c.get("/mfa/settings")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Security settings" in text and "Email" in text and "backup codes" in text.lower()
    assert 'name="csrf_token"' in text  # its forms carry Django's token under the flow's name


def test_step_up_on_a_decorated_view_asks_again_and_comes_back(project, mailbox):
    c = client()
    user = make_user("stepup")
    admin_login(c, user, next="/payout/")
    set_up_email(c, user, mailbox)
    fresh = c.get("/payout/")
    assert fresh.status_code == 200 and fresh.content == b"payout sent"
    time.sleep(2.5)  # the view's max_age is 2 seconds
    mailbox.clear()
    asked = c.get("/payout/")
    assert asked.status_code == 303 and asked["Location"].startswith("/mfa/verify")
    page = c.get(asked["Location"])
    assert page.status_code == 200
    sent = post(c, "/mfa/send", {"channel": "email:code"})
    assert sent.status_code == 303
    passed = post(c, "/mfa/verify", {"code": mailed_code(mailbox, user.email)})
    assert passed.status_code == 303 and passed["Location"] == "/payout/"
    assert c.get("/payout/").content == b"payout sent"


def test_a_post_without_djangos_token_is_refused_with_a_page_not_an_error(project):
    c = client()
    user = make_user("csrf")
    admin_login(c, user)
    refused = c.post("/mfa/setup", {"channel": "totp", "csrf_token": "forged-" + "x" * 40})
    assert refused.status_code == 403 and b"Please try again" in refused.content
    api = c.post("/mfa/api/send", json.dumps({}), content_type="application/json")
    assert api.status_code == 403 and api.json()["error"] == "csrf"
    # The same call with Django's token in the header the flow's script sends passes the check.
    ok = c.post("/mfa/api/send", json.dumps({}), content_type="application/json", HTTP_X_CSRF_TOKEN=csrf(c))
    assert ok.status_code != 403


def test_a_django_login_without_otp_pro_keys_is_still_asked_for_the_second_step(project, mailbox):
    # A session signed in to Django by code that never sent user_logged_in (or made before the app was
    # installed): no otp-pro marker at all. It must not pass for verified.
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    user = make_user("bypass")
    c = client()
    admin_login(c, user)
    set_up_email(c, user, mailbox)
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    planted = client()
    planted.cookies[settings.SESSION_COOKIE_NAME] = store.session_key
    gated = planted.get("/admin/")
    assert gated.status_code == 303 and gated["Location"].startswith("/mfa/verify")


def test_manage_py_otp_pro_sees_django_users_as_members(project):
    user = make_user("cli", first_name="Ada", last_name="Lovelace")
    from django.contrib.auth.models import Group

    group = Group.objects.create(name=f"auditors-{user.pk}")
    user.groups.add(group)
    shown = project.manage("otp_pro", "members", "show", str(user.pk))
    assert f"roles: {group.name}, staff, superuser" in shown.stdout, shown.stdout
    as_json = json.loads(project.manage("otp_pro", "members", "show", str(user.pk), "--json").stdout)
    assert as_json["member"]["email"] == user.email and as_json["member"]["name"] == "Ada Lovelace"
    unknown = project.manage("otp_pro", "members", "show", "no-such-user", check=False)
    assert unknown.returncode != 0 and "Traceback" not in unknown.stderr and "no-such-user" in unknown.stderr


def test_the_password_confirmation_of_the_settings_page_checks_the_django_password(project, mailbox):
    from otp_pro.web.flow.texts import WRONG_PASSWORD_TEXT

    c = client()
    user = make_user("reauth")
    admin_login(c, user)
    set_up_email(c, user, mailbox)
    mailbox.clear()
    post(c, "/mfa/send", {"channel": "email:code"})
    code = mailed_code(mailbox, user.email)
    wrong = post(c, "/mfa/settings/reauth", {"password": "not-" + PASSWORD, "code": code}, follow=True)
    assert WRONG_PASSWORD_TEXT.split(".")[0] in wrong.content.decode()
    right = post(c, "/mfa/settings/reauth", {"password": PASSWORD, "code": code}, follow=True)
    assert "Confirmed: you can change your settings" in right.content.decode()
