"""Bad input at the Flask adapter's entry points: the verify form and the JSON endpoints fed random fields,
JSON bodies and raw bodies of every content type on the demo site: never a 500.

Property-based (hypothesis), with modest example counts so the suite stays fast.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otp_pro import Member
from otp_pro.testing.strategies import codes

FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])



# ------------------------------------------------------------------ the Flask extension


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4))


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=300)),
    _containers, max_leaves=12,
)
json_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={"code": st.one_of(codes.filter(lambda c: not isinstance(c, bytes)),
                                                           json_values),
                                        "trust_device": json_values, "channel": json_values}),
)
form_fields = st.dictionaries(st.sampled_from(["code", "trust", "channel", "next", "password", "email", "x"]),
                              st.one_of(st.text(max_size=300), st.text(max_size=5000)), max_size=5)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from otp_pro_flask.demo_site import create_app

    app = create_app(str(tmp_path_factory.mktemp("demo") / "demo.sqlite3"),
                     overrides={"resend_cooldown_seconds": 0, "max_sends_per_hour": 1000,
                                "max_sends_per_hour_per_recipient": 1000})
    app.config["TESTING"] = True  # an unhandled exception is raised into the test, not turned into a 500
    site = app.extensions["otp_pro_demo"]
    try:
        yield site
    finally:
        site.close()


@pytest.fixture
def signed_in(demo: Any) -> tuple[Any, str]:
    """A client signed in as the demo's editor (shared by a test's examples), and its CSRF token."""
    client = demo.app.test_client()
    page = client.get("/login")
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert token
    client.post("/login", data={"email": "editor@demo.test", "password": "editor-demo", "csrf_token": token.group(1)})
    csrf = client.get("/otp/api/status").get_json()["csrf_token"]
    return client, csrf


def _unlock_editor(demo: Any) -> None:
    # Random wrong codes lock the editor out; unlocked each example, so the code paths past the lock run too.
    demo.otp.unlock(Member("m-" + hashlib.sha256(b"editor@demo.test").hexdigest()[:12]))


@FEW
@given(fields=form_fields, with_csrf=st.booleans(), path=st.sampled_from(
    ["/otp/verify", "/otp/send", "/otp/setup", "/otp/setup/confirm", "/login", "/otp/settings/reauth"]))
def test_flask_forms_never_answer_500(demo: Any, signed_in: tuple[Any, str], fields: dict[str, str], with_csrf: bool,
                                     path: str) -> None:
    client, csrf = signed_in
    _unlock_editor(demo)
    data = dict(fields)
    if with_csrf:
        data["csrf_token"] = csrf
    response = client.post(path, data=data)
    assert response.status_code < 500, (path, response.status_code)


@FEW
@given(body=json_bodies, path=st.sampled_from(["/otp/api/verify", "/otp/api/send"]), with_csrf=st.booleans())
def test_flask_json_endpoints_never_answer_500(demo: Any, signed_in: tuple[Any, str], body: Any, path: str,
                                              with_csrf: bool) -> None:
    client, csrf = signed_in
    _unlock_editor(demo)
    headers = {"X-CSRF-Token": csrf, "Content-Type": "application/json"} if with_csrf else {
        "Content-Type": "application/json"}
    # Sent as text: the test client's ``json=None`` would send no body at all, not ``null``.
    response = client.post(path, data=json.dumps(body), headers=headers)
    assert response.status_code < 500, (path, response.status_code)
    answer = response.get_json()
    assert isinstance(answer, dict) and isinstance(answer.get("ok"), bool)


@FEW
@given(raw=st.binary(max_size=2000), content_type=st.sampled_from(
    ["application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
     "application/json; charset=latin-1"]))
def test_flask_raw_bodies_never_answer_500(demo: Any, signed_in: tuple[Any, str], raw: bytes,
                                          content_type: str) -> None:
    client, csrf = signed_in
    _unlock_editor(demo)
    for path in ("/otp/api/verify", "/otp/verify"):
        response = client.post(path, data=raw, headers={"Content-Type": content_type, "X-CSRF-Token": csrf})
        assert response.status_code < 500, (path, response.status_code)
