"""The served site on PostgreSQL (``OTP_PRO_TEST_POSTGRES_URL``): sign-in by email code and TOTP, and one code
posted by eight requests at once, each core call in its own worker thread: exactly one is accepted.

Without ``OTP_PRO_TEST_POSTGRES_URL`` these tests fail under CI and are skipped, saying why, elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import ANN, MEMBERS, TOM, Site, enrol_members, sign_in, site_settings, verify
from site_app import build_app, serve

from otp_pro import OtpPro
from otp_pro.testing import PG_SKIP_REASON, Clock, Mailbox, in_ci, mailed_code, truncate_all


@pytest.fixture
def pg_site(pg_url: str | None, tmp_path: Path, smtp_server: tuple[str, int, Mailbox], mailbox: Mailbox,
            clock: Clock, otp_factory: Callable[..., OtpPro]) -> Iterator[Site]:
    if pg_url is None:
        if in_ci():
            pytest.fail(PG_SKIP_REASON, pytrace=False)
        pytest.skip(PG_SKIP_REASON)
    truncate_all(pg_url)
    otp = otp_factory(site_settings(tmp_path, smtp_server, database_url=pg_url))
    secret = enrol_members(otp, mailbox, clock)
    with serve(build_app(otp, MEMBERS)) as served:
        yield Site(served.base, otp, mailbox, secret, clock)


def test_sign_in_on_postgresql(pg_site: Site) -> None:
    with pg_site.client() as client:
        assert sign_in(client, ANN, next_url="/protected").headers["location"] == "/otp/verify"
        done = verify(client, mailed_code(pg_site.mailbox, ANN.email or ""))
        assert done.status_code == 303 and client.get("/protected").text == "<p>protected page of Ann</p>"
    with pg_site.client() as client:
        sign_in(client, TOM)
        assert verify(client, pg_site.totp_now()).status_code == 303
        assert client.get("/billing").json() == {"member": TOM.id}


def test_one_code_posted_eight_times_at_once_is_accepted_once(pg_site: Site) -> None:
    with pg_site.client() as client:
        sign_in(client, ANN)
        code = mailed_code(pg_site.mailbox, ANN.email or "")
        token = client.get("/otp/api/status").json()["csrf_token"]
        cookies = client.cookies

    def post(_: int) -> httpx.Response:
        with httpx.Client(base_url=pg_site.base, cookies=cookies, timeout=30) as each:
            return each.post("/otp/api/verify", json={"code": code}, headers={"X-CSRF-Token": token})

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(8)))
    assert all(a.status_code < 500 for a in answers), [a.text for a in answers]
    assert sum(1 for a in answers if a.json().get("ok") is True) == 1, [a.json() for a in answers]
