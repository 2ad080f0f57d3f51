"""A real browser clicks the link from the received mail through to a signed-in page.

Playwright's Python package drives the system's Chromium (Debian's ``chromium``
package, ``/usr/bin/chromium``); no browser is ever downloaded (never run
``playwright install``). The site is a small WSGI app served over real HTTP on
127.0.0.1 (the ``web`` fixture), the mail goes through the real loopback SMTP
server, and the link is read from it with the stdlib ``email`` package.

Without Chromium the tests fail under CI (``CI`` set, as ``.ci/run`` does) and
are skipped with a reason elsewhere.
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Callable, Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from magic_links_support import WebServer, enrol_by_link, last_link
from sqlalchemy import select

from otp_pro import Member, OtpPro
from otp_pro.storage.schema import challenges
from otp_pro.testing import Mailbox, system_chromium
from otp_pro_magic_links import Response, ensure_binding, make_wsgi_app, parse, send_link
from otp_pro_magic_links.web import SECURITY_HEADERS

#: The site runs on plain http://127.0.0.1, where browsers refuse ``Secure`` cookies and so the
#: ``__Host-`` name: the binding cookie uses the development form (``binding_cookie(secure=False)``).
BINDING_COOKIE = "otp_pro_magic_link"
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright's sync API (one browser per module)."""
    with system_chromium() as chromium:
        yield chromium


@pytest.fixture
def new_context(browser: Any) -> Iterator[Callable[[], Any]]:
    """Fresh browser contexts (each its own cookie jar: another browser, as far as the site can tell)."""
    made: list[Any] = []

    def factory() -> Any:
        context = browser.new_context()
        context.set_default_timeout(TIMEOUT_MS)
        made.append(context)
        return context

    yield factory
    for context in made:
        context.close()


# ---------------------------------------------------------------- the site


def _cookies(environ: dict[str, Any]) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    jar.load(environ.get("HTTP_COOKIE", ""))
    return {name: morsel.value for name, morsel in jar.items()}


def _html(title: str, body: str) -> bytes:
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>").encode()


class Site:
    """The integrator's side: a login page that mails the link, the link's page, a members-only page.

    * ``GET /login``: "Email me a sign-in link" (the password step is assumed done for ``member``).
    * ``POST /login``: gives the browser the binding cookie (``ensure_binding``), remembers the pending
      member in a cookie, and sends the link with that binding (``send_link``).
    * ``/otp/magic``: ``make_wsgi_app``; ``on_success`` checks the verified member is the pending one,
      then answers a :class:`Response` that sets the ``session`` cookie and 303s to ``/welcome``.
    * ``GET /welcome``: "Signed in as <name>" for a session cookie, 401 without one.
    """

    def __init__(self, otp: OtpPro, member: Member):
        self.otp = otp
        self.member = member
        self.sessions: dict[str, str] = {}  # session id -> member id
        self.magic = make_wsgi_app(otp, on_success=self.on_success, new_link_url="/login", cookie_name=BINDING_COOKIE)

    def on_success(self, result: Any, environ: dict[str, Any]) -> Response:
        if result.member_id != _cookies(environ).get("pending"):
            return Response(403, [("Content-Type", "text/html; charset=utf-8"), *SECURITY_HEADERS],
                            _html("Not the member who asked", ""))
        sid = secrets.token_urlsafe(32)
        self.sessions[sid] = result.member_id
        return Response(303, [
            ("Location", "/welcome"),
            ("Set-Cookie", f"session={sid}; Path=/; HttpOnly; SameSite=Lax"),
            ("Set-Cookie", "pending=; Path=/; Max-Age=0"),
            *SECURITY_HEADERS,
        ])

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == "/otp/magic":
            return self.magic(environ, start_response)
        headers = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]
        if path == "/login" and method == "GET":
            status, body = "200 OK", _html("Sign in", '<form method="post" action="/login">'
                                                      '<button type="submit">Email me a sign-in link</button></form>')
        elif path == "/login" and method == "POST":
            value, set_cookie = ensure_binding(environ.get("HTTP_COOKIE"), name=BINDING_COOKIE, secure=False)
            if set_cookie:
                headers.append(("Set-Cookie", set_cookie))
            headers.append(("Set-Cookie", f"pending={self.member.id}; Path=/; HttpOnly; SameSite=Lax"))
            send_link(self.otp, self.member, binding=value)
            status, body = "200 OK", _html("Check your mail", "<p>We sent you a sign-in link.</p>")
        elif path == "/welcome":
            member_id = self.sessions.get(_cookies(environ).get("session", ""))
            if member_id == self.member.id:
                status, body = "200 OK", _html(f"Signed in as {self.member.name}", "<p>Welcome back.</p>")
            else:
                status, body = "401 Unauthorized", _html("Not signed in", "")
        else:
            status, body = "404 Not Found", _html("Not found", "")
        start_response(status, headers)
        return [body]


@pytest.fixture
def site(make_otp: Any, web: WebServer, member: Member, mailbox: Mailbox) -> Callable[..., Site]:
    def build(**overrides: Any) -> Site:
        otp = make_otp(**overrides)
        enrol_by_link(otp, member, mailbox)  # links are asked for with channel email:magic_link
        app = Site(otp, member)
        web.mount(app)
        return app

    return build


