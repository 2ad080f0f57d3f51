"""The operator console in the flow layer, through the framework-free client (tests/flow_client.py).

Who gets in (404 for anyone but a verified operator), the member pages and actions (CSRF, confirmation,
the operator as the audit row's actor, the same core calls the CLI makes), the audit log's filters,
keyset paging and streaming export, and that no secret reaches a page.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from core_support import SECRET_KEY
from flow_client import FlowClient

from otp_pro import Member, OtpPro, hookimpl
from otp_pro.testing import Clock, enrol, outbox_code, page_csrf
from otp_pro.web.flow import Download, Flow, Redirect, Request, Session, login

OPERATOR = Member(id="op-1", roles=["staff"], email="op@example.com", name="Olive Operator")
MEMBER = Member(id="42", roles=["editor"], email="ann@example.com", name="Ann")
OTHER = Member(id="420", roles=["editor"], email="bob@example.com", name="Bob")
STAFF = Member(id="op-2", roles=["staff"], email="op2@example.com", name="Sam Staff")
PEOPLE = {m.id: m for m in (OPERATOR, MEMBER, OTHER, STAFF)}
ROLES = {"staff": {"requirement": "required"}, "editor": {"requirement": "optional"}}


class Lookup:
    """The site's member lookup: the console's pages and actions load members through it."""

    @hookimpl
    def otp_pro_member_lookup(self, otp: OtpPro, member_id: str) -> Member | None:
        return PEOPLE.get(member_id)

#: Every console page an operator can GET, with a query that makes it show something.
PAGES = ("/otp/operator/members?q=42", "/otp/operator/member?id=42", "/otp/operator/member/reset?id=42",
         "/otp/operator/audit", "/otp/operator/audit/export?format=csv", "/otp/operator/statistics",
         "/otp/operator/providers")


def console(otp: OtpPro, who: Member) -> FlowClient:
    """A client of a site whose operators are the members with the ``staff`` role, signed in as ``who``."""
    flow = Flow(otp, load_member=PEOPLE.get, check_password=lambda _m, _p: True, secure_cookies=False,
                operator=lambda m: "staff" in m.roles)

    def sign_in(v: Any) -> Redirect:
        return Redirect(location=login(v, who, next="/home"))

    return FlowClient(flow, views={"/login": sign_in, "/home": lambda v: "home page"})


def verified(otp: OtpPro, client: FlowClient) -> str:
    """Sign in and pass the second step; the session's CSRF token."""
    assert client.get("/login").headers["Location"] == "/otp/verify"
    token = page_csrf(client.get("/otp/verify").text)
    done = client.post("/otp/verify", data={"code": outbox_code(otp), "csrf_token": token})
    assert done.status_code == 303, done.text
    return page_csrf(client.get("/otp/settings").text)  # the token of the session after it rotated


def operator_signed_in(otp: OtpPro, clock: Clock, member: Member = MEMBER) -> tuple[FlowClient, str]:
    """The operator and ``member`` given codes by the outbox; the operator signed in to the console and verified:
    the client and the session's CSRF token."""
    enrol(otp, OPERATOR)
    enrol(otp, member)
    clock.advance(60)
    client = console(otp, OPERATOR)
    return client, verified(otp, client)


@pytest.fixture
def site(make_otp: Callable[..., OtpPro], clock: Clock) -> tuple[OtpPro, FlowClient, str]:
    """An OtpPro where the operator and member 42 have codes by the outbox; the operator signed in, verified."""
    otp = make_otp(roles=ROLES, plugins=[Lookup()])
    return (otp, *operator_signed_in(otp, clock))


def actions_by(otp: OtpPro, kind: str) -> list[Any]:
    return [e for e in otp.events(MEMBER, kinds=[kind]) if e.actor == f"console:{OPERATOR.id}"]


# --------------------------------------------------------------- access


