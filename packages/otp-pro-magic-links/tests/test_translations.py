"""The sign-in link's name, its refusal reason and its pages in the member's language: the companion's catalogs
are complete and hold exactly the code's messages, the core finds the name and the reason in them, and the
link's pages answer in the language the request asks for, with ``<html lang>`` saying which."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from magic_links_support import WebServer, enrol_by_link, last_link

from otp_pro import ChannelUnavailable, Member, i18n
from otp_pro.testing import Mailbox
from otp_pro.testing.catalogs import catalog_problems, extraction_drift, read_catalog
from otp_pro.web.flow import Flow, Request, Session, login
from otp_pro_magic_links import confirm_page, error_page, make_wsgi_app, parse
from otp_pro_magic_links.wording import DOMAIN, LABEL, NO_BASE_URL

PACKAGE = Path(__file__).resolve().parents[1]
LOCALE = PACKAGE / "src" / "otp_pro_magic_links" / "locale"
TEMPLATE = LOCALE / "otp_pro_magic_links.pot"
NBSP = "\u00a0"


def html_lang(page: str) -> str:
    found = re.search(r'<html lang="([^"]+)">', page)
    assert found, page[:200]
    return found.group(1)


@pytest.mark.parametrize("locale", ["de", "fr", "es"])
def test_every_shipped_catalog_has_every_message(locale: str) -> None:
    po = LOCALE / locale / "LC_MESSAGES" / "otp_pro_magic_links.po"
    assert catalog_problems(TEMPLATE, po, po.with_suffix(".mo")) == []


def test_the_template_holds_exactly_the_messages_of_the_code() -> None:
    assert extraction_drift(PACKAGE / "babel.cfg", [PACKAGE / "src" / "otp_pro_magic_links"], TEMPLATE) == []


def test_french_puts_a_no_break_space_before_double_punctuation() -> None:
    # A plain space there lets the line break before the colon; the core's French catalog uses U+00A0 too.
    catalog = read_catalog(LOCALE / "fr" / "LC_MESSAGES" / "otp_pro_magic_links.po", "fr")
    translations = [form for message in catalog if message.id
                    for form in (message.string if isinstance(message.string, tuple) else (message.string,))]
    assert [text for text in translations if re.search(r"[ \w][:;?!]", text)] == []
    assert any(f"page{NBSP}: rien" in text for text in translations)


@pytest.mark.parametrize(("locale", "channel", "reason_starts"), [
    ("en", "Email (sign-in link)", "no base URL configured"),
    ("de", "E-Mail (Anmeldelink)", "für Anmeldelinks ist keine Basis-URL"),
    ("fr", "E-mail (lien de connexion)", "aucune URL de base n’est configurée"),  # noqa: RUF001 - French apostrophe
    ("es", "Correo electrónico (enlace de inicio de sesión)", "no hay ninguna URL base configurada"),
])
def test_the_channel_name_and_the_reason_it_is_not_offered_follow_the_language(
        make_otp: Any, member: Member, locale: str, channel: str, reason_starts: str) -> None:
    assert {"de", "fr", "es"} <= DOMAIN.available()
    otp = make_otp(base_url=None)
    reason = otp.status(member).unavailable["email:magic_link"]
    assert reason == NO_BASE_URL  # English where it is made: logs and the JSON API read it as it is
    with pytest.raises(ChannelUnavailable) as refused:
        otp.begin_setup(member, "email:magic_link")
    with i18n.using(i18n.Language(locale)):
        assert i18n.label(otp.channels["email:magic_link"].label) == channel
        assert i18n.label(LABEL) == channel.split(" (", 1)[1].rstrip(")")
        assert i18n.translate(reason).startswith(reason_starts)
        # The setup refusal carries the same reason: the flow translates it where it shows it.
        assert i18n.translate(getattr(refused.value, "reason", None)).startswith(reason_starts)
        assert i18n.translate(reason).endswith("(providers.magic_links.base_url)")  # the setting keeps its name


@pytest.mark.parametrize(("header", "lang", "title", "button"), [
    ("de-DE,de;q=0.9,en;q=0.5", "de", "Bei Example anmelden", "Anmeldung fortsetzen"),
    ("fr-CA, en;q=0.3", "fr", "Connexion à Example", "Poursuivre la connexion"),
    ("es", "es", "Iniciar sesión en Example", "Continuar con el inicio de sesión"),
    ("nl, it;q=0.8", "en", "Sign in to Example", "Continue signing in"),  # no catalog for either: English
    (None, "en", "Sign in to Example", "Continue signing in"),
])
def test_the_landing_page_answers_in_the_browsers_language(
        make_otp: Any, web: WebServer, member: Member, mailbox: Mailbox,
        header: str | None, lang: str, title: str, button: str) -> None:
    otp = make_otp()
    web.mount(make_wsgi_app(otp, new_link_url="/login"))
    enrol_by_link(otp, member, mailbox)
    otp.send_challenge(member, channel="email:magic_link")
    page = web.request("GET", last_link(mailbox, member.email or ""),
                       headers={"Accept-Language": header} if header else None)
    assert page.status == 200
    assert html_lang(page.body) == lang
    assert f"<h1>{title}</h1>" in page.body
    assert f'<button type="submit">{button}</button>' in page.body


def test_a_refused_link_says_why_in_german(make_otp: Any, web: WebServer, member: Member, mailbox: Mailbox) -> None:
    otp = make_otp(magic_links={"ttl_seconds": 300})
    web.mount(make_wsgi_app(otp, new_link_url="/login"))
    enrol_by_link(otp, member, mailbox)
    otp.send_challenge(member, channel="email:magic_link")
    token = parse(last_link(mailbox, member.email or ""))
    assert token is not None
    german = {"Accept-Language": "de"}
    assert web.request("POST", f"{web.url}/otp/magic", {"token": token}, headers=german).status == 303
    again = web.request("POST", f"{web.url}/otp/magic", {"token": token}, headers=german)
    assert again.status == 410 and html_lang(again.body) == "de"
    assert "<h1>Dieser Anmeldelink wurde bereits verwendet</h1>" in again.body
    assert "Jeder Link funktioniert nur einmal." in again.body
    assert '<a href="/login">Neuen Anmeldelink anfordern</a>' in again.body
    # The lifetime is a plural form of the language: 5 minutes, and French 1 minute singular.
    expired = error_page(otp, "expired", accept_language="de")
    assert "Anmeldelinks sind 5 Minuten lang gültig. Fordern Sie einen neuen Link an." in expired.body.decode()
    short = make_otp(magic_links={"ttl_seconds": 60})
    assert "valables 1 minute. Demandez" in error_page(short, "expired", accept_language="fr").body.decode()
    # Pages the app answers itself (a wrong path) follow the header too.
    missing = web.request("GET", f"{web.url}/elsewhere", headers={"Accept-Language": "es"})
    assert missing.status == 404 and "<h1>Página no encontrada</h1>" in missing.body


def test_the_members_locale_wins_over_the_browser_and_the_site_default_comes_last(make_otp: Any) -> None:
    token = "A" * 43
    otp = make_otp(default_locale="fr")
    spanish = Member(id="9", email="eva@example.com", locale="es_MX")
    chosen = confirm_page(otp, token, accept_language="de", member=spanish).body.decode()
    assert html_lang(chosen) == "es" and "Pulsa el botón para terminar de iniciar sesión en Example." in chosen
    assert html_lang(confirm_page(otp, token, accept_language="de").body.decode()) == "de"
    french = confirm_page(otp, token).body.decode()
    assert html_lang(french) == "fr" and f"fermez cette page{NBSP}: rien ne se passe" in french
    # A default with no catalog of this companion: the page is English and says so.
    assert html_lang(confirm_page(make_otp(default_locale="it"), token).body.decode()) == "en"


# ------------------------------------------------------------------ the core's flow


def setup_page(otp: Any, member: Member) -> str:
    """The core flow's "add a method" page for ``member``, rendered as a browser of the member would get it."""
    flow = Flow(otp, load_member={member.id: member}.get, check_password=lambda _m, _p: True, secure_cookies=False)
    data: dict[str, Any] = {}

    def visit(path: str) -> Any:
        return flow.visit(Request(method="GET", path=path, client_addr="127.0.0.1", host="127.0.0.1"), Session(data))

    login(visit("/login"), member, next="/home", send=False)
    v = visit("/otp/setup")
    answer = flow.dispatch(flow.route("setup"), v)
    assert answer.status == 200
    return flow.render(answer, v)


def test_the_flow_names_the_channel_it_cannot_offer_in_the_members_language(make_otp: Any) -> None:
    page = setup_page(make_otp(base_url=None), Member(id="7", email="bo@example.com", locale="de"))
    assert html_lang(page) == "de" and "<li>E-Mail (Anmeldelink): " in page


def test_the_flow_gives_the_reason_in_the_members_language(make_otp: Any) -> None:
    page = setup_page(make_otp(base_url=None), Member(id="7", email="bo@example.com", locale="de"))
    assert "<li>E-Mail (Anmeldelink): für Anmeldelinks ist keine Basis-URL konfiguriert" in page
