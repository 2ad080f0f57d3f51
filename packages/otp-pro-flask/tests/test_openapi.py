"""The JSON API's OpenAPI document: it lists exactly the API's routes, and the API answers as it says.

The last test is a schemathesis run over the document, loaded from the demo site's running Flask app
(WSGI, no socket): every operation is called with generated bodies, valid and invalid, from a signed-in
member's session with its CSRF token, and each answer must be no server error and must match the
document (status code, content type, body schema, headers such as ``Retry-After``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from webkit import built_site, last_code, sign_in

from otp_pro import OtpPro
from otp_pro.web.flow import openapi
from otp_pro_flask import OtpProFlask
from otp_pro_flask.demo_site import DemoSite

DOCUMENT = "/otp/api/openapi.json"
MEMBER = ("api@demo.test", "pw-api")
#: Examples per operation and generation mode: enough to reach the refusals, the send throttle and the
#: lockout, while the whole run stays well within a minute.
MAX_EXAMPLES = 200
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSite]:
    with built_site(tmp_path_factory.mktemp("openapi") / "demo.sqlite3", resend_cooldown_seconds=0) as demo:
        demo.add_member(*MEMBER, enroll_on="email:code")
        yield demo


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item
            if method.upper() in METHODS}


def routed(app: Flask, prefix: str) -> set[tuple[str, str]]:
    """``(method, path)`` of every route under ``<prefix>/api/``, the path relative to ``prefix``."""
    return {(method, rule.rule.removeprefix(prefix)) for rule in app.url_map.iter_rules()
            if rule.rule.startswith(f"{prefix}/api/") for method in (rule.methods or set()) & METHODS}


def test_every_api_route_is_in_the_document_and_back(site: DemoSite) -> None:
    document = site.app.test_client().get(DOCUMENT).get_json()
    assert documented(document) == routed(site.app, "/otp")
    assert {path for _, path in documented(document)} >= {"/api/status", "/api/send", "/api/verify"}


def test_the_document_is_served_to_anyone_with_the_apps_prefix_and_cookie(tmp_path: Path) -> None:
    otp = OtpPro({"secret_key": "k" * 40, "database_url": f"sqlite:///{tmp_path / 'plain.sqlite3'}",
                  "channels": ["outbox:code"], "default_channel": "outbox:code"}, entry_points=False)
    app = Flask(__name__)
    app.secret_key = "test-secret"
    app.config["SESSION_COOKIE_NAME"] = "site_session"
    OtpProFlask(app, otp, load_member=lambda _id: None, check_password=lambda _m, _p: False, url_prefix="/mfa")
    try:
        answer = app.test_client().get("/mfa/api/openapi.json")
        assert answer.status_code == 200 and answer.mimetype == "application/json"
        document = answer.get_json()
        assert document["openapi"].startswith("3.1") and document["servers"] == [{"url": "/mfa"}]
        assert document["components"]["securitySchemes"]["session"]["name"] == "site_session"
        assert re.fullmatch(r"\d+\.\d+\.\d+.*", document["info"]["version"])
        assert documented(document) == routed(app, "/mfa")
    finally:
        otp.close()


def test_the_gate_lets_the_document_through_before_the_second_step(site: DemoSite) -> None:
    client = site.app.test_client()
    sign_in(client, *MEMBER)
    assert client.get("/protected", headers={"Accept": "application/json"}).status_code == 401  # gated
    assert client.get(DOCUMENT, headers={"Accept": "application/json"}).status_code == 200


@pytest.fixture(scope="module")
def api_schema(site: DemoSite) -> Any:
    return schemathesis.openapi.from_wsgi(DOCUMENT, site.app)


def signed_in(site: DemoSite, email: str, password: str) -> dict[str, Any]:
    """A new browser of the member after the password step: the session cookie and CSRF header to send."""
    client = site.app.test_client()
    sign_in(client, email, password)
    cookie = client.get_cookie("session")
    assert cookie is not None
    token = client.get("/otp/api/status").get_json()["csrf_token"]
    return {"cookies": {"session": cookie.value}, "headers": {"X-CSRF-Token": token}}


@pytest.fixture(scope="module")
def member_session(site: DemoSite) -> dict[str, Any]:
    """The member signed in with the password, the second step to come (what the API is for)."""
    return signed_in(site, *MEMBER)


#: No 5xx; the status code, content type, body and headers as documented; an invalid request refused with a 4xx.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, negative_data_rejection]
#: The operations, from the data file (the served document, whose paths the first test compares with the routes).
_DOCUMENT = openapi.document("/otp")
OPERATIONS = sorted(documented(_DOCUMENT), key=lambda item: (item[1], item[0]))
#: Negative examples need something to get wrong: only the operations that take a body have them.
RUNS = [(method, path, mode) for method, path in OPERATIONS for mode in schemathesis.GenerationMode
        if mode is schemathesis.GenerationMode.POSITIVE or "requestBody" in _DOCUMENT["paths"][path][method.lower()]]


# schemathesis's own pytest integration (schema.parametrize, from_fixture) is not used: its lazy loader sets
# a private attribute of pytest's test items (``_nodeid``) that pytest 9.2 no longer has. Its public
# strategies, with Hypothesis's @given, run the same generation and checks.
@pytest.mark.parametrize(("method", "path", "mode"), RUNS, ids=[f"{m} {p} {mode.value}" for m, p, mode in RUNS])
def test_the_api_matches_its_openapi_document(api_schema: Any, site: DemoSite, member_session: dict[str, Any],
                                              method: str, path: str, mode: schemathesis.GenerationMode) -> None:
    @given(case=api_schema[path][method].as_strategy(mode))
    # derandomize: CI runs the same examples each time, so a red run is a change in the code, not luck.
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
    def check(case: Any) -> None:
        # The member is never unlocked meanwhile: the run walks from codes refused one by one into the
        # lockout (429 with Retry-After) and the send throttle, as a client would.
        case.call_and_validate(headers=member_session["headers"], cookies=member_session["cookies"], checks=CHECKS)

    check()


def test_the_answers_no_generated_example_reaches_match_the_document(api_schema: Any, site: DemoSite) -> None:
    """A right code (verified, a trusted-device cookie set), then wrong codes into the lockout, checked alike."""
    email, password = "api-right@demo.test", "pw-api-right"
    member = site.add_member(email, password, enroll_on="email:code")
    verify = api_schema["/api/verify"]["POST"]
    browser = signed_in(site, email, password)
    code = last_code(site, email)
    done = verify.Case(body={"code": code, "trust_device": True}).call_and_validate(**browser, checks=CHECKS)
    assert done.status_code == 200 and done.json()["ok"] is True
    browser = signed_in(site, email, password)  # a new login on another browser: the second step again
    wrong = {"code": "000000" if last_code(site, email) != "000000" else "111111"}
    for _ in range(site.otp.settings.max_attempts):
        assert verify.Case(body=wrong).call_and_validate(**browser, checks=CHECKS).status_code in (200, 429)
    locked = verify.Case(body=wrong).call_and_validate(**browser, checks=CHECKS)
    retry_after = {name.lower(): values for name, values in locked.headers.items()}["retry-after"]
    assert locked.status_code == 429 and retry_after == [str(site.otp.settings.lockout_seconds)]
    assert site.otp.status(member).locked_until is not None


def test_a_throttled_send_says_when_to_try_again(api_schema: Any, site: DemoSite) -> None:
    email, password = "api-throttled@demo.test", "pw-api-throttled"
    site.add_member(email, password, enroll_on="email:code")
    browser = signed_in(site, email, password)
    send = api_schema["/api/send"]["POST"]
    answers = [send.Case(body={}).call_and_validate(**browser, checks=CHECKS)
               for _ in range(site.otp.settings.max_sends_per_hour)]
    throttled = answers[-1]
    assert throttled.status_code == 429 and throttled.json()["error"] == "throttled"
    retry_after = {name.lower(): values for name, values in throttled.headers.items()}["retry-after"]
    assert retry_after == [str(throttled.json()["retry_after"])] and 0 < int(retry_after[0]) <= 3600
