"""Helpers for the web tests: read CSRF tokens and codes from the demo site's pages and outbox."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from otp_pro_flask.demo_site import DemoSite


@contextmanager
def built_site(path: str | Path, **overrides: Any) -> Iterator[DemoSite]:
    """A demo site on the SQLite file ``path`` with ``overrides`` to its settings, in Flask's testing mode (an
    exception in a view reaches the test instead of a 500 page); closed at the end of the block."""
    demo = DemoSite(str(path), overrides=overrides)
    demo.app.config["TESTING"] = True
    try:
        yield demo
    finally:
        demo.close()


def csrf_of(client: Any, path: str = "/login") -> str:
    page = client.get(path)
    found = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert found, f"no CSRF token on {path} ({page.status_code})"
    return found.group(1)


def last_code(site: DemoSite, recipient: str | None = None) -> str:
    message = site.outbox.last(recipient)
    assert message is not None, "nothing in the outbox"
    found = re.search(r"\b(\d{6})\b", message.text)
    assert found, message.text
    return found.group(1)


def sign_in(client: Any, email: str, password: str, next_url: str | None = None) -> Any:
    data = {"email": email, "password": password, "csrf_token": csrf_of(client)}
    if next_url:
        data["next"] = next_url
    return client.post("/login", data=data)