def test_the_console_is_not_mounted_unless_the_site_names_its_operators(otp: OtpPro) -> None:
    flow = Flow(otp, load_member=PEOPLE.get, check_password=lambda _m, _p: True)
    assert not [r for r in flow.routes if r.name.startswith("operator")]
    mounted = Flow(otp, load_member=PEOPLE.get, check_password=lambda _m, _p: True, operator=lambda m: True)
    assert {r.name for r in mounted.routes if r.name.startswith("operator")} == {
        "operator_members", "operator_member", "operator_action", "operator_audit", "operator_audit_export",
        "operator_statistics", "operator_providers", "operator_provider_test"}


def test_a_member_who_is_not_an_operator_gets_404_everywhere(make_otp: Callable[..., OtpPro], clock: Clock) -> None:
    otp = make_otp()
    enrol(otp, MEMBER)
    clock.advance(60)
    client = console(otp, MEMBER)
    token = verified(otp, client)
    for path in PAGES:
        assert client.get(path).status_code == 404, path
    refused = client.post("/otp/operator/member/reset", data={"member_id": "42", "csrf_token": token})
    assert refused.status_code == 404
    assert not otp.events(MEMBER, kinds=["reset"])
    signed_out = console(otp, MEMBER)
    assert all(signed_out.get(path).status_code == 404 for path in PAGES)


def test_an_operator_must_pass_a_recent_second_step(make_otp: Callable[..., OtpPro], clock: Clock) -> None:
    otp = make_otp(roles=ROLES)
    client = console(otp, OPERATOR)
    client.get("/login")  # signed in, never set up
    refused = client.get("/otp/operator/members")
    assert refused.status_code == 403 and "Set up two-step verification" in refused.text
    enrol(otp, OPERATOR)
    clock.advance(60)
    client = console(otp, OPERATOR)
    client.get("/login")  # signed in, second step not passed yet
    away = client.get("/otp/operator/members")
    assert away.status_code == 303 and away.headers["Location"] == "/otp/verify"
    verified_client = console(otp, OPERATOR)
    verified(otp, verified_client)
    assert verified_client.get("/otp/operator/members").status_code == 200
    clock.advance(3601)  # operator_max_age later: a fresh code first
    assert verified_client.get("/otp/operator/members").headers["Location"] == "/otp/verify"


def test_each_console_request_asks_the_operator_check_once(make_otp: Callable[..., OtpPro], clock: Clock) -> None:
    """The route guard leaves the operator on the visit: no handler asks the site's check (nor the step-up) again."""
    otp = make_otp(roles=ROLES, plugins=[Lookup()])
    enrol(otp, OPERATOR)
    enrol(otp, MEMBER)
    clock.advance(60)
    asked: list[str] = []

    def is_operator(m: Member) -> bool:
        asked.append(m.id)
        return "staff" in m.roles

    flow = Flow(otp, load_member=PEOPLE.get, check_password=lambda _m, _p: True, secure_cookies=False,
                operator=is_operator)
    client = FlowClient(flow, views={"/login": lambda v: Redirect(location=login(v, OPERATOR, next="/home")),
                                     "/home": lambda v: "home page"})
    token = verified(otp, client)
    for path in PAGES:
        asked.clear()
        assert client.get(path).status_code == 200, path
        assert asked == [OPERATOR.id], path
    asked.clear()
    done = client.post("/otp/operator/member/unlock", data={"member_id": "42", "csrf_token": token})
    assert done.status_code == 303 and asked == [OPERATOR.id]


# -------------------------------------------------------------- members


def test_search_by_exact_id_id_prefix_and_email(site: tuple[OtpPro, FlowClient, str]) -> None:
    otp, client, _ = site
    enrol(otp, OTHER)
    exact = client.get("/otp/operator/members?q=42").text
    assert re.findall(r'href="/otp/operator/member\?id=(\w+)"', exact) == ["42", "420"]
    by_mail = client.get("/otp/operator/members?q=BOB@example.com").text
    assert re.findall(r'href="/otp/operator/member\?id=(\w+)"', by_mail) == ["420"]
    assert "No member matches" in client.get("/otp/operator/members?q=nobody%25").text
    # "_" and "%" are characters, not LIKE patterns.
    assert "No member matches" in client.get("/otp/operator/members?q=4_").text


