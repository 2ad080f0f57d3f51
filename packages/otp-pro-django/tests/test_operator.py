"""The operator console in the Django project: mounted by ``OTP_PRO_OPERATOR_PERMISSION``, open to an active staff
user holding that permission (a superuser holds every one), a 404 for anyone else; Django's CSRF check on its
actions; each action audited with the operator; the export a streamed response."""

from __future__ import annotations

from django_steps import admin_login, client, csrf, make_user, post, set_up_email


def _grant(user, codename: str = "view_logentry") -> None:
    from concurrent.futures import ThreadPoolExecutor

    from django.contrib.auth.models import Permission
    from django.db import connections

    def give() -> None:
        try:
            user.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label="admin"))
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(give).result()


def test_staff_without_the_permission_get_404(project, mailbox):
    user = make_user("plainstaff", superuser=False)
    c = client()
    admin_login(c, user)
    set_up_email(c, user, mailbox)
    assert c.get("/mfa/operator/members").status_code == 404
    refused = c.post("/mfa/operator/member/unlock", {"member_id": str(user.pk)})
    assert refused.status_code == 404  # before Django's CSRF check: nothing about the console is told
    _grant(user)
    fresh = client()
    admin_login(fresh, user)
    post(fresh, "/mfa/verify", {"code": _last_code(mailbox, user.email)})
    assert fresh.get("/mfa/operator/members").status_code == 200


def test_the_admin_index_links_to_the_console_only_for_staff_holding_the_permission(project, mailbox):
    link = b'<a href="/mfa/operator/members">Operator console</a>'
    user = make_user("indexstaff", superuser=False)
    c = client()
    admin_login(c, user)
    set_up_email(c, user, mailbox)
    index = c.get("/admin/")
    assert index.status_code == 200 and link not in index.content and b"Operator console" not in index.content
    _grant(user)
    fresh = client()
    admin_login(fresh, user)
    post(fresh, "/mfa/verify", {"code": _last_code(mailbox, user.email)})
    index = fresh.get("/admin/")
    assert index.status_code == 200 and link in index.content
    assert b"otp-pro two-step verification</a>" in index.content  # its own section, as an app's
    # The console's own pages (in the admin's layout) show it in the sidebar, marked as the current page.
    console = fresh.get("/mfa/operator/members")
    assert console.status_code == 200 and b'aria-current="page">Operator console</a>' in console.content
    # Without OTP_PRO_OPERATOR_PERMISSION nobody may open the console, so nobody sees the link.
    from django.test import override_settings

    with override_settings(OTP_PRO_OPERATOR_PERMISSION=None):
        assert link not in fresh.get("/admin/").content
    # A superuser holds every permission.
    admin = make_user("indexadmin")
    su = client()
    admin_login(su, admin)
    set_up_email(su, admin, mailbox)
    assert link in su.get("/admin/").content


def test_an_operator_resets_a_member_with_djangos_csrf_token_and_is_audited(project, mailbox):
    from otp_pro_django import get_otp

    operator = make_user("operator")  # a superuser
    member = make_user("someone", superuser=False)
    for user in (member, operator):
        c = client()
        admin_login(c, user)
        set_up_email(c, user, mailbox)
    page = c.get(f"/mfa/operator/member?id={member.pk}")
    assert page.status_code == 200 and b"on (email:code)" in page.content
    assert b"Members</a>" in page.content and b'class="breadcrumbs"' in page.content  # inside the admin's layout
    assert b'id="site-name"' in page.content and b"otp-pro-console" in page.content
    assert f"<title>Member {member.pk} | ".encode() in page.content
    assert c.post("/mfa/operator/member/reset", {"member_id": str(member.pk)}).status_code == 403
    done = c.post("/mfa/operator/member/reset", {"member_id": str(member.pk), "csrfmiddlewaretoken": csrf(c)})
    assert done.status_code == 303 and done["Location"] == f"/mfa/operator/member?id={member.pk}"
    [event] = get_otp().events(str(member.pk), kinds=["reset"])
    assert event.actor == f"console:{operator.pk}"
    export = c.get(f"/mfa/operator/audit/export?format=jsonl&member={member.pk}")
    assert export.status_code == 200 and export.streaming
    assert b'"kind": "reset"' in b"".join(export.streaming_content)


def _last_code(mailbox, address):
    from otp_pro.testing import mailed_code

    return mailed_code(mailbox, address)
