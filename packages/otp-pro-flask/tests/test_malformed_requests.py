"""Malformed requests get a 4xx with a clear message, never a 500, and error pages link only to the site's own pages.

Everything goes through the demo site's real Flask app (test client, ``TESTING`` on, so an exception in a
view fails the test instead of hiding behind a 500 page).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from webkit import built_site, csrf_of, last_code, sign_in

from otp_pro.web.flow import MAX_JSON_BYTES
from otp_pro_flask.demo_site import DemoSite

JSON_ENDPOINTS = ("/otp/api/verify", "/otp/api/send", "/login/ajax/api")
#: Nested deeper than Python's recursion limit, yet under the body size limit: the parser's RecursionError.
DEEP_ARRAYS = "[" * 4000 + "]" * 4000
DEEP_OBJECTS = '{"a":' * 1300 + "1" + "}" * 1300
#: Path segments that are not a device id: CR/LF (a header injection attempt), past the id column's range,
#: digits that int() or str.isdigit() take but are no ASCII digits.
NOT_DEVICE_IDS = ("%0D%0AX-Evil:%201", "1%0A", "99999999999999999999999", "9223372036854775808", "%C2%B2",
                  "%E2%91%A0", "%D9%A1", "0", "abc")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSite]:
    """One demo site for the module (building one takes seconds); each test signs in a member of its own."""
    with built_site(tmp_path_factory.mktemp("malformed") / "demo.sqlite3", resend_cooldown_seconds=0) as demo:
        yield demo


@pytest.fixture
def account(site: DemoSite) -> tuple[str, str]:
    """A new member's email and password, set up with codes by email."""
    email = f"{secrets.token_hex(6)}@demo.test"
    site.add_member(email, "pw-" + email, enroll_on="email:code")
    return email, "pw-" + email


@pytest.fixture
def client(site: DemoSite, account: tuple[str, str]) -> Any:
    """A browser signed in as ``account``, password step only (the code not entered yet)."""
    browser = site.app.test_client()
    sign_in(browser, *account)
    return browser


@pytest.fixture(scope="module")
def refusing(site: DemoSite) -> Any:
    """A browser signed in (password step only) for the tests whose requests are refused before the core."""
    email = "refused@demo.test"
    site.add_member(email, "pw-refused", enroll_on="email:code")
    browser = site.app.test_client()
    sign_in(browser, email, "pw-refused")
    return browser


def post_json(client: Any, path: str, body: str | bytes, **headers: str) -> Any:
    token = client.get("/otp/api/status").get_json()["csrf_token"]
    return client.post(path, data=body, headers={"Content-Type": "application/json", "X-CSRF-Token": token,
                                                 **headers})


def refusal(response: Any, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.mimetype == "application/json"
    body: dict[str, Any] = response.get_json()
    assert body["ok"] is False and body["error"] == "bad_request" and body["message"]
    return body


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
@pytest.mark.parametrize("body", [DEEP_ARRAYS, DEEP_OBJECTS], ids=["arrays", "objects"])
def test_deeply_nested_json_is_a_400(refusing: Any, path: str, body: str) -> None:
    assert len(body) < MAX_JSON_BYTES
    assert "not valid JSON" in refusal(post_json(refusing, path, body))["message"]


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
def test_a_body_over_the_limit_is_a_413(refusing: Any, path: str) -> None:
    body = '{"code": "' + "1" * MAX_JSON_BYTES + '"}'
    assert "too large" in refusal(post_json(refusing, path, body), 413)["message"]


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
@pytest.mark.parametrize("body", ["[1]", '"code"', "null", "5", "true", "", "{", '{"code": NaN}'])
def test_a_body_that_is_not_a_json_object_is_a_400(refusing: Any, path: str, body: str) -> None:
    assert "JSON object" in refusal(post_json(refusing, path, body))["message"]


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
def test_a_body_that_is_not_utf8_is_a_400(refusing: Any, path: str) -> None:
    body = b'{"code": "\xff\xfe", "email": "\xc3", "password": "x"}'
    assert "UTF-8" in refusal(post_json(refusing, path, body))["message"]


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/otp/api/verify", {"code": 123456}, "code"),
    ("/otp/api/verify", {"code": ["123456"]}, "code"),
    ("/otp/api/verify", {"code": {"digits": "123456"}}, "code"),
    ("/otp/api/verify", {"code": True}, "code"),
    ("/otp/api/verify", {"code": "123456", "trust_device": "yes"}, "trust_device"),
    ("/otp/api/verify", {"code": "123456", "trust_device": 1}, "trust_device"),
    ("/otp/api/send", {"channel": 5}, "channel"),
    ("/otp/api/send", {"channel": ["email:code"]}, "channel"),
    ("/login/ajax/api", {"email": ["editor@demo.test"], "password": "editor-demo"}, "email"),
    ("/login/ajax/api", {"email": "editor@demo.test", "password": 12345}, "password"),
])
def test_a_field_of_the_wrong_type_is_named(refusing: Any, path: str, body: dict[str, Any], field: str) -> None:
    token = refusing.get("/otp/api/status").get_json()["csrf_token"]
    answer = refusal(refusing.post(path, json=body, headers={"X-CSRF-Token": token}))
    assert answer["field"] == field and answer["message"].startswith(f"{field} must be")


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/otp/api/verify", {"code": "1" * 257}, "code"),
    ("/otp/api/send", {"channel": "email:" + "x" * 100}, "channel"),
    ("/login/ajax/api", {"email": "e" * 250 + "@demo.test", "password": "x"}, "email"),
    ("/login/ajax/api", {"email": "editor@demo.test", "password": "x" * 1025}, "password"),
])
def test_an_overlong_string_is_named(site: DemoSite, account: tuple[str, str], client: Any, path: str,
                                     body: dict[str, Any], field: str) -> None:
    member = site.store.check_login(*account)
    assert member is not None
    token = client.get("/otp/api/status").get_json()["csrf_token"]
    answer = refusal(client.post(path, json=body, headers={"X-CSRF-Token": token}))
    assert answer["field"] == field and f"{field} is too long" in answer["message"]
    # Refused before the core saw it: no failed attempt was counted.
    assert site.otp.status(member).locked_until is None
    assert not [e for e in site.otp.events(member, kinds=["verify_failed"])]


