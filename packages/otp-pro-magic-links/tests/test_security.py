"""Single use under concurrency, the shared lockout, and where the token must never appear."""

from __future__ import annotations

import logging
import threading
from typing import Any

from magic_links_support import WebServer, enrol_by_link, last_link
from sqlalchemy import select

from otp_pro.storage.schema import metadata
from otp_pro_magic_links import consume, make_wsgi_app, parse


def test_sixteen_concurrent_posts_have_one_winner(make_otp, web: WebServer, mailbox, member):
    otp = make_otp(max_attempts=50)
    web.mount(make_wsgi_app(otp, success_location="/home"))
    enrol_by_link(otp, member, mailbox)
    otp.send_challenge(member, channel="email:magic_link")
    token = parse(last_link(mailbox, member.email))
    barrier = threading.Barrier(16)
    statuses: list[int] = []
    lock = threading.Lock()

    def click() -> None:
        barrier.wait()
        status = web.request("POST", f"{web.url}/otp/magic", {"token": token}).status
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=click) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(statuses) == [303] + [410] * 15
    assert len(otp.events(member, kinds=["verify_ok"])) == 1


def test_sixteen_concurrent_consume_calls_have_one_winner(make_otp, mailbox, member):
    otp = make_otp(max_attempts=50)
    enrol_by_link(otp, member, mailbox)
    otp.send_challenge(member, channel="email:magic_link")
    token = parse(last_link(mailbox, member.email))
    barrier = threading.Barrier(16)
    results: list[Any] = []

    def click() -> None:
        barrier.wait()
        results.append(consume(otp, token))

    threads = [threading.Thread(target=click) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(r.status == 303 for r in results) == 1
    assert {r.result.reason for r in results if r.status != 303} == {"used"}


def test_an_old_link_never_locks_the_member_and_the_shared_lockout_still_applies(make_otp, web, mailbox, member):
    """Posting a used link again and again is no guess: nothing counts, nothing about attempts is told."""
    otp = make_otp(max_attempts=3)
    web.mount(make_wsgi_app(otp))
    enrol_by_link(otp, member, mailbox)
    otp.send_challenge(member, channel="email:magic_link")
    token = parse(last_link(mailbox, member.email))
    url = f"{web.url}/otp/magic"
    assert web.request("POST", url, {"token": token}).status == 303
    for _ in range(10):
        used = web.request("POST", url, {"token": token})
        assert used.status == 410 and "attempt" not in used.body.lower()
    assert otp.status(member).locked_until is None
    for _ in range(3):
        assert not otp.verify(member, "000000").ok  # wrong codes: these count, and lock at the third
    locked = web.request("POST", url, {"token": token})
    assert locked.status == 429 and "Too many attempts" in locked.body
    assert int(locked.headers["Retry-After"]) > 0
    assert otp.events(member, kinds=["locked_out"])


def test_links_otp_pro_never_sent_are_limited_per_address(make_otp, web, member):
    otp = make_otp(max_unknown_links_per_hour_per_ip=2)
    web.mount(make_wsgi_app(otp))
    url = f"{web.url}/otp/magic"
    guesses = [web.request("POST", url, {"token": "G" * 43}) for _ in range(3)]
    assert [g.status for g in guesses] == [404, 404, 429]
    assert int(guesses[2].headers["Retry-After"]) > 3000 and "Too many sign-in links" in guesses[2].body


def test_token_is_nowhere_but_the_mail(make_otp, web, mailbox, member, caplog):
    caplog.set_level(logging.DEBUG)
    otp = make_otp(max_attempts=10)
    web.mount(make_wsgi_app(otp))
    enrol_by_link(otp, member, mailbox)
    otp.send_challenge(member, channel="email:magic_link", ip="192.0.2.1", user_agent="test")
    link = last_link(mailbox, member.email)
    token = parse(link)
    assert token is not None
    url = f"{web.url}/otp/magic"
    web.request("GET", link)
    response = consume(otp, token, ip="192.0.2.1", user_agent="test")
    assert response.status == 303 and token not in repr(response)
    web.request("POST", url, {"token": token})  # used
    web.request("POST", url, {"token": token[::-1]})  # unknown
    # Every log line but the test SMTP server's own (aiosmtpd logs the DATA it receives at DEBUG).
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail.log"))
    assert token not in ours and token[::-1] not in ours
    for event in otp.events():
        assert token not in repr(event) and token not in str(event.details)
    with otp.db.read() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                dumped = repr(tuple(row))
                assert token not in dumped and link not in dumped, table.name
        hashes = [r.secret_hash for r in conn.execute(select(metadata.tables["otp_challenges"]))
                  if r.payload == "magic_link"]
    assert hashes and all(h and h != token for h in hashes)
