"""What a gated request costs the database, and that the cheap path still sees every revocation.

Statements are counted with SQLAlchemy's ``before_cursor_execute`` on the core's engine (SQLite,
and PostgreSQL when ``OTP_PRO_TEST_POSTGRES_URL`` is set). A gated request of a signed-in member
reads the member's row and factors in one statement (:meth:`OtpPro.standing`) instead of the full
status (row, factors, their last uses, backup codes left); nothing is kept between requests, so a
reset, a disable or a removed factor made elsewhere decides the very next request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flow_client import FlowClient, flow_client
from sqlalchemy import event

from otp_pro import Member, OtpPro
from otp_pro.testing import Clock, enrol, outbox_code, page_csrf

REQUIRED = {"editor": {"requirement": "required", "channels": ["outbox:code", "totp"], "grace_days": 0}}


@contextmanager
def statements(otp: OtpPro) -> Iterator[list[str]]:
    sent: list[str] = []

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    event.listen(otp.db.engine, "before_cursor_execute", on_statement)
    try:
        yield sent
    finally:
        event.remove(otp.db.engine, "before_cursor_execute", on_statement)


def signed_in_and_verified(make_otp: Callable[..., OtpPro], member: Member, clock: Clock,
                           **overrides: Any) -> tuple[OtpPro, FlowClient]:
    otp = make_otp(**overrides)
    enrol(otp, member)
    clock.advance(60)
    client = flow_client(otp, member)
    assert client.get("/login").headers["Location"] == "/otp/verify"
    token = page_csrf(client.get("/otp/verify").text)
    done = client.post("/otp/verify", data={"code": outbox_code(otp), "csrf_token": token})
    assert done.status_code == 303 and done.headers["Location"] == "/home"
    return otp, client


def test_a_verified_sessions_gated_request_costs_one_statement(
        make_otp: Callable[..., OtpPro], member: Member, clock: Clock) -> None:
    otp, client = signed_in_and_verified(make_otp, member, clock, roles=REQUIRED)
    with statements(otp) as sent:
        assert client.get("/home").status_code == 200
    # One read of the member's row joined to their factors: no BEGIN/COMMIT around it, no status listing.
    assert len(sent) == 1, sent
    assert "otp_members" in sent[0] and "otp_factors" in sent[0]
    assert "otp_backup_codes" not in sent[0] and "otp_challenges" not in sent[0]


def test_requests_the_gate_needs_nothing_for_cost_nothing(
        make_otp: Callable[..., OtpPro], member: Member, clock: Clock) -> None:
    otp = make_otp(roles=REQUIRED)
    enrol(otp, member)
    client = flow_client(otp, member)
    with statements(otp) as sent:
        assert client.get("/home").status_code == 200  # not signed in: the site's own login decides
    assert sent == []


def test_a_password_only_session_is_sent_to_verify_after_one_statement_and_the_device_check(
        make_otp: Callable[..., OtpPro], member: Member, clock: Clock) -> None:
    otp = make_otp(roles=REQUIRED)
    enrol(otp, member)
    client = flow_client(otp, member)
    assert client.get("/login").headers["Location"] == "/otp/verify"
    with statements(otp) as sent:
        gated = client.get("/home")
    assert gated.status_code == 303 and gated.headers["Location"].startswith("/otp/verify")
    # No trusted-device cookie: the standing read alone.
    assert len(sent) == 1, sent


def test_a_reset_elsewhere_decides_the_next_request(
        make_otp: Callable[..., OtpPro], member: Member, clock: Clock) -> None:
    """Required, no grace: the member's verified session is sent to set up again at once."""
    otp, client = signed_in_and_verified(make_otp, member, clock, roles=REQUIRED)
    assert client.get("/home").status_code == 200
    otp.reset(member, actor="admin")  # another process (an operator, the CLI): nothing in this session knows
    gated = client.get("/home")
    assert gated.status_code == 303 and gated.headers["Location"].startswith("/otp/setup")


def test_a_removed_last_factor_decides_the_next_request(
        make_otp: Callable[..., OtpPro], member: Member, clock: Clock) -> None:
    otp, client = signed_in_and_verified(make_otp, member, clock, roles=REQUIRED)
    assert client.get("/home").status_code == 200
    (factor,) = otp.status(member).factors
    otp.remove_factor(member, factor.id, actor="admin", force=True)
    gated = client.get("/home")
    assert gated.status_code == 303 and gated.headers["Location"].startswith("/otp/setup")


def test_the_cheap_read_agrees_with_the_full_status(
        make_otp: Callable[..., OtpPro], member: Member, clock: Clock) -> None:
    """Before enrolment (the grace period starts), during it, enrolled, disabled: the same facts as status()."""
    otp = make_otp(roles={"editor": {"requirement": "required", "channels": ["outbox:code"], "grace_days": 2}})
    seen = []
    for step in ("first look", "in grace", "enrolled", "grace over, disabled"):
        if step == "enrolled":
            enrol(otp, member)
        elif step == "grace over, disabled":
            otp.disable(member, actor="admin", force=True)
            clock.advance(3 * 86400)
        light, full = otp.standing(member), otp.status(member)
        assert (light.requirement, light.enrolled, light.must_setup, light.in_grace, light.verification_needed) == (
            full.requirement, full.enrolled, full.must_setup, full.in_grace, full.verification_needed), step
        seen.append((light.enrolled, light.in_grace, light.must_setup))
    assert seen == [(False, True, False), (False, True, False), (True, False, False), (False, False, True)]


def test_a_right_code_posted_to_the_verify_page_costs_what_verify_costs(
        make_otp: Callable[..., OtpPro], member: Member, clock: Clock) -> None:
    """The verify page checks a posted code first: a right one needs no read of the member's standing or status
    (the gate lets the page through on its path), so the request sends exactly the library call's statements."""
    from otp_pro.web.flow import state as flow_state

    otp = make_otp(roles=REQUIRED)
    enrol(otp, member)
    clock.advance(60)
    client = flow_client(otp, member)
    assert client.get("/login").headers["Location"] == "/otp/verify"  # a code sent
    token = page_csrf(client.get("/otp/verify").text)
    with statements(otp) as posted:
        done = client.post("/otp/verify", data={"code": outbox_code(otp), "csrf_token": token})
    assert done.status_code == 303 and done.headers["Location"] == "/home"
    clock.advance(60)
    binding = client.session[flow_state.K_BINDING]
    otp.send_challenge(member, binding=binding)
    with statements(otp) as direct:
        assert otp.verify(member, outbox_code(otp), binding=binding, ip="127.0.0.1").ok
    assert len(posted) == len(direct), (posted, direct)
    assert not any("otp_backup_codes" in s for s in posted)


def test_a_code_posted_by_a_member_who_must_set_up_is_sent_to_setup_uncounted(
        make_otp: Callable[..., OtpPro], member: Member, clock: Clock) -> None:
    """Checked first, a code from a member with nothing to check it against is no guess: no failure is counted,
    and the answer is the redirect to set up that a GET gets."""
    otp = make_otp(roles=REQUIRED)
    client = flow_client(otp, member)
    assert client.get("/login").headers["Location"].startswith("/otp/setup")
    from otp_pro.web.flow import security

    with client.session_transaction() as session:  # the form's token, as the setup page would have made it
        token = security.csrf_token(session)
    answer = client.post("/otp/verify", data={"code": "123456", "csrf_token": token})
    assert answer.status_code == 303 and answer.headers["Location"].startswith("/otp/setup")
    assert otp.status(member).locked_until is None
    assert not otp.events(member, kinds=["verify_failed"])
