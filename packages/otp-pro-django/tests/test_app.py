"""The app's parts inside the project: users as members, the settings' checks, the site's base template,
decorators, trusted browsers, the migration backwards and forwards, ``call_command``."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django_steps import admin_login, client, make_user
from startproject import make_project

from otp_pro import Member


def test_the_member_lookup_is_the_sites_own_not_every_programs(project):
    # No otp_pro entry point: an OtpPro made elsewhere in this environment gets no Django lookup.
    from importlib import metadata

    from otp_pro_django import get_otp
    from otp_pro_django.conf import MEMBER_LOOKUP

    assert not [ep for ep in metadata.entry_points(group="otp_pro") if ep.value.startswith("otp_pro_django")]
    assert get_otp().settings.member_lookup == MEMBER_LOOKUP and get_otp().has_member_lookup


def phone_of(user):
    return Member(f"custom-{user.pk}", roles=["custom"], email=user.email)


def test_users_are_members_with_groups_flags_name_and_phone(project):
    from django.contrib.auth.models import Group

    from otp_pro_django.members import lookup_member, member_for

    user = make_user("member", superuser=False, first_name="Grace", last_name="Hopper")
    group = Group.objects.create(name=f"editors-{user.pk}")
    user.groups.add(group)
    member = member_for(user)
    assert member == Member(str(user.pk), roles=[group.name, "staff"], email=user.email, name="Grace Hopper")
    user.phone = "+41 79 123 45 67"  # the default OTP_PRO_PHONE_ATTRIBUTE
    assert member_for(user).fields == {"phone": "+41 79 123 45 67"}
    with override_settings(OTP_PRO_PHONE_ATTRIBUTE="profile.mobile"):
        assert member_for(user).fields == {}  # no profile: no phone, no error
    assert lookup_member(str(user.pk)) == member
    for unknown in ("999999", "not-a-number", "1" * 40, ""):
        assert lookup_member(unknown) is None
    user.is_active = False
    user.save()
    assert lookup_member(str(user.pk)) is None


def test_a_member_function_replaces_the_mapping(project):
    from otp_pro_django.members import member_for

    user = make_user("custom")
    with override_settings(OTP_PRO_MEMBER="test_app.phone_of"):
        assert member_for(user) == Member(f"custom-{user.pk}", roles=["custom"], email=user.email)
    from django.core.exceptions import ImproperlyConfigured

    with override_settings(OTP_PRO_MEMBER="test_app.no_such_function"), pytest.raises(ImproperlyConfigured):
        member_for(user)


def test_system_checks_catch_a_missing_or_misplaced_middleware_and_bad_settings(project):
    from django.conf import settings

    from otp_pro_django.checks import MIDDLEWARE, check_middleware, check_settings

    assert check_middleware() == [] and check_settings() == []
    without = [m for m in settings.MIDDLEWARE if m != MIDDLEWARE]
    with override_settings(MIDDLEWARE=without):
        assert [e.id for e in check_middleware()] == ["otp_pro_django.E001"]
    with override_settings(MIDDLEWARE=[MIDDLEWARE, *without]):
        assert [e.id for e in check_middleware()] == ["otp_pro_django.E002"]
    with override_settings(OTP_PRO={"mode": "sometimes", "code_length": 3}):
        errors = check_settings()
        assert {e.id for e in errors} == {"otp_pro_django.E003"}
        text = " ".join(e.msg for e in errors)
        assert "mode" in text and "code_length" in text
    with override_settings(OTP_PRO_PHONE_ATTRIBUTE="no spaces"):
        assert [e.id for e in check_settings()] == ["otp_pro_django.E004"]
    # Checked at start-up, not first met when a passkey signs someone in.
    with override_settings(OTP_PRO_LOGIN_BACKEND="site.backends.Missing"):
        errors = check_settings()
        assert [e.id for e in errors] == ["otp_pro_django.E004"] and "OTP_PRO_LOGIN_BACKEND" in errors[0].msg
    from otp_pro_django.checks import check_urls

    assert check_urls() == []
    with override_settings(OTP_PRO_URL_PREFIX="/two-step"):
        errors = check_urls()
        assert [e.id for e in errors] == ["otp_pro_django.E005"] and "/mfa" in errors[0].msg


def test_the_pages_extend_the_sites_base_template(project, tmp_path):
    from django.conf import settings

    (tmp_path / "site_base.html").write_text(
        "<!doctype html><title>{% block title %}{% endblock %}</title>"
        "<nav id='site-nav'>The site's own navigation</nav>{% block content %}{% endblock %}")
    templates = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    c = client()
    admin_login(c, make_user("layout"))
    with override_settings(TEMPLATES=templates, OTP_PRO_BASE_TEMPLATE="site_base.html"):
        page = c.get("/mfa/setup").content.decode()
    assert "The site's own navigation" in page and "Set up two-step verification" in page
    assert "<title>Set up two-step verification · Startproject</title>" in page


def test_the_json_api_answers_bad_input_with_400_never_500(project):
    c = client()
    admin_login(c, make_user("api"))
    from django_steps import csrf

    token = csrf(c)
    for body in ("{", "[]", '{"channel": 5}', "x" * 100):
        r = c.post("/mfa/api/send", body, content_type="application/json", HTTP_X_CSRF_TOKEN=token)
        assert r.status_code == 400, (body, r.status_code)
        assert r.json()["ok"] is False
    assert c.get("/mfa/static/otp_pro.css").status_code == 200
    assert c.get("/mfa/static/no-such.css").status_code == 404
    assert client().get("/mfa/static/..%2F..%2Fsettings.py").status_code == 404  # only the core's files, by name
    assert c.get("/mfa/settings/factors/x/remove").status_code == 405


def test_migrate_backwards_to_zero_removes_otp_pros_tables_and_forwards_makes_them(project, tmp_path):
    if project.backend != "sqlite":
        pytest.skip("the migration round trip runs on a project of its own, on SQLite")
    import sqlite3

    # A project of its own: copying the run's database file from this process would break SQLite's locks
    # on it (closing any descriptor of the file drops the process's POSIX locks).
    twin = make_project(tmp_path, project.env, "sqlite")
    twin.manage("migrate", "--noinput")

    def tables() -> set[str]:
        with sqlite3.connect(twin.folder / "db.sqlite3") as conn:
            names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return {name for name in names if name.startswith("otp_")}

    assert "otp_members" in tables() and "otp_pro_alembic_version" in tables()
    twin.manage("migrate", "otp_pro_django", "zero", "--noinput")
    assert tables() == set()
    assert "django_session" in {r[0] for r in sqlite3.connect(twin.folder / "db.sqlite3").execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    twin.manage("migrate", "--noinput")
    assert "otp_factors" in tables()
    assert "up to date" in twin.manage("otp_pro", "db", "current").stdout

    # A later otp-pro-core brings Alembic revisions the applied Django migration does not know: every
    # `migrate` brings the tables to the newest one (shown here by going one revision back first).
    from alembic import command
    from sqlalchemy import create_engine

    from otp_pro.storage import migrate

    engine = create_engine(f"sqlite:///{twin.folder / 'db.sqlite3'}")
    config = migrate.alembic_config()
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "-1")
        conn.commit()
    engine.dispose()
    assert "run `otp-pro db upgrade`" in twin.manage("otp_pro", "db", "current").stdout
    assert "No migrations to apply" in twin.manage("migrate", "--noinput").stdout
    assert "up to date" in twin.manage("otp_pro", "db", "current").stdout


def _request_of(c, user, path="/reports/"):
    """A request for ``path`` in the test client's session, as the middleware stack would hand it to a view."""
    from django.conf import settings
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import RequestFactory

    request = RequestFactory(HTTP_HOST="127.0.0.1").get(path)
    request.session = SessionStore(c.cookies[settings.SESSION_COOKIE_NAME].value)
    request.user = user
    return request