def test_the_member_page_shows_where_they_stand_and_no_secret(site: tuple[OtpPro, FlowClient, str]) -> None:
    otp, client, _ = site
    backup = enrol(otp, OTHER, "totp")
    code = outbox_code(otp)
    shown = client.get("/otp/operator/member?id=420")
    assert shown.status_code == 200
    text = shown.text
    assert 'id="member-id">420<' in text and "on (totp)" in text and "setup_completed" in text
    assert "Backup codes</dt><dd>10 left" in text
    factors = otp.factors(OTHER)
    assert f'id="factor-{factors[0].id}"' in text
    with otp.db.read() as conn:
        from otp_pro.storage.schema import factors as factor_rows
        seed = conn.execute(factor_rows.select()).fetchall()
    secrets = [code, *backup, *(row.secret for row in seed if row.secret), SECRET_KEY]
    for path in ("/otp/operator/member?id=420", "/otp/operator/member?id=42", "/otp/operator/audit",
                 "/otp/operator/members?q=420", "/otp/operator/audit/export?format=jsonl"):
        page = client.get(path).text
        assert not [s for s in secrets if s in page], path


def test_an_unknown_id_is_a_404_not_an_empty_member(site: tuple[OtpPro, FlowClient, str]) -> None:
    _, client, _ = site
    missing = client.get("/otp/operator/member?id=nobody")
    assert missing.status_code == 404 and "otp-pro holds nothing" in missing.text


@pytest.mark.parametrize("verb, kind", [("reset", "reset"), ("disable", "disabled"), ("unlock", "unlocked"),
                                        ("remove-factor", "factor_removed")])
def test_each_action_confirms_needs_csrf_and_is_audited_with_the_operator(
        site: tuple[OtpPro, FlowClient, str], verb: str, kind: str) -> None:
    otp, client, token = site
    factor = otp.factors(MEMBER)[0].id
    query = f"id=42&factor={factor}" if verb == "remove-factor" else "id=42"
    confirm = client.get(f"/otp/operator/member/{verb}?{query}")
    assert confirm.status_code == 200 and 'name="csrf_token"' in confirm.text and 'value="42"' in confirm.text
    assert not otp.events(MEMBER, kinds=[kind])  # looking changes nothing
    form = {"member_id": "42", "factor_id": str(factor), "force": "yes"}
    for bad in ({}, {"csrf_token": "x" * 43}):
        refused = client.post(f"/otp/operator/member/{verb}", data={**form, **bad})
        assert refused.status_code == 400 and "expired" in refused.text
    assert not otp.events(MEMBER, kinds=[kind])
    done = client.post(f"/otp/operator/member/{verb}", data={**form, "csrf_token": token},
                       headers={"User-Agent": "Console Browser/1.0"})
    assert done.status_code == 303 and done.headers["Location"] == "/otp/operator/member?id=42"
    [event] = actions_by(otp, kind)
    assert (event.ip, event.user_agent) == ("127.0.0.1", "Console Browser/1.0")
    page = client.get(done.headers["Location"]).text
    assert 'class="flash info"' in page and f"console:{OPERATOR.id}" in page


def test_disabling_a_required_member_needs_the_force_box(site: tuple[OtpPro, FlowClient, str]) -> None:
    otp, client, token = site
    enrol(otp, STAFF)
    back = client.post("/otp/operator/member/disable", data={"member_id": "op-2", "csrf_token": token})
    assert back.status_code == 303 and back.headers["Location"].startswith("/otp/operator/member/disable?")
    assert not otp.events(STAFF, kinds=["disabled"]) and otp.status(STAFF).enrolled
    assert "Tick the box" in client.get(back.headers["Location"]).text
    client.post("/otp/operator/member/disable", data={"member_id": "op-2", "force": "yes", "csrf_token": token})
    assert not otp.status(STAFF).enrolled


