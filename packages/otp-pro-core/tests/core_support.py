"""Settings and a bare Flask app that the core's tests share; the fixtures built on them are in conftest.py.

Generic helpers (reading the outbox or the loopback mailbox, enrolling a member,
a page's CSRF token) are in the public kit, ``otp_pro.testing``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from otp_pro import Member, OtpPro

SECRET_KEY = "test-secret-key-" + "x" * 32


def base_settings(database_url: str, **overrides: Any) -> dict[str, Any]:
    """Site settings on ``database_url``: the outbox, TOTP and email channels, no resend cooldown."""
    settings: dict[str, Any] = {
        "secret_key": SECRET_KEY,
        "database_url": database_url,
        "site_name": "Example",
        "support_email": "help@example.com",
        "channels": ["outbox:code", "totp", "email:code"],
        "default_channel": "outbox:code",
        # Tests that are not about throttling should not trip over it; those that are set it.
        "resend_cooldown_seconds": 0,
    }
    settings.update(overrides)
    return settings


def bare_flask_client(otp: OtpPro, member: Member) -> Any:
    """A test client of a Flask app holding only the extension: ``GET /login`` signs ``member`` in
    (303 to the verify page when a second step is due) and ``/home`` is the page after it."""
    from flask import Flask, redirect

    from otp_pro.web.flask import OtpProFlask

    app = Flask(__name__)
    app.secret_key = "flask-test-secret-" + "s" * 32
    app.config["TESTING"] = True
    extension = OtpProFlask(app, otp, load_member={member.id: member}.get, check_password=lambda _m, _p: True,
                            secure_cookies=False)

    @app.get("/login")
    def login() -> Any:
        return redirect(extension.login(member, next="/home"), 303)

    @app.get("/home")
    def home() -> str:
        return "home page"

    return app.test_client()


def burst(fleet: list[OtpPro], attempt: Callable[[OtpPro, int], Any], threads: int = 32) -> list[Any]:
    """Run ``attempt(instance, i)`` on ``threads`` threads released together, thread ``i`` on instance
    ``i % len(fleet)``; each one's answer or exception (the concurrency tests sort them)."""
    barrier = threading.Barrier(threads)
    results: list[Any] = [None] * threads

    def work(i: int) -> None:
        barrier.wait()
        try:
            results[i] = attempt(fleet[i % len(fleet)], i)
        except Exception as exc:  # noqa: BLE001 - the test sorts answers from exceptions
            results[i] = exc

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=120)
    return results