def test_otp_required_sends_to_setup_then_verify_and_lets_a_verified_member_through(project, mailbox):
    from django.http import HttpResponse
    from django_steps import admin_logout, post, set_up_email

    from otp_pro.testing import mailed_code
    from otp_pro_django import otp_required

    def view(request):
        return HttpResponse("reports")

    reports = otp_required(view)
    lenient = otp_required(if_configured=True)(view)
    user = make_user("required")
    c = client()
    admin_login(c, user)
    first = reports(_request_of(c, user))
    assert first.status_code == 303 and first["Location"] == "/mfa/setup?next=%2Freports%2F"
    assert lenient(_request_of(c, user)).content == b"reports"  # no second step set up: let through
    set_up_email(c, user, mailbox)
    assert reports(_request_of(c, user)).content == b"reports"
    admin_logout(c)
    admin_login(c, user)
    unverified = reports(_request_of(c, user))
    assert unverified.status_code == 303 and unverified["Location"] == "/mfa/verify?next=%2Freports%2F"
    post(c, "/mfa/verify", {"code": mailed_code(mailbox, user.email)})
    assert reports(_request_of(c, user)).content == b"reports"


def test_call_command_runs_the_cli_and_raises_command_error_on_failure(project, capsys):
    from django.core.management import CommandError, call_command

    call_command("otp_pro", "db", "current")
    assert "up to date" in capsys.readouterr().out
    with pytest.raises(CommandError):
        call_command("otp_pro", "members", "show", "no-such-user")
    assert "no-such-user" in capsys.readouterr().err