def test_an_operator_acting_on_a_member_nobody_knows_ticks_the_box(
        make_otp: Callable[..., OtpPro], clock: Clock) -> None:
    """Neither the core's member lookup nor the site's ``load_member`` knows the id, but otp-pro holds state for it:
    the roles are unknown, so the policy cannot be checked, as ``otp-pro members disable`` without ``--force``."""
    otp = make_otp(roles=ROLES)
    ghost = Member("ghost", email="ghost@example.com")
    client, token = operator_signed_in(otp, clock, ghost)
    assert "Roles and addresses unknown" in client.get("/otp/operator/member?id=ghost").text
    back = client.post("/otp/operator/member/disable", data={"member_id": "ghost", "csrf_token": token})
    assert back.status_code == 303 and "roles are unknown" in client.get(back.headers["Location"]).text
    assert otp.status(ghost).enrolled
    client.post("/otp/operator/member/disable", data={"member_id": "ghost", "force": "yes", "csrf_token": token})
    assert not otp.status(ghost).enrolled


def test_the_sites_load_member_tells_the_console_the_roles(make_otp: Callable[..., OtpPro], clock: Clock) -> None:
    """No member lookup in the core, but the adapter's ``load_member`` knows the member: roles known."""
    client, _token = operator_signed_in(make_otp(roles=ROLES), clock)
    page = client.get("/otp/operator/member?id=42").text
    assert "Roles and addresses unknown" not in page and 'id="requirement">optional<' in page


# ------------------------------------------------------------ audit log


def test_the_audit_log_pages_by_key_and_keeps_its_filters(site: tuple[OtpPro, FlowClient, str]) -> None:
    otp, client, _ = site
    for n in range(120):
        otp.record_event("verify_failed", "42", outcome="failed", ip=f"10.0.0.{n % 2}", reason="wrong_code")
    seen: list[str] = []
    url: str | None = "/otp/operator/audit?member=42&kind=verify_failed&ip=10.0.0.1"
    pages = 0
    while url:
        text = client.get(url).text
        seen += re.findall(r"<tr><td>[^<]+</td><td>verify_failed</td>", text)
        assert "10.0.0.0" not in text
        found = re.search(r'id="older" rel="next" href="([^"]+)"', text)
        url = found.group(1).replace("&amp;", "&") if found else None
        if url:
            assert "member=42" in url and "kind=verify_failed" in url and "ip=10.0.0.1" in url and "before=" in url
        pages += 1
    assert len(seen) == 60 and pages == 2


def test_a_bad_filter_is_said_not_guessed(site: tuple[OtpPro, FlowClient, str]) -> None:
    _, client, _ = site
    bad = client.get("/otp/operator/audit?since=yesterday&outcome=maybe")
    assert bad.status_code == 400 and "since:" in bad.text and "outcome: choose" in bad.text


def test_the_export_streams_csv_and_json_lines_oldest_first(site: tuple[OtpPro, FlowClient, str]) -> None:
    otp, client, _ = site
    otp.record_event("verify_failed", "42", outcome="failed", user_agent="=HYPERLINK(1)")
    flow = client.flow
    request = Request(method="GET", path="/otp/operator/audit/export", args={"format": "jsonl", "member": "42"},
                      host="127.0.0.1")
    answer = flow.dispatch(flow.route("operator_audit_export"), flow.visit(request, Session(client.session)))
    assert isinstance(answer, Download) and answer.content_type.startswith("application/x-ndjson")
    assert answer.disposition().startswith('attachment; filename="otp-pro-audit-')
    assert not isinstance(answer.chunks, (list, str))  # an iterator: nothing read before the body is taken
    rows = [json.loads(line) for line in "".join(answer.chunks).splitlines()]
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows) and {r["member_id"] for r in rows} == {"42"}
    text = client.get("/otp/operator/audit/export?format=csv&member=42").text
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == len(rows) and table[-1]["user_agent"] == "'=HYPERLINK(1)"
    assert client.get("/otp/operator/audit/export?format=xml").status_code == 400
    exports = otp.events(kinds=["audit_exported"])
    assert [(e.actor, e.details["format"], e.details["filters"]) for e in exports] == [
        ("console:op-1", "csv", {"member": "42"}), ("console:op-1", "jsonl", {"member": "42"})]