# ------------------------------------------------------------------ helpers


def link_from_mail(mailbox: Mailbox, address: str) -> str:
    """The sign-in link in the newest mail to ``address`` (parsed by the stdlib email package)."""
    messages = mailbox.to(address)
    assert messages, f"no mail to {address}"
    mail = messages[-1]
    assert "sign-in link" in str(mail["Subject"])
    link = last_link(mailbox, address)
    assert parse(link) is not None, "the mail's link holds no well-formed token"
    return link


def magic_rows(otp: OtpPro) -> list[Any]:
    """The sign-in links' challenges (not the setup's)."""
    with otp.db.read() as conn:
        rows = conn.execute(select(challenges).where(challenges.c.payload == "magic_link",
                                                     challenges.c.purpose == "verify").order_by(challenges.c.id))
        return list(rows)


def request_link(page: Any, web: WebServer) -> None:
    page.goto(f"{web.url}/login")
    page.get_by_role("button", name="Email me a sign-in link").click()
    page.wait_for_url(f"{web.url}/login")
    assert page.locator("h1").inner_text() == "Check your mail"


def open_link(page: Any, link: str) -> None:
    """Open the link as a mail client would hand it to the browser; the confirmation page shows."""
    reply = page.goto(link)
    assert reply is not None and reply.status == 200
    assert reply.headers["referrer-policy"] == "no-referrer" and reply.headers["cache-control"] == "no-store"
    assert page.title() == "Sign in to Example - Example"
    assert page.get_by_role("button").count() == 1
    assert page.get_by_role("button", name="Continue signing in").is_visible()


def press_continue(page: Any) -> Any:
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Continue signing in").click()
    return navigation.value


# -------------------------------------------------------------------- tests


def test_click_the_link_through_to_a_signed_in_page(site, web, mailbox, member, new_context, tmp_path: Path):
    app = site()
    page = new_context().new_page()
    request_link(page, web)
    link = link_from_mail(mailbox, member.email)
    assert link.startswith(f"{web.url}/otp/magic?token=")
    token = parse(link)

    open_link(page, link)
    assert page.url == link
    (row,) = magic_rows(app.otp)
    assert row.consumed_at is None and row.status == "sent"  # the GET consumed nothing
    assert app.otp.events(member, kinds=["verify_ok", "verify_failed"]) == []
    assert page.goto(f"{web.url}/welcome").status == 401  # not signed in by opening the link
    open_link(page, link)  # a second GET (as a scanner's would be) still shows the button

    final = press_continue(page)
    assert final.status == 200
    assert page.url == f"{web.url}/welcome"
    assert "token" not in page.url and token not in page.url
    assert page.locator("h1").inner_text() == "Signed in as Ann"
    (row,) = magic_rows(app.otp)
    assert row.consumed_at is not None
    (ok,) = app.otp.events(member, kinds=["verify_ok"])
    assert ok.details["method"] == "magic_link"
    assert list(app.sessions.values()) == [member.id]

    shot = tmp_path / "signed-in.png"
    page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000

    # Back to the link and press again: refused as used, still signed in once.
    open_link(page, link)
    again = press_continue(page)
    assert again.status == 410 and "already used" in page.content()
    assert len(app.sessions) == 1


def test_same_browser_binding_in_the_browser(site, web, mailbox, member, new_context):
    app = site(magic_links={"same_browser": True})
    context = new_context()
    page = context.new_page()
    request_link(page, web)
    (cookie,) = [c for c in context.cookies() if c["name"] == BINDING_COOKIE]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    link = link_from_mail(mailbox, member.email)
    (row,) = magic_rows(app.otp)
    assert row.binding_hash is not None and cookie["value"] not in str(row.binding_hash)

    open_link(page, link)
    press_continue(page)
    assert page.url == f"{web.url}/welcome" and "token" not in page.url
    assert page.locator("h1").inner_text() == "Signed in as Ann"

    # Another link asked for in the same browser (same cookie), opened in a fresh browser without it.
    request_link(page, web)
    assert [c["value"] for c in context.cookies() if c["name"] == BINDING_COOKIE] == [cookie["value"]]
    other_link = link_from_mail(mailbox, member.email)
    assert other_link != link
    stranger = new_context().new_page()
    open_link(stranger, other_link)
    refused = press_continue(stranger)
    assert refused.status == 403
    assert stranger.locator("h1").inner_text() == "Open the link in the browser you are signing in with"
    assert "token" not in stranger.url and urlsplit(stranger.url).path == "/otp/magic"
    assert stranger.get_by_role("link", name="Ask for a new sign-in link").get_attribute("href") == "/login"
    assert stranger.goto(f"{web.url}/welcome").status == 401
    assert len(app.sessions) == 1
    reasons = [e.details["reason"] for e in app.otp.events(member, kinds=["verify_failed"])]
    assert reasons == ["wrong_browser"]
    assert not parse_qs(urlsplit(stranger.url).query)