def test_a_trusted_browser_skips_the_second_step_at_the_next_login(project, mailbox):
    from django_steps import admin_logout, post, set_up_email

    from otp_pro.testing import mailed_code

    user = make_user("trusted")
    c = client()
    admin_login(c, user)
    set_up_email(c, user, mailbox)
    admin_logout(c)
    mailbox.clear()
    admin_login(c, user)
    passed = post(c, "/mfa/verify", {"code": mailed_code(mailbox, user.email), "trust": "1"})
    assert passed.status_code == 303
    cookie = passed.cookies["otp_pro_device"]  # DEBUG on 127.0.0.1: not Secure, so no __Host- prefix
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie.value
    admin_logout(c)
    admin_login(c, user)
    assert c.get("/admin/").status_code == 200  # the trusted device passes the gate
    c.cookies.pop("otp_pro_device")
    admin_logout(c)
    admin_login(c, user)
    assert c.get("/admin/").status_code == 303  # without the cookie the step is asked again


def test_a_passkey_sign_in_logs_the_user_in_to_django_and_keeps_the_passed_second_step(project):
    """``first_factor_login`` (the flow's ``on_first_factor``): ``auth.login`` for the proved user, without the
    new otp-pro login ``user_logged_in`` would start, also when the session held another user's login
    (which Django flushes). The browser run with a real passkey is tests/integration/test_passkeys_django.py."""
    from django.contrib.auth import SESSION_KEY, login
    from django.contrib.auth.models import AnonymousUser
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import RequestFactory

    from otp_pro.web.flow import login as flow_login
    from otp_pro.web.flow.state import K_LOGIN, K_MEMBER, mark_verified
    from otp_pro_django import adapter, member_for
    from otp_pro_django.logins import first_factor_login

    earlier, proved = make_user("earlier"), make_user("proved")
    for before in (None, earlier):
        request = RequestFactory(HTTP_HOST="127.0.0.1").post("/mfa/first-factor")
        request.session = SessionStore()
        request.user = AnonymousUser()
        if before is not None:
            login(request, before, backend="django.contrib.auth.backends.ModelBackend")
        v = adapter.visit(request)
        flow_login(v, member_for(proved), send=False)  # what the flow does before the hand-off
        mark_verified(v)
        passed = request.session[K_LOGIN]
        first_factor_login(v, member_for(proved))
        assert request.user == proved and request.session[SESSION_KEY] == str(proved.pk)
        assert request.session[K_MEMBER] == str(proved.pk) and request.session[K_LOGIN] == passed
        adapter.forget_visit(request)
        assert adapter.visit(request).is_verified()


def test_a_signed_out_visitors_passkey_challenge_survives_the_gate(project):
    """Only an otp-pro login without its Django login is ended: the challenge a signed-out visitor's "Sign in
    with a passkey" asked for stays in the session for the answer."""
    from otp_pro.web.flow.state import K_BINDING

    c = client()
    session = c.session
    session[K_BINDING] = "challenge-binding"
    session.save()
    c.cookies["sessionid"] = session.session_key
    assert c.get("/admin/login/").status_code == 200
    assert c.session.get(K_BINDING) == "challenge-binding"


def test_a_german_browser_gets_the_page_and_the_fallback_layout_in_german(project):
    c = client()
    admin_login(c, make_user("sprache"))
    page = c.get("/mfa/setup", HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9,en;q=0.5").content.decode()
    # The app's own base template (the project has no base.html): its lang and words follow the page's.
    assert '<html lang="de">' in page
    assert "Zwei-Schritt-Verifizierung einrichten" in page and ">Sicherheitseinstellungen</a>" in page
    assert ">Abmelden</button>" in page
