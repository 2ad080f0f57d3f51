"""The gate's decision table, path matching, and the WSGI middleware over real HTTP."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otp_pro.web import NOTICE, PASS, SETUP, VERIFY, GateConfig, OtpProMiddleware, SessionFacts, decide, is_allowed
from otp_pro.web.gate import GRACE_NOTICE, default_allow, normalize_path

SIGNED = {"signed_in": True, "member_id": "m1"}
ENROLLED_OPTIONAL = {**SIGNED, "requirement": "optional", "enrolled": True}
ENROLLED_REQUIRED = {**SIGNED, "requirement": "required", "enrolled": True}

# Every row of the decision table: (facts, path, expected action).
TABLE = [
    pytest.param({}, "/admin", PASS, id="anonymous-protected"),
    pytest.param({}, "/login", PASS, id="anonymous-login"),
    pytest.param({"signed_in": True}, "/admin", PASS, id="signed-in-without-member-id"),
    pytest.param({**SIGNED, "requirement": "not_required"}, "/admin", PASS, id="not-required"),
    pytest.param({**SIGNED, "requirement": "optional"}, "/admin", PASS, id="optional-not-enrolled"),
    pytest.param(ENROLLED_OPTIONAL, "/admin", VERIFY, id="optional-enrolled-unverified"),
    pytest.param({**ENROLLED_OPTIONAL, "verified": True}, "/admin", PASS, id="optional-enrolled-verified"),
    pytest.param({**ENROLLED_OPTIONAL, "trusted_device": True}, "/admin", PASS, id="optional-enrolled-trusted"),
    pytest.param(ENROLLED_REQUIRED, "/admin", VERIFY, id="required-enrolled-unverified"),
    pytest.param({**ENROLLED_REQUIRED, "verified": True}, "/admin", PASS, id="required-enrolled-verified"),
    pytest.param({**ENROLLED_REQUIRED, "trusted_device": True}, "/admin", PASS, id="required-enrolled-trusted"),
    pytest.param({**SIGNED, "requirement": "required", "must_setup": True}, "/admin", SETUP, id="must-setup"),
    pytest.param({**SIGNED, "requirement": "required", "must_setup": True, "trusted_device": True, "verified": True},
                 "/admin", SETUP, id="must-setup-beats-trusted-and-verified"),
    pytest.param({**SIGNED, "requirement": "required", "in_grace": True}, "/admin", NOTICE, id="in-grace"),
    pytest.param({**SIGNED, "requirement": "not_required", "enrolled": True}, "/admin", PASS,
                 id="enrolled-but-not-required-policy"),
    # Allow-listed paths always pass, whatever the facts.
    pytest.param(ENROLLED_REQUIRED, "/login", PASS, id="allow-login"),
    pytest.param(ENROLLED_REQUIRED, "/logout", PASS, id="allow-logout"),
    pytest.param(ENROLLED_REQUIRED, "/otp/verify", PASS, id="allow-verify"),
    pytest.param(ENROLLED_REQUIRED, "/otp/send", PASS, id="allow-send"),
    pytest.param(ENROLLED_REQUIRED, "/otp/magic", PASS, id="allow-magic-link"),
    pytest.param(ENROLLED_REQUIRED, "/otp/settings/devices", PASS, id="allow-settings-below"),
    pytest.param({**SIGNED, "requirement": "required", "must_setup": True}, "/otp/setup", PASS, id="allow-setup"),
    pytest.param(ENROLLED_REQUIRED, "/login/inline", PASS, id="allow-below-at-slash"),
    pytest.param(ENROLLED_REQUIRED, "/login/", PASS, id="allow-trailing-slash"),
    pytest.param(ENROLLED_REQUIRED, "//login", PASS, id="allow-double-slash"),
    # Near misses are protected.
    pytest.param(ENROLLED_REQUIRED, "/loginx", VERIFY, id="no-prefix-surprise"),
    pytest.param(ENROLLED_REQUIRED, "/login-admin", VERIFY, id="no-prefix-surprise-dash"),
    pytest.param(ENROLLED_REQUIRED, "/otp/verifyx", VERIFY, id="no-prefix-surprise-verify"),
    pytest.param(ENROLLED_REQUIRED, "/LOGIN", VERIFY, id="case-sensitive"),
    pytest.param(ENROLLED_REQUIRED, "/login/../admin", VERIFY, id="dotdot-out-of-allowed"),
    pytest.param(ENROLLED_REQUIRED, "/admin/../login", VERIFY, id="dotdot-into-allowed-is-not-allowed"),
    pytest.param(ENROLLED_REQUIRED, "/otp/settings/../../admin", VERIFY, id="dotdot-twice"),
    pytest.param(ENROLLED_REQUIRED, "/otp//verify/./", PASS, id="slashes-and-dot-inside-allowed"),
    pytest.param(ENROLLED_REQUIRED, "/../../login", VERIFY, id="dotdot-above-root-is-not-allowed"),
    pytest.param(ENROLLED_REQUIRED, "/", VERIFY, id="home-protected"),
    pytest.param(ENROLLED_REQUIRED, "", VERIFY, id="empty-path-is-home"),
]


@pytest.mark.parametrize(("facts", "path", "expected"), TABLE)
def test_decision_table(facts: dict[str, Any], path: str, expected: str) -> None:
    decision = decide(SessionFacts(**facts), path)
    assert decision.action == expected
    assert decision.passes == (expected in (PASS, NOTICE))
    if expected == VERIFY:
        assert decision.location is not None and decision.location.startswith("/otp/verify")
    elif expected == SETUP:
        assert decision.location is not None and decision.location.startswith("/otp/setup")
    else:
        assert decision.location is None
    if expected == NOTICE:
        assert decision.notice == GRACE_NOTICE


@pytest.mark.parametrize(("verified", "login", "expected"), [
    pytest.param(None, None, False, id="no-markers"),  # a login the site's own view never marked
    pytest.param("", "", False, id="empty-markers"),
    pytest.param(None, "login-1", False, id="not-verified"),
    pytest.param("login-1", None, False, id="no-login-marker"),
    pytest.param("", "login-1", False, id="empty-verified-marker"),
    pytest.param("login-1", "login-1", True, id="verified-this-login"),
    pytest.param("login-1", "login-2", False, id="verified-another-login"),
    pytest.param("lögin", "lögin", True, id="non-ascii"),
    pytest.param(b"login-1", b"login-1", True, id="bytes"),
    pytest.param(1, 1, False, id="not-a-string"),
    pytest.param(["x"], ["x"], False, id="a-list"),
])
def test_a_verified_login_needs_a_real_login_marker(verified: Any, login: Any, expected: bool) -> None:
    assert SessionFacts.is_verified_login(verified, login) is expected


def test_the_markers_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    seen: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert not SessionFacts.is_verified_login("login-1", "login-2")
    assert seen == [(b"login-1", b"login-2")]


def test_redirect_carries_next_with_query() -> None:
    decision = decide(SessionFacts(**ENROLLED_REQUIRED), "/reports/2024", query="page=2&x=a b")
    assert decision.action == VERIFY
    location = urlsplit(decision.location or "")
    assert location.path == "/otp/verify"
    assert parse_qs(location.query) == {"next": ["/reports/2024?page=2&x=a b"]}
    # The home page needs no next parameter.
    assert decide(SessionFacts(**ENROLLED_REQUIRED), "/").location == "/otp/verify"


def test_configured_allow_list_and_paths() -> None:
    config = GateConfig(verify_path="/mfa/check", setup_path="/mfa/enrol", allow=("/accounts", "/mfa", "/"))
    facts = SessionFacts(**ENROLLED_REQUIRED)
    assert decide(facts, "/accounts/login", config).action == PASS
    assert decide(facts, "/", config).action == PASS  # "/" allows the home page only
    assert decide(facts, "/login", config).action == VERIFY  # not on this list
    decision = decide(facts, "/admin", config)
    assert decision.location == "/mfa/check?next=%2Fadmin"
    setup = decide(SessionFacts(**SIGNED, requirement="required", must_setup=True), "/admin", config)
    assert setup.location == "/mfa/enrol?next=%2Fadmin"


@pytest.mark.parametrize("bad", ["login", "/login?x=1", "/a#b"])
def test_config_rejects_bad_paths(bad: str) -> None:
    with pytest.raises(ValueError, match="must start with '/'"):
        GateConfig(allow=(bad,))


def test_config_rejects_one_string() -> None:
    with pytest.raises(TypeError):
        GateConfig(allow="/login")  # type: ignore[arg-type]


def test_default_allow_for_another_prefix() -> None:
    entries = default_allow("/mfa/", login="/accounts/login", logout="/accounts/logout", magic_link="/m")
    assert entries[:3] == ("/accounts/login", "/accounts/logout", "/mfa/verify")
    assert "/m" in entries and "/mfa/settings" in entries


@pytest.mark.parametrize(("raw", "expected"), [
    ("", "/"), ("/", "/"), ("//", "/"), ("/a//b/", "/a/b"), ("/a/./b", "/a/b"), ("/a/../b", "/b"),
    ("/../..", "/"), ("a/b", "/a/b"), ("/a?x=/login", "/a"),
])
def test_normalize_path(raw: str, expected: str) -> None:
    assert normalize_path(raw) == expected


segment = st.sampled_from(["login", "logout", "otp", "verify", "admin", "..", ".", "", "loginx", "settings", "x"])


@given(st.lists(segment, max_size=8))
def test_allowed_paths_normalise_into_the_list(segments: list[str]) -> None:
    """Whatever the dots and slashes, an allowed path resolves to a path under an allow-list entry,
    and so does the path as sent: a router that does not resolve '..' cannot serve another page."""
    path = "/" + "/".join(segments)
    if is_allowed(path):
        normalized = normalize_path(path)
        assert any(normalized == e or normalized.startswith(e + "/") for e in GateConfig().allow_list)
    # A protected member is never let through a non-allowed path.
    decision = decide(SessionFacts(**ENROLLED_REQUIRED), path)
    assert decision.action == (PASS if is_allowed(path) else VERIFY)


# ------------------------------------------------------------------ WSGI


def _inner_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    decision = environ["otp_pro.decision"]
    body = json.dumps({"path": environ["PATH_INFO"], "action": decision.action}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def _facts(environ: dict[str, Any]) -> SessionFacts:
    # A toy "session": the test sends who it is in a header.
    who = environ.get("HTTP_X_TEST_MEMBER")
    if who == "unverified":
        return SessionFacts(**ENROLLED_REQUIRED)
    if who == "setup":
        return SessionFacts(**SIGNED, requirement="required", must_setup=True)
    if who == "grace":
        return SessionFacts(**SIGNED, requirement="required", in_grace=True)
    return SessionFacts()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.fixture
def wsgi_url() -> Iterator[str]:
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # the standard library's server logs to stderr
            pass

    app = OtpProMiddleware(_inner_app, _facts)
    # The standard library's WSGI server: the core's tests install no web framework.
    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


def _get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    headers = {name.replace("_", "-"): value for name, value in headers.items()}
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, headers=headers)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_middleware_passes_and_redirects(wsgi_url: str) -> None:
    status, _, body = _get(f"{wsgi_url}/admin")
    assert status == 200 and json.loads(body)["action"] == PASS
    status, headers, _ = _get(f"{wsgi_url}/admin?tab=1", X_Test_Member="unverified")
    assert status == 303
    assert headers["Location"] == "/otp/verify?next=%2Fadmin%3Ftab%3D1"
    assert headers["Cache-Control"] == "no-store"
    status, headers, _ = _get(f"{wsgi_url}/admin", X_Test_Member="setup")
    assert status == 303 and headers["Location"].startswith("/otp/setup?next=")
    status, _, body = _get(f"{wsgi_url}/admin", X_Test_Member="grace")
    assert status == 200 and json.loads(body)["action"] == NOTICE
    status, _, body = _get(f"{wsgi_url}/otp/verify", X_Test_Member="unverified")
    assert status == 200 and json.loads(body)["action"] == PASS


def test_middleware_answers_json_calls_with_401(wsgi_url: str) -> None:
    status, headers, body = _get(f"{wsgi_url}/api/data", X_Test_Member="unverified", Accept="application/json")
    assert status == 401
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"error": "verification_required", "location": "/otp/verify?next=%2Fapi%2Fdata"}
    status, _, body = _get(f"{wsgi_url}/api/data", X_Test_Member="setup", X_Requested_With="XMLHttpRequest")
    assert status == 401 and json.loads(body)["error"] == "setup_required"
