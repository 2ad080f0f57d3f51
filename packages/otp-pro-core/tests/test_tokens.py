"""``verify_token``: click-to-verify payloads (the core side of magic links), on each database."""

from __future__ import annotations

import secrets
import threading
from typing import Any

import pytest

from otp_pro import Member, Payload, PayloadContext, PayloadValue, hookimpl
from otp_pro.testing import enrol


class LinkPayload(Payload):
    """A minimal link payload: a 256-bit token inside a URL; never typed as a code."""

    name = "link"
    label = "sign-in link"
    entered_as_code = False

    def create(self, context: PayloadContext) -> PayloadValue:
        token = secrets.token_urlsafe(32)
        return PayloadValue(secret=token, display=f"https://example.com/otp/magic?t={token}")


class Links:
    __name__ = "links"

    @hookimpl
    def otp_pro_register_payloads(self, register: Any) -> None:
        register(LinkPayload)


def token_in(otp: Any) -> str:
    text = otp.transports["outbox"].last().text
    return text.split("?t=")[1].split()[0]


def add_link_factor(otp: Any, member: Member) -> None:
    """Give ``member`` (enrolled already) a factor on ``outbox:link``, by clicking its setup link: only a member's
    own factors are sent to."""
    otp.begin_setup(member, "outbox:link")
    result = otp.verify_token("link", token_in(otp))
    assert result.ok and result.purpose == "setup" and result.backup_codes == ()  # not the first factor
    assert [f.kind for f in otp.factors(member)] == ["outbox:code", "outbox:link"]


@pytest.fixture
def link_otp(make_otp: Any) -> Any:
    return make_otp(plugins=[Links()], channels=["outbox:code", "outbox:link", "totp"], max_attempts=5)


def test_link_verifies_once_and_names_the_member(link_otp, member):
    enrol(link_otp, member)
    add_link_factor(link_otp, member)
    link_otp.send_challenge(member, channel="outbox:link")
    token = token_in(link_otp)
    assert "sign-in link" in link_otp.transports["outbox"].last().subject
    result = link_otp.verify_token("link", token, ip="192.0.2.1", user_agent="mail client")
    assert result.ok and result.member_id == member.id and result.method == "link" and result.purpose == "verify"
    again = link_otp.verify_token("link", token)
    assert not again.ok and again.reason == "used" and again.attempts_remaining is None  # an issued link: no guess
    assert link_otp.events(member, kinds=["verify_ok"])[0].details["method"] == "link"


def test_link_token_is_not_accepted_as_a_typed_code(link_otp, member):
    enrol(link_otp, member)
    add_link_factor(link_otp, member)
    link_otp.send_challenge(member, channel="outbox:link")
    assert not link_otp.verify(member, token_in(link_otp)).ok


def test_expired_replaced_unknown_and_malformed_tokens(link_otp, member, clock):
    enrol(link_otp, member)
    add_link_factor(link_otp, member)
    link_otp.send_challenge(member, channel="outbox:link")
    first = token_in(link_otp)
    link_otp.send_challenge(member, channel="outbox:link")
    second = token_in(link_otp)
    assert link_otp.verify_token("link", first).reason == "replaced"
    clock.advance(seconds=link_otp.settings.code_ttl_seconds)
    assert link_otp.verify_token("link", second).reason == "expired"
    unknown = link_otp.verify_token("link", secrets.token_urlsafe(32))
    assert unknown.reason == "unknown" and unknown.member_id is None
    assert link_otp.events(kinds=["verify_failed"])[0].details == {"reason": "unknown", "payload": "link"}
    for bad in (None, "", "x" * 600, "tökén", 42):
        assert link_otp.verify_token("link", bad).reason == "malformed"


def test_binding_ties_the_link_to_the_browser(link_otp, member):
    enrol(link_otp, member)
    add_link_factor(link_otp, member)
    link_otp.send_challenge(member, channel="outbox:link", binding="cookie-abc")
    token = token_in(link_otp)
    assert link_otp.verify_token("link", token).reason == "wrong_browser"
    assert link_otp.verify_token("link", token, binding="cookie-xyz").reason == "wrong_browser"
    assert link_otp.verify_token("link", token, binding="cookie-abc").ok


