"""The adapter's parts on their own: reading requests and bodies, the CSRF exemptions, the session store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from otp_pro import OtpPro
from otp_pro_starlette import OtpProStarlette, SqliteSessionStore
from otp_pro_starlette.adapter import flow_request, parse_form, read_body
from otp_pro_starlette.routing import starlette_path


def web(otp: OtpPro, **options: Any) -> OtpProStarlette:
    return OtpProStarlette(otp, load_member=lambda _id: None, check_password=lambda _m, _p: False, **options)


def test_csrf_exemptions_match_whole_segments_of_the_normalised_path(otp: OtpPro) -> None:
    site = web(otp, csrf_exempt=("/webhooks", "/api/v1/"))
    assert not site.checks_csrf("/webhooks") and not site.checks_csrf("/webhooks/stripe")
    assert not site.checks_csrf("/api/v1/items")
    assert site.checks_csrf("/webhooksx") and site.checks_csrf("/login")
    assert site.checks_csrf("/webhooks/../login")  # not exempt because it starts with an exempt path
    assert not web(otp, csrf_app_wide=False).checks_csrf("/login")


def test_the_flow_owns_its_prefix_only(otp: OtpPro) -> None:
    site = web(otp, url_prefix="/mfa")
    assert site.owns("/mfa") and site.owns("/mfa/verify") and site.owns("/mfa/static/otp_pro.css")
    assert not site.owns("/mfax") and not site.owns("/login")
    with pytest.raises(ValueError, match="url_prefix"):
        web(otp, url_prefix="/")


def test_paths_in_starlettes_syntax() -> None:
    assert starlette_path("/settings/factors/<factor_id>/remove") == "/settings/factors/{factor_id}/remove"


def test_a_request_under_a_root_path() -> None:
    scope = {"type": "http", "method": "post", "path": "/site/otp/verify", "root_path": "/site",
             "query_string": b"next=%2Fa&next=%2Fb&bad=%FF", "scheme": "https", "client": ("203.0.113.9", 5),
             "headers": [(b"host", b"example.com"), (b"cookie", b"a=1"), (b"cookie", b"b=2"),
                         (b"content-length", b"12"), (b"X-CSRF-Token", b"t")]}
    request = flow_request(scope)
    assert (request.root, request.path, request.method) == ("/site", "/otp/verify", "POST")
    assert request.args["next"] == "/a" and request.args["bad"] == "\ufffd"
    assert dict(request.cookies) == {"a": "1", "b": "2"}
    assert request.header("x-csrf-token") == "t" and request.content_length == 12
    assert request.secure and request.client_addr == "203.0.113.9" and request.host == "example.com"


def test_forms_keep_the_first_value_and_refuse_floods() -> None:
    assert parse_form(b"code=1&code=2&csrf_token=x") == {"code": "1", "csrf_token": "x"}
    assert parse_form(b"a=%FF") == {"a": "\ufffd"}
    assert parse_form(b"&".join(b"f%d=1" % i for i in range(500))) == {}


def test_a_body_is_read_bounded_and_replayed_whole() -> None:
    chunks = [b"a" * 10, b"b" * 10, b"c" * 10]

    async def scenario() -> tuple[bytes, bool, bytes]:
        queue = list(chunks)

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": queue.pop(0), "more_body": bool(queue)}

        body = await read_body(receive, 15)
        replay = body.replay(receive)
        seen = b""
        while True:
            message = await replay()
            seen += message["body"]
            if not message["more_body"]:
                return body.data, body.too_large, seen

    data, too_large, replayed = anyio.run(scenario)
    assert data == b"a" * 10 + b"b" * 6 and too_large  # limit + 1 bytes: the caller knows it is over
    assert replayed == b"".join(chunks)  # the view behind still reads every byte


def test_the_session_store_never_brings_back_a_deleted_session(tmp_path: Path) -> None:
    store = SqliteSessionStore(str(tmp_path / "sessions.sqlite3"))
    later = time.time() + 60
    store.add("s" * 43, '{"a": 1}', later)
    assert store.load("s" * 43) == {"a": 1}
    assert store.update("s" * 43, "t" * 43, '{"a": 2}', later)  # a rotation moves the row
    assert store.load("s" * 43) is None and store.load("t" * 43) == {"a": 2}
    store.delete("t" * 43)
    assert not store.update("t" * 43, "t" * 43, '{"a": 3}', later)  # a request in flight after a logout
    assert store.load("t" * 43) is None
    store.add("u" * 43, "{}", time.time() - 1)
    assert store.load("u" * 43) is None  # expired
