"""Steps the tests share: users made with the project's ORM, and a person's moves through the pages."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pyotp

from otp_pro.testing import Mailbox, mailed_code

PASSWORD = "Us3r-pass-" + "y" * 8
HOST = "127.0.0.1"
_ids = itertools.count(1)


def make_user(prefix: str = "staff", *, staff: bool = True, superuser: bool = True, **fields: Any) -> Any:
    """A new user of the project (a superuser unless told otherwise) with a unique name and address.

    Made in a worker thread: Playwright's sync API keeps an event loop running in the test's thread,
    where Django refuses database work (rightly: it would block the loop).
    """
    from concurrent.futures import ThreadPoolExecutor

    from django.contrib.auth import get_user_model
    from django.db import connections

    name = f"{prefix}{next(_ids)}"

    def create() -> Any:
        try:
            return get_user_model().objects.create_user(name, f"{name}@example.com", PASSWORD, is_staff=staff,
                                                        is_superuser=superuser, **fields)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(create).result()


def client() -> Any:
    """Django's test client with the CSRF checks on, as a browser meets them."""
    from django.test import Client

    return Client(enforce_csrf_checks=True, HTTP_HOST=HOST)


def csrf(c: Any) -> str:
    """The CSRF token of the client's cookie (what a page's forms carry)."""
    if "csrftoken" not in c.cookies:
        c.get("/admin/login/")
    return str(c.cookies["csrftoken"].value)


def admin_login(c: Any, user: Any, next: str = "/admin/", *, password: str = PASSWORD) -> Any:
    """Sign in through the admin's own login form, as a person would."""
    c.get(f"/admin/login/?next={next}")
    return c.post(f"/admin/login/?next={next}", {"username": user.get_username(), "password": password,
                                                 "next": next, "csrfmiddlewaretoken": csrf(c)})


def post(c: Any, path: str, data: dict[str, str] | None = None, **extra: Any) -> Any:
    """A form POST carrying the page's token in the flow's field, as the otp-pro pages send it."""
    return c.post(path, {**(data or {}), "csrf_token": csrf(c)}, **extra)


def totp_seed(html: str) -> str:
    """The authenticator key shown on the setup page (base32, 32 characters)."""
    match = re.search(r"\b([A-Z2-7]{32})\b", html.replace(" ", ""))
    assert match, "no authenticator key on the page"
    return match.group(1)


def totp_now(seed: str, *, later: bool = False) -> str:
    """The authenticator's code now (``later``: the next time step's, for a second sign-in in the same step)."""
    totp = pyotp.TOTP(seed)
    import time

    return totp.at(time.time() + (30 if later else 0))


def set_up_email(c: Any, user: Any, mailbox: Mailbox) -> None:
    """Set up the email factor of a signed-in ``user`` (forced setup), through the pages."""
    mailbox.clear()
    r = post(c, "/mfa/setup", {"channel": "email:code"})
    assert r.status_code in (200, 303), r.content[:500]
    code = mailed_code(mailbox, user.email)
    done = post(c, "/mfa/setup/confirm", {"code": code})
    assert done.status_code == 200 and b"backup codes" in done.content.lower(), done.content[:800]


def set_up_totp(c: Any) -> str:
    """Set up an authenticator app for the signed-in member; its seed."""
    r = post(c, "/mfa/setup", {"channel": "totp"})
    assert r.status_code == 200, r.content[:500]
    seed = totp_seed(r.content.decode())
    done = post(c, "/mfa/setup/confirm", {"code": totp_now(seed)})
    assert done.status_code == 200 and b"backup codes" in done.content.lower(), done.content[:800]
    return seed


def admin_logout(c: Any) -> None:
    """Sign out through the admin (a POST, as Django 5 wants)."""
    c.post("/admin/logout/", {"csrfmiddlewaretoken": csrf(c)})
