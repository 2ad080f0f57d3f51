"""The operator console on Starlette (served by uvicorn): mounted by ``OtpProStarlette(operator=...)``, a 404
for anyone else, its actions CSRF-checked and audited with the operator, its export a streamed response."""

from __future__ import annotations

import json
from collections.abc import Callable

from conftest import ANN, TOM, Site, page_token, sign_in, verify

from otp_pro.testing import mailed_code


def operator_site(make_site: Callable[..., Site]) -> Site:
    return make_site(operator=lambda member: member.id == TOM.id)


def test_a_member_who_is_not_an_operator_gets_404(make_site: Callable[..., Site]) -> None:
    site = operator_site(make_site)
    with site.client() as client:
        sign_in(client, ANN)
        verify(client, mailed_code(site.mailbox, ANN.email or ""))
        token = page_token(client.get("/otp/settings").text)
        assert client.get("/otp/operator/members").status_code == 404
        assert client.get("/otp/operator/audit/export?format=jsonl").status_code == 404
        refused = client.post("/otp/operator/member/unlock", data={"member_id": "1", "csrf_token": token})
        assert refused.status_code == 404
    assert not site.otp.events(ANN, kinds=["unlocked"])


def test_an_operator_unlocks_a_member_and_exports_the_log(make_site: Callable[..., Site]) -> None:
    site = operator_site(make_site)
    with site.client() as client:
        sign_in(client, TOM)
        verify(client, site.totp_now())
        page = client.get("/otp/operator/member?id=1")
        assert page.status_code == 200 and "ann@example.com" in page.text
        token = page_token(client.get("/otp/operator/member/unlock?id=1").text)
        assert client.post("/otp/operator/member/unlock", data={"member_id": "1"}).status_code == 400
        done = client.post("/otp/operator/member/unlock", data={"member_id": "1", "csrf_token": token})
        assert done.status_code == 303 and done.headers["location"] == "/otp/operator/member?id=1"
        with client.stream("GET", "/otp/operator/audit/export?format=jsonl&kind=unlocked") as response:
            assert response.status_code == 200 and "chunked" in response.headers.get("transfer-encoding", "")
            assert response.headers["content-disposition"].startswith("attachment;")
            rows = [json.loads(line) for line in response.iter_lines() if line]
    [event] = site.otp.events(ANN, kinds=["unlocked"])
    assert event.actor == "console:2"
    assert [r["actor"] for r in rows] == ["console:2"]