def test_the_api_answers_json_when_the_csrf_check_fails(refusing: Any) -> None:
    # No token and a form body: the API still answers in JSON, as its document says.
    for path in ("/otp/api/send", "/otp/api/verify"):
        refused = refusing.post(path, data={"code": "123456"})
        assert refused.status_code == 400 and refused.mimetype == "application/json"
        assert refused.get_json()["error"] == "csrf"


def test_a_valid_request_still_works(site: DemoSite, account: tuple[str, str], client: Any) -> None:
    token = client.get("/otp/api/status").get_json()["csrf_token"]
    sent = client.post("/otp/api/send", json={"channel": None}, headers={"X-CSRF-Token": token})
    assert sent.status_code == 200 and sent.get_json()["ok"] is True
    done = client.post("/otp/api/verify", json={"code": last_code(site, account[0]), "trust_device": False},
                       headers={"X-CSRF-Token": token})
    assert done.get_json() == {"ok": True, "message": "Verified.", "location": "/protected"}


def _confirmed(site: DemoSite, account: tuple[str, str], client: Any) -> str:
    """Verify the login on a trusted device and confirm password + code: the settings may change."""
    email, password = account
    client.post("/otp/verify", data={"code": last_code(site, email), "trust": "1",
                                     "csrf_token": csrf_of(client, "/otp/verify")})
    token = csrf_of(client, "/otp/settings")
    client.post("/otp/send", data={"next": "/otp/settings", "csrf_token": token})
    confirmed = client.post("/otp/settings/reauth", data={"password": password, "code": last_code(site, email),
                                                          "csrf_token": token}, follow_redirects=True)
    assert "Confirmed" in confirmed.text
    return token


def _no_such_device(response: Any) -> None:
    assert response.status_code == 404, (response.status_code, response.text[:300])
    assert "That device is not in your list" in response.text
    assert "\r" not in response.headers.get("Location", "") and "X-Evil" not in response.headers


@pytest.mark.parametrize("device", NOT_DEVICE_IDS)
def test_a_revoke_path_without_a_device_id_is_a_404(site: DemoSite, account: tuple[str, str], client: Any,
                                                    device: str) -> None:
    token = _confirmed(site, account, client)
    _no_such_device(client.post(f"/otp/settings/devices/{device}/revoke", data={"csrf_token": token}))
    # The member's real device is untouched, and a real id still works.
    member = site.store.check_login(*account)
    assert member is not None
    (real,) = site.otp.trusted_devices(member)
    done = client.post(f"/otp/settings/devices/{real.id}/revoke", data={"csrf_token": token}, follow_redirects=True)
    assert "The device was removed" in done.text


@pytest.mark.parametrize("device", ["%0D%0AX-Evil:%201", "%E2%91%A0"])
def test_a_revoke_path_without_a_device_id_is_a_404_when_signed_out(site: DemoSite, device: str) -> None:
    browser = site.app.test_client()
    _no_such_device(browser.post(f"/otp/settings/devices/{device}/revoke", data={"csrf_token": csrf_of(browser)}))


def test_the_way_to_the_login_page_keeps_the_path_quoted(site: DemoSite) -> None:
    browser = site.app.test_client()
    answer = browser.post("/otp/settings/backup-codes", data={"csrf_token": csrf_of(browser)})
    assert answer.status_code == 303 and answer.headers["Location"] == "/login?next=%2Fotp%2Fsettings%2Fbackup-codes"


def links(page: str) -> list[str]:
    return re.findall(r'<a [^>]*href="([^"]*)"', page)


@pytest.mark.parametrize(("path", "expected"), [
    ("/%5Cevil.example", "/protected"),  # not one of the extension's pages: the site's home
    ("/%5C%5Cevil.example/otp/verify", "/protected"),
    ("/otp/verify", "/otp/verify"),
    ("/otp/settings/reauth", "/otp/settings"),
    ("/otp/setup/confirm", "/otp/setup"),
    ("/login", "/login"),
])
def test_a_failure_page_links_to_the_sites_own_pages(site: DemoSite, path: str, expected: str) -> None:
    browser = site.app.test_client()
    refused = browser.post(path, data={"code": "123456"})  # no CSRF token
    assert refused.status_code == 400 and "This form has expired" in refused.text
    found = links(refused.text)
    assert expected in found
    assert not [link for link in found if "evil" in link or "\\" in link], found


@pytest.mark.parametrize("action", ["rename", "default", "remove", "reconfirm"])
def test_a_factor_path_without_a_factor_id_is_a_404(site: DemoSite, account: tuple[str, str], client: Any,
                                                    action: str) -> None:
    token = _confirmed(site, account, client)
    signed_out = site.app.test_client()
    for factor in NOT_DEVICE_IDS:
        for browser, csrf in ((client, token), (signed_out, csrf_of(signed_out))):
            answer = browser.post(f"/otp/settings/factors/{factor}/{action}", data={"csrf_token": csrf})
            assert answer.status_code == 404, (factor, answer.status_code, answer.text[:300])
            assert "That sign-in method is not in your list" in answer.text and "X-Evil" not in answer.headers
    member = site.store.check_login(*account)
    assert member is not None and len(site.otp.factors(member)) == 1  # untouched
