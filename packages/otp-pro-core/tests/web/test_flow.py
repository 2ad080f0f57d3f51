"""The flow layer on its own, with no web framework: requests as dataclasses, a dict as the session.

tests/flow_client.py is the smallest adapter (route matching, the gate, answers to replies); the tests
here drive :class:`~otp_pro.web.flow.Flow` through it and directly: the CSRF rule, malformed JSON, the
gate's answers, step-up, the route table, session rotation and the default Jinja2 renderer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flow_client import FlowClient, flow_client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otp_pro import Member, OtpPro
from otp_pro.errors import NotFound
from otp_pro.testing import Clock, enrol, outbox_code, page_csrf
from otp_pro.web.flow import (
    MAX_JSON_BYTES,
    SECURITY_HEADERS,
    Flow,
    InputError,
    Json,
    Page,
    Redirect,
    Request,
    Session,
    csrf_token,
    login,
)
from otp_pro.web.flow import state as flow_state


@pytest.fixture
def enrolled(make_otp: Callable[..., OtpPro], member: Member, clock: Clock) -> tuple[OtpPro, FlowClient]:
    """An OtpPro where ``member`` has set up codes by the outbox, and a client of a site holding only the flow."""
    otp = make_otp()
    enrol(otp, member)
    clock.advance(60)
    return otp, flow_client(otp, member)


def verified(otp: OtpPro, client: FlowClient) -> None:
    """Sign ``client`` in and pass the second step."""
    assert client.get("/login").headers["Location"] == "/otp/verify"
    token = page_csrf(client.get("/otp/verify").text)
    done = client.post("/otp/verify", data={"code": outbox_code(otp), "csrf_token": token})
    assert done.status_code == 303 and done.headers["Location"] == "/home"


# ------------------------------------------------------------------ CSRF


def test_a_post_without_the_sessions_token_is_refused(enrolled: tuple[OtpPro, FlowClient]) -> None:
    otp, client = enrolled
    client.get("/login")
    for data in ({"code": "123456"}, {"code": "123456", "csrf_token": "x" * 43}):
        refused = client.post("/otp/verify", data=data)
        assert refused.status_code == 400 and "This form has expired" in refused.text
        assert 'href="/otp/verify"' in refused.text  # the page behind the route, never a path from the request
    api = client.post("/otp/api/verify", json={"code": "123456"})
    assert api.status_code == 400 and api.json == {"ok": False, "error": "csrf", "message": api.json["message"]}
    assert not otp.events(client.flow.load_member("42"), kinds=["verify_failed"])  # nothing reached the core


def test_an_adapter_with_its_own_csrf_check_dispatches_without_the_flows(enrolled: tuple[OtpPro, FlowClient]) -> None:
    """``Route.csrf`` false: the adapter checked its framework's token (Django's), the flow does not ask."""
    from dataclasses import replace

    otp, client = enrolled
    client.get("/login")
    flow = client.flow
    request = Request(method="POST", path="/otp/verify", form={"code": outbox_code(otp)}, host="127.0.0.1")
    v = flow.visit(request, Session(client.session))
    answer = flow.dispatch(replace(flow.route("verify"), csrf=False), v)
    assert isinstance(answer, Redirect) and answer.location == "/home"


# ------------------------------------------------------------------ JSON bodies


@pytest.mark.parametrize(("body", "content_type", "status"), [
    (b"{", "application/json", 400),
    (b"[1, 2]", "application/json", 400),
    (b'{"code": NaN}', "application/json", 400),
    (b"[" * 100_000 + b"]" * 100_000, "application/json", 413),
    (b"[" * 4000 + b"]" * 4000, "application/json", 400),
    (b"\xff\xfe{}", "application/json", 400),
    (b'{"code": "123456"}', "text/plain", 400),
    (b'{"code": 123456}', "application/json", 400),
    (b'{"code": "1", "trust_device": "yes"}', "application/json", 400),
])
def test_malformed_json_is_a_400_naming_the_problem(enrolled: tuple[OtpPro, FlowClient], body: bytes,
                                                    content_type: str, status: int) -> None:
    _otp, client = enrolled
    client.get("/login")
    token = page_csrf(client.get("/otp/verify").text)
    request = Request(method="POST", path="/otp/api/verify", body=body[:MAX_JSON_BYTES + 1],
                      content_length=len(body), headers={"content-type": content_type, "x-csrf-token": token},
                      host="127.0.0.1")
    answer = client.flow.dispatch(client.flow.route("api_verify"), client.flow.visit(request, Session(client.session)))
    assert isinstance(answer, Json) and answer.status == status, answer
    assert answer.body["ok"] is False and answer.body["error"] == "bad_request" and answer.body["message"]


def test_json_object_is_typed() -> None:
    request = Request(method="POST", path="/", body=b'{"a": 1}', headers={"content-type": "application/json"})
    assert request.json_object() == {"a": 1}
    with pytest.raises(InputError) as info:
        Request(method="POST", path="/", body=b"{}", content_length=MAX_JSON_BYTES + 1,
                headers={"content-type": "application/vnd.api+json"}).json_object()
    assert info.value.status == 413


# ------------------------------------------------------------------ the gate


def test_the_gate_sends_an_unverified_login_to_verify_and_json_gets_a_401(enrolled: tuple[OtpPro, FlowClient]) -> None:
    otp, client = enrolled
    flow = client.flow

    def gate(path: str, **headers: str) -> Any:
        request = Request(method="GET", path=path, headers=headers, host="127.0.0.1", root="/site")
        return flow.gate(flow.visit(request, Session(client.session)))

    assert gate("/private") is None  # signed out: the site's own login decides
    client.get("/login")
    answer = gate("/private")
    assert isinstance(answer, Redirect) and answer.location == "/site/otp/verify?next=%2Fprivate"
    assert dict(SECURITY_HEADERS).items() <= dict(answer.headers).items()
    answer = gate("/private", accept="application/json")
    assert isinstance(answer, Json) and answer.status == 401
    assert answer.body == {"error": "verification_required", "location": "/site/otp/verify?next=%2Fprivate"}
    assert gate("/otp/settings") is None and gate("/logout") is None  # allow-listed
    verified(otp, client)
    assert gate("/private") is None


def test_the_gate_sends_a_required_member_without_a_factor_to_setup(make_otp: Callable[..., OtpPro]) -> None:
    otp = make_otp(roles={"admin": {"requirement": "required", "channels": ["totp"], "grace_days": 0}})
    client = flow_client(otp, Member("root", roles=["admin"], email="root@example.com"))
    assert client.get("/login").headers["Location"] == "/otp/setup"
    assert client.get("/private", headers={"Accept": "application/json"}).json == {
        "error": "setup_required", "location": "/otp/setup?next=%2Fprivate"}


# ------------------------------------------------------------------ step-up


def _step_up(client: FlowClient, max_age: int, **headers: str) -> Any:
    request = Request(method="GET", path="/account/delete", query_string="really=1", headers=headers,
                      host="127.0.0.1")
    return client.flow.step_up(client.flow.visit(request, Session(client.session)), max_age)


def test_step_up_asks_for_a_fresh_code_and_comes_back(enrolled: tuple[OtpPro, FlowClient], clock: Clock) -> None:
    otp, client = enrolled
    verified(otp, client)
    assert _step_up(client, 300) is None
    clock.advance(301)
    away = _step_up(client, 300)
    assert isinstance(away, Redirect) and away.location == "/otp/verify"
    json = _step_up(client, 300, accept="application/json")
    assert isinstance(json, Json) and json.status == 401 and json.body["error"] == "verification_required"
    page = client.get("/otp/verify")  # verified already, yet the form is shown: a fresh code is asked for
    assert page.status_code == 200 and 'name="code"' in page.text
    token = page_csrf(page.text)
    assert client.post("/otp/send", data={"csrf_token": token}).status_code == 303
    back = client.post("/otp/verify", data={"code": outbox_code(otp), "csrf_token": token})
    assert back.status_code == 303 and back.headers["Location"] == "/account/delete?really=1"
    assert _step_up(client, 300) is None
    assert client.get("/otp/verify").headers["Location"] == "/account/delete?really=1"  # nothing pending now


def test_step_up_is_not_skipped_by_a_trusted_device(enrolled: tuple[OtpPro, FlowClient], clock: Clock) -> None:
    otp, client = enrolled
    client.get("/login")
    token = page_csrf(client.get("/otp/verify").text)
    client.post("/otp/verify", data={"code": outbox_code(otp), "csrf_token": token, "trust": "1"})
    assert client.cookies.get(flow_state.DEVICE_COOKIE)
    clock.advance(60)
    assert client.get("/login").headers["Location"] == "/home"  # the device skips the sign-in's second step
    # But it is no fresh second step: a step-up asks for a code whatever its max_age.
    assert isinstance(_step_up(client, 30), Redirect) and isinstance(_step_up(client, 3600), Redirect)


def test_step_up_for_members_with_nothing_to_step_up_to(make_otp: Callable[..., OtpPro]) -> None:
    otp = make_otp(mode="visible", roles={"viewer": {"requirement": "not_required"}})
    signed_out = flow_client(otp, Member("v", roles=["viewer"]))
    away = _step_up(signed_out, 300)
    assert isinstance(away, Redirect) and away.location == "/login?next=%2Faccount%2Fdelete"
    viewer = flow_client(otp, Member("v", roles=["viewer"]))
    viewer.get("/login")
    assert _step_up(viewer, 300) is None  # the policy offers no second step to this member
    editor = flow_client(otp, Member("e", roles=["editor"], email="e@example.com"))
    editor.get("/login")
    away = _step_up(editor, 300)  # optional and not set up: setting one up is the way to a second step
    assert isinstance(away, Redirect) and away.location == "/otp/setup"


# ------------------------------------------------------------------ sessions, routes, pages


def test_the_session_id_is_cycled_at_login_verification_and_logout(enrolled: tuple[OtpPro, FlowClient]) -> None:
    otp, client = enrolled
    client.session["otp_pro_planted"] = "by an attacker"
    verified(otp, client)  # a login, then a passed second step
    assert client.cycles == 2 and "otp_pro_planted" not in client.session
    from otp_pro.web.flow import logout

    logout(client.flow.visit(Request(method="POST", path="/logout"), Session(client.session, cycle=client._cycle)))
    assert client.cycles == 3 and client.session == {}
    assert all(key.startswith("otp_pro_") for key in vars(flow_state) if key.startswith("K_")
               for key in [getattr(flow_state, key)])  # every session key the flow writes is prefixed


def test_the_route_table(make_otp: Callable[..., OtpPro]) -> None:
    flow = Flow(make_otp(), load_member=lambda _id: None, check_password=lambda _m, _p: False, url_prefix="/mfa/")
    names = [route.name for route in flow.routes]
    assert len(names) == len(set(names))
    assert {"verify", "send", "setup", "setup_confirm", "settings", "reauth", "backup_codes", "revoke_device",
            "disable", "factor_rename", "factor_default", "factor_remove", "factor_reconfirm", "api_status",
            "api_send", "api_verify", "api_delivery", "api_openapi"} <= set(names)
    assert all(route.api == route.name.startswith("api_") for route in flow.routes)
    assert flow.url("factor_rename", root="/site", factor_id=7) == "/site/mfa/settings/factors/7/rename"
    assert flow.url("verify", next="/a b") == "/mfa/verify?next=%2Fa%20b"
    assert flow.url("static", filename="otp_pro.css") == "/mfa/static/otp_pro.css"
    assert flow.gate_config.verify_path == "/mfa/verify"


def test_the_default_renderer_renders_the_core_templates(enrolled: tuple[OtpPro, FlowClient]) -> None:
    _otp, client = enrolled
    client.get("/login")
    page = client.get("/otp/verify")
    assert page.status_code == 200
    assert '<link rel="stylesheet" href="/otp/static/otp_pro.css">' in page.text
    assert 'action="/otp/send"' in page.text and 'action="/logout"' in page.text and "Ann" in page.text
    assert client.get("/otp/static/otp_pro.css").status_code == 200
    settings_page = client.get("/otp/settings")
    assert settings_page.status_code == 303
    assert settings_page.headers["Location"] == "/otp/verify?next=%2Fotp%2Fsettings"
    answer = Page(template="otp_pro/message.html", context={"title": "T", "message": "<b>", "link": "/"})
    html = client.flow.render(answer, client.flow.visit(Request(method="GET", path="/"), Session({})))
    assert "&lt;b&gt;" in html  # autoescaped


def test_flashed_messages_are_shown_once(enrolled: tuple[OtpPro, FlowClient]) -> None:
    _otp, client = enrolled
    client.get("/login")
    token = page_csrf(client.get("/otp/verify").text)
    client.post("/otp/send", data={"csrf_token": token})
    page = client.get("/otp/verify").text
    assert '<p class="flash info" role="status">We sent a 6-digit code' in page or \
        '<p class="flash info" role="status">We sent a code' in page, page
    assert 'class="flash' not in client.get("/otp/verify").text


def test_revoke_device_past_the_id_range_is_not_found(make_otp: Callable[..., OtpPro], member: Member) -> None:
    """The core itself: an id no database column can hold is no device (not an OverflowError from the driver)."""
    otp = make_otp()
    for number in (2**63, 10**22, -(2**63) - 1, 0, -1):
        with pytest.raises(NotFound):
            otp.revoke_device(member, number)


# ------------------------------------------------------------------ bad input of every shape

_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=300)),
                       lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8),
                                                                                              inner, max_size=3)),
                       max_leaves=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(_values, st.fixed_dictionaries({}, optional={"code": _values, "trust_device": _values,
                                                                    "channel": _values})),
       form=st.dictionaries(st.sampled_from(["code", "trust", "channel", "next", "password", "label", "token"]),
                            st.text(max_size=400), max_size=4),
       name=st.sampled_from(["api_verify", "api_send", "verify", "send", "setup", "setup_confirm", "reauth"]))
def test_flow_handlers_never_answer_500(enrolled: tuple[OtpPro, FlowClient], body: Any, form: dict[str, str],
                                        name: str) -> None:
    otp, client = enrolled
    if "otp_pro_member" not in client.session:
        client.get("/login")
    otp.unlock(client.flow.load_member("42"))  # random codes lock the member; the paths past the lock run too
    token = csrf_token(client.session)
    route = client.flow.route(name)
    if route.api:
        import json

        reply = client.post(client.flow.full_path(route), json=json.loads(json.dumps(body)),
                            headers={"X-CSRF-Token": token})
        assert isinstance(reply.json, dict) and isinstance(reply.json.get("ok"), bool)
    else:
        reply = client.post(client.flow.full_path(route), data={**form, "csrf_token": token})
    assert reply.status_code < 500


def test_login_hand_off_returns_where_to_go(make_otp: Callable[..., OtpPro], member: Member) -> None:
    otp = make_otp()
    flow = Flow(otp, load_member={member.id: member}.get, check_password=lambda _m, _p: True)
    session: dict[str, Any] = {"site_key": "kept by the site"}
    v = flow.visit(Request(method="POST", path="/login"), Session(session))
    assert login(v, member, next="https://evil.example/") == "/"  # optional, not set up: no second step
    assert session["otp_pro_member"] == "42" and "site_key" not in session
