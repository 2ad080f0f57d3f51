"""The sample login patterns and the site's own pages speak the language the flow chose for the request.

The patterns' templates ship in the core; the demo's views render them with Flask's ``render_template``,
outside the flow, so these tests check that the adapter hands the site's own templates the request's
language (``Accept-Language`` here) and that the JSON login answers in it too.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from webkit import built_site, csrf_of

from otp_pro import i18n
from otp_pro_flask.demo_site import DemoSite


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSite]:
    with built_site(tmp_path_factory.mktemp("patterns") / "demo.sqlite3", resend_cooldown_seconds=0) as demo:
        yield demo


@pytest.fixture
def account(site: DemoSite) -> tuple[str, str]:
    email = f"{secrets.token_hex(6)}@demo.test"
    site.add_member(email, "pw-" + email, enroll_on="email:code")
    return email, "pw-" + email


def in_language(locale: str, message: str, **variables: Any) -> str:
    with i18n.using(i18n.Language(locale)):
        return i18n.gettext(message, **variables)


def test_the_inline_pattern_is_written_in_the_browsers_language(site: DemoSite, account: tuple[str, str]) -> None:
    client = site.app.test_client()
    german = {"Accept-Language": "de-DE, de;q=0.9"}
    page = client.get("/login/inline", headers=german).text
    assert '<html lang="de">' in page and "<label for=\"inline-password\">Passwort</label>" in page
    token = csrf_of(client, "/login/inline")
    wrong = client.post("/login/inline", data={"email": account[0], "password": "nope", "csrf_token": token},
                        headers=german)
    assert wrong.status_code == 401 and "E-Mail-Adresse oder Passwort ist nicht korrekt." in wrong.text
    right = client.post("/login/inline", data={"email": account[0], "password": account[1], "csrf_token": token},
                        headers=german).text
    # The second step, revealed on the same page: who is signed in and where the code went, in German.
    assert f"Angemeldet als <strong>{account[0]}</strong>." in right
    assert "Diesem Browser vertrauen" in right and "Trust this browser" not in right


def test_the_ajax_pattern_answers_in_the_browsers_language(site: DemoSite, account: tuple[str, str]) -> None:
    client = site.app.test_client()
    french = {"Accept-Language": "fr"}
    page = client.get("/login/ajax", headers=french).text
    # The script's own text comes from the page (it has no catalog).
    assert 'data-unreachable="Le serveur n’a pas pu être joint. Réessayez."' in page  # noqa: RUF001
    token = csrf_of(client, "/login/ajax")
    headers = {**french, "X-CSRF-Token": token}
    missing = client.post("/login/ajax/api", json={"email": account[0]}, headers=headers)
    assert missing.status_code == 400 and missing.get_json()["message"] == in_language(
        "fr", "Enter your email and password.")
    spanish = {"Accept-Language": "es", "X-CSRF-Token": token}
    signed_in = client.post("/login/ajax/api", json={"email": account[0], "password": account[1]}, headers=spanish)
    body = signed_in.get_json()
    with i18n.using(i18n.Language("es")):
        label = i18n.label(site.otp.channels["email:code"].label)
    assert label != site.otp.channels["email:code"].label  # the channel's name is Spanish too
    assert body["step"] == "code" and body["message"] == in_language(
        "es", "We sent a code by %(label)s to %(hint)s.", label=label, hint=body["recipient_hint"])


def test_english_stays_the_default(site: DemoSite) -> None:
    page = site.app.test_client().get("/login/modal").text
    assert '<html lang="en">' in page and "This page signs you in through a dialog over the page." in page
