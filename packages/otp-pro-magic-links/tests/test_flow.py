"""The link end to end: real SMTP, real HTTP (wsgiref on 127.0.0.1), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from magic_links_support import WebServer, enrol_by_link, last_code, last_link
from sqlalchemy import select

from otp_pro import FactorNotEnrolled, Member
from otp_pro.storage.schema import challenges
from otp_pro.testing import Mailbox, mailed_text
from otp_pro_magic_links import BindingRequired, ensure_binding, make_wsgi_app, parse, send_link

REQUIRED_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


def hidden_token(page: str) -> str:
    match = re.search(r'<input type="hidden" name="token" value="([^"]+)">', page)
    assert match, "no hidden token field on the confirmation page"
    return match.group(1)


def challenge_rows(otp: Any) -> list[Any]:
    with otp.db.read() as conn:
        return list(conn.execute(select(challenges).order_by(challenges.c.id)))


@pytest.fixture
def signed_in() -> list[Any]:
    return []


@pytest.fixture
def site(make_otp: Any, web: WebServer, signed_in: list[Any]) -> Any:
    def build(**overrides: Any) -> Any:
        otp = make_otp(**overrides)

        def on_success(result: Any, environ: Any) -> str:
            signed_in.append(result)
            return "/welcome"

        web.mount(make_wsgi_app(otp, on_success=on_success, new_link_url="/login"))
        return otp

    return build


def test_get_twice_then_post_once_then_refused_as_used(site, web, mailbox: Mailbox, member, signed_in):
    otp = site()
    enrol_by_link(otp, member, mailbox)
    otp.send_challenge(member, channel="email:magic_link")
    link = last_link(mailbox, member.email)
    assert link.startswith(f"{web.url}/otp/magic?token=")
    token = parse(link)
    assert token is not None and len(token) >= 43  # 32 bytes of secrets: 256 bits

    for _ in range(2):  # a scanner, then the member: nothing is consumed
        page = web.request("GET", link)
        assert page.status == 200
        for name, value in REQUIRED_HEADERS.items():
            assert page.headers[name] == value
        assert "noindex" in page.headers["X-Robots-Tag"]
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert '<form method="post" action="/otp/magic">' in page.body  # token in the body, not the URL
        assert hidden_token(page.body) == token
        assert page.body.count("<button") == 1
    (row,) = [r for r in challenge_rows(otp) if r.payload == "magic_link" and r.purpose == "verify"]
    assert row.consumed_at is None and row.status == "sent"
    assert (row.expires_at - row.created_at).total_seconds() == 600

    done = web.request("POST", f"{web.url}/otp/magic", {"token": token})
    assert done.status == 303
    assert done.headers["Location"] == "/welcome"
    assert token not in str(done.headers) and token not in done.body
    assert done.headers["Cache-Control"] == "no-store"
    assert [r.member_id for r in signed_in] == [member.id] and signed_in[0].method == "magic_link"

    again = web.request("POST", f"{web.url}/otp/magic", {"token": token})
    assert again.status == 410 and "already used" in again.body
    assert 'href="/login"' in again.body  # offers a new link
    assert again.headers["Referrer-Policy"] == "no-referrer"
    assert len(signed_in) == 1


def test_expired_link(site, web, mailbox, member, clock):
    otp = site(magic_links={"ttl_seconds": 300})
    enrol_by_link(otp, member, mailbox)
    otp.send_challenge(member, channel="email:magic_link")
    token = parse(last_link(mailbox, member.email))
    assert "expires in 5 minutes" in mailed_text(mailbox, member.email)
    clock.advance(seconds=301)
    assert web.request("GET", last_link(mailbox, member.email)).status == 200  # GET still never decides
    reply = web.request("POST", f"{web.url}/otp/magic", {"token": token})
    assert reply.status == 410 and "expired" in reply.body and "5 minutes" in reply.body
    assert otp.events(member, kinds=["verify_failed"])[0].details["reason"] == "expired"


def test_a_new_link_replaces_the_older_one(site, web, mailbox, member, signed_in):
    otp = site()
    enrol_by_link(otp, member, mailbox)
    otp.send_challenge(member, channel="email:magic_link")
    first = parse(last_link(mailbox, member.email))
    otp.send_challenge(member, channel="email:magic_link")
    second = parse(last_link(mailbox, member.email))
    assert first != second
    old = web.request("POST", f"{web.url}/otp/magic", {"token": first})
    assert old.status == 410 and "newer sign-in link" in old.body
    assert web.request("POST", f"{web.url}/otp/magic", {"token": second}).status == 303


def test_same_browser_on(site, web, mailbox, member, signed_in):
    otp = site(magic_links={"same_browser": True})
    enrol_by_link(otp, member, mailbox)
    with pytest.raises(BindingRequired):
        otp.send_challenge(member, channel="email:magic_link")
    with pytest.raises(BindingRequired):
        send_link(otp, member)
    assert mailbox.to(member.email) == []  # refused before anything was sent
    value, set_cookie = ensure_binding(None)
    assert set_cookie is not None
    assert {"HttpOnly", "Secure", "SameSite=Lax", "Path=/"} <= {p.strip() for p in set_cookie.split(";")}
    assert ensure_binding(f"other=1; {set_cookie.split(';')[0]}") == (value, None)  # reused, not replaced
    send_link(otp, member, binding=value)
    token = parse(last_link(mailbox, member.email))
    url = f"{web.url}/otp/magic"
    missing = web.request("POST", url, {"token": token})
    assert missing.status == 403 and "browser" in missing.body
    _, other_cookie = ensure_binding(None)
    wrong = web.request("POST", url, {"token": token}, {"Cookie": other_cookie.split(";")[0]})
    assert wrong.status == 403
    right = web.request("POST", url, {"token": token}, {"Cookie": set_cookie.split(";")[0]})
    assert right.status == 303 and len(signed_in) == 1
    reasons = [e.details["reason"] for e in otp.events(member, kinds=["verify_failed"])]
    assert reasons.count("wrong_browser") == 2


def test_same_browser_off(site, web, mailbox, member, signed_in):
    otp = site()
    enrol_by_link(otp, member, mailbox)
    value, _ = ensure_binding(None)
    send_link(otp, member, binding=value)  # ignored: the setting is off
    token = parse(last_link(mailbox, member.email))
    links = [r for r in challenge_rows(otp) if r.payload == "magic_link" and r.purpose == "verify"]
    assert [r.binding_hash for r in links] == [None]
    assert web.request("POST", f"{web.url}/otp/magic", {"token": token}).status == 303  # another browser is fine


def test_setup_by_clicking_the_link(site, web, mailbox, signed_in):
    otp = site()
    newcomer = Member(id="new", email="new@example.com", name="Newcomer")
    otp.begin_setup(newcomer, "email:magic_link")
    assert "Open this link" in mailed_text(mailbox, newcomer.email)
    token = parse(last_link(mailbox, newcomer.email))
    assert web.request("POST", f"{web.url}/otp/magic", {"token": token}).status == 303
    assert signed_in[0].purpose == "setup" and len(signed_in[0].backup_codes) == 10
    status = otp.status(newcomer)
    assert status.enrolled and status.channel == "email:magic_link"
    # Enrolled on the link channel, the member's own channel sends links.
    otp.send_challenge(newcomer)
    token = parse(last_link(mailbox, newcomer.email))
    assert web.request("POST", f"{web.url}/otp/magic", {"token": token}).status == 303


def test_a_code_factor_does_not_let_anyone_ask_for_links_and_a_link_factor_adds_to_it(site, web, mailbox, member):
    """Links go only to the member's own link factor; the member may hold it beside an emailed-code factor."""
    otp = site()
    otp.begin_setup(member, "email:code")
    assert len(otp.complete_setup(member, last_code(mailbox, member.email))) == 10
    mailbox.clear()
    with pytest.raises(FactorNotEnrolled):
        otp.send_challenge(member, channel="email:magic_link")
    assert mailbox.to(member.email) == []
    enrol_by_link(otp, member, mailbox)
    assert sorted(f.kind for f in otp.factors(member)) == ["email:code", "email:magic_link"]
    assert otp.status(member).backup_codes_remaining == 10  # issued with the first factor only
    otp.send_challenge(member, channel="email:magic_link")
    token = parse(last_link(mailbox, member.email))
    assert web.request("POST", f"{web.url}/otp/magic", {"token": token}).status == 303
    otp.send_challenge(member, channel="email:code")
    assert otp.verify(member, last_code(mailbox, member.email)).ok