def test_an_issued_link_never_counts_toward_the_lockout_and_a_locked_member_is_refused(link_otp, member, clock):
    """Old links sit in mail archives, scanners and logs: posting them, however often, is no guess."""
    enrol(link_otp, member)
    add_link_factor(link_otp, member)
    link_otp.send_challenge(member, channel="outbox:link")
    used = token_in(link_otp)
    assert link_otp.verify_token("link", used).ok
    link_otp.send_challenge(member, channel="outbox:link", binding="browser-a")
    other_browser = token_in(link_otp)
    link_otp.send_challenge(member, channel="outbox:link")
    replaced = token_in(link_otp)
    link_otp.send_challenge(member, channel="outbox:link")
    live = token_in(link_otp)
    for _ in range(120):  # past max_attempts and past NIST's 100
        assert link_otp.verify_token("link", used, ip="198.51.100.7").reason == "used"
        assert link_otp.verify_token("link", replaced, ip="198.51.100.7").reason == "replaced"
        assert link_otp.verify_token("link", other_browser, ip="198.51.100.7").reason == "wrong_browser"
    assert link_otp.status(member).locked_until is None
    refused = link_otp.events(member, kinds=["verify_failed"], limit=1000)
    assert len(refused) == 360 and all(e.details["counted"] is False for e in refused)
    assert all("failures" not in e.details for e in refused)
    # The shared lockout still applies to links: a member locked by wrong codes cannot sign in with one.
    for _ in range(5):
        link_otp.verify(member, "000000")
    locked = link_otp.verify_token("link", live)
    assert locked.reason == "locked" and locked.attempts_remaining is None
    clock.advance(seconds=link_otp.settings.lockout_seconds + 1)
    link_otp.send_challenge(member, channel="outbox:link")
    assert link_otp.verify_token("link", token_in(link_otp)).ok


def test_unknown_links_are_limited_per_ip_address(make_otp, member, clock):
    otp = make_otp(plugins=[Links()], channels=["outbox:code", "outbox:link", "totp"],
                   max_unknown_links_per_hour_per_ip=3)
    enrol(otp, member)
    add_link_factor(otp, member)
    guesses = [otp.verify_token("link", secrets.token_urlsafe(32), ip="203.0.113.9") for _ in range(3)]
    assert [g.reason for g in guesses] == ["unknown"] * 3
    otp.send_challenge(member, channel="outbox:link")
    real = token_in(otp)
    limited = otp.verify_token("link", real, ip="203.0.113.9")  # over the limit: not even a real link is looked at
    assert limited.reason == "rate_limited" and 3500 < (limited.retry_after or 0) <= 3601
    assert otp.verify_token("link", real, ip="203.0.113.10").ok  # another address is not held back
    assert [e.details["limit"] for e in otp.events(kinds=["ip_limited"])] == ["unknown_link"]
    clock.advance(seconds=3601)
    assert otp.verify_token("link", secrets.token_urlsafe(32), ip="203.0.113.9").reason == "unknown"


def test_an_issued_link_gives_back_its_count(make_otp, member):
    """Only guesses count toward the address's limit: real links, even stale ones, do not."""
    otp = make_otp(plugins=[Links()], channels=["outbox:code", "outbox:link", "totp"],
                   max_unknown_links_per_hour_per_ip=2)
    enrol(otp, member)
    add_link_factor(otp, member)
    otp.send_challenge(member, channel="outbox:link")
    token = token_in(otp)
    for _ in range(10):
        otp.verify_token("link", token, ip="203.0.113.20")
    assert otp.verify_token("link", secrets.token_urlsafe(32), ip="203.0.113.20").reason == "unknown"


def test_link_can_complete_a_setup(link_otp):
    newcomer = Member(id="new", email="new@example.com")
    link_otp.begin_setup(newcomer, "outbox:link")
    result = link_otp.verify_token("link", token_in(link_otp))
    assert result.ok and result.purpose == "setup" and len(result.backup_codes) == 10
    assert not any(code in repr(result) for code in result.backup_codes)
    status = link_otp.status(newcomer)
    assert status.enrolled and status.channel == "outbox:link"


def test_setup_link_can_be_bound_to_the_browser(link_otp):
    newcomer = Member(id="bound", email="bound@example.com")
    link_otp.begin_setup(newcomer, "outbox:link", binding="cookie-1")
    token = token_in(link_otp)
    assert link_otp.verify_token("link", token, binding="cookie-2").reason == "wrong_browser"
    assert link_otp.verify_token("link", token, binding="cookie-1").purpose == "setup"


def test_concurrent_clicks_have_one_winner(make_otp, member):
    link_otp = make_otp(plugins=[Links()], channels=["outbox:code", "outbox:link"], max_attempts=20)
    enrol(link_otp, member)
    add_link_factor(link_otp, member)
    link_otp.send_challenge(member, channel="outbox:link")
    token = token_in(link_otp)
    barrier = threading.Barrier(8)
    results: list[Any] = []

    def click() -> None:
        barrier.wait()
        results.append(link_otp.verify_token("link", token))

    threads = [threading.Thread(target=click) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.ok for r in results) == 1
    assert {r.reason for r in results if not r.ok} == {"used"}