def test_plain_text_mail_without_the_html_companion(site, mailbox, member, web):
    otp = site(disable_plugins=["otp_pro_html_email"])
    enrol_by_link(otp, member, mailbox)
    otp.send_challenge(member, channel="email:magic_link")
    (mail,) = mailbox.to(member.email)
    assert mail.get_content_type() == "text/plain"
    assert "sign-in link" in str(mail["Subject"])
    text = mailed_text(mailbox, member.email)
    assert "Open this link to finish signing in to Example" in text and "works once" in text
    assert urlsplit(last_link(mailbox, member.email)).netloc == urlsplit(web.url).netloc


def test_unknown_and_malformed_tokens(site, web, mailbox, member):
    otp = site()
    unknown = web.request("POST", f"{web.url}/otp/magic", {"token": "A" * 43})
    assert unknown.status == 404 and "not valid" in unknown.body
    event = otp.events(kinds=["verify_failed"])[0]
    assert event.member_id is None and event.details["reason"] == "unknown"
    for query in ("", "?token=", "?token=short", "?token=a&token=b", "?token=%3Cscript%3E"):
        page = web.request("GET", f"{web.url}/otp/magic{query}")
        assert page.status == 400 and "incomplete" in page.body and "<script>" not in page.body
    assert web.request("POST", f"{web.url}/otp/magic", {"nothing": "x"}).status == 400


def test_wsgi_routes_and_methods(site, web):
    site()
    assert web.request("GET", f"{web.url}/elsewhere").status == 404
    put = web.request("PUT", f"{web.url}/otp/magic")
    assert put.status == 405 and put.headers["Allow"] == "GET, HEAD, POST"
    head = web.request("HEAD", f"{web.url}/otp/magic?token={'A' * 43}")
    assert head.status == 200 and head.body == ""
    big = web.request("POST", f"{web.url}/otp/magic", b"token=" + b"A" * 5000,
                      {"Content-Type": "application/x-www-form-urlencoded"})
    assert big.status == 413


def test_cross_site_post_is_refused_without_touching_the_link(site, web, mailbox, member):
    otp = site()
    enrol_by_link(otp, member, mailbox)
    otp.send_challenge(member, channel="email:magic_link")
    token = parse(last_link(mailbox, member.email))
    url = f"{web.url}/otp/magic"
    assert web.request("POST", url, {"token": token}, {"Sec-Fetch-Site": "cross-site"}).status == 403
    assert web.request("POST", url, {"token": token}, {"Origin": "https://evil.example"}).status == 403
    assert otp.events(member, kinds=["verify_failed"]) == []  # no failure counted, link intact
    ok = web.request("POST", url, {"token": token}, {"Origin": "null", "Sec-Fetch-Site": "same-origin"})
    assert ok.status == 303
