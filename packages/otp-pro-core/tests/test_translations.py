"""Translations: the shipped catalogs are complete, and pages, refusals and messages follow the member's language.

The catalogs are checked against the template (``otp_pro.pot``) and the template against the code, so a
text added without its translations, a translation that drops a placeholder, or a stale ``.mo`` fails here.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from flow_client import flow_client

from otp_pro import Member, OtpPro, i18n
from otp_pro.i18n import Language
from otp_pro.testing import Clock, Mailbox, enrol, page_csrf
from otp_pro.testing.catalogs import catalog_problems, extraction_drift
from otp_pro.web.flow import texts

PACKAGE = Path(__file__).resolve().parents[1]
LOCALE = PACKAGE / "src" / "otp_pro" / "locale"
TEMPLATE = LOCALE / "otp_pro.pot"
TRANSLATED = [name for name in i18n.SHIPPED_LOCALES if name != "en"]


def po(locale: str, root: Path = LOCALE) -> Path:
    return root / locale / "LC_MESSAGES" / "otp_pro.po"


# ------------------------------------------------------------------ the catalogs


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_shipped_catalog_has_every_message_with_its_placeholders(locale: str) -> None:
    assert catalog_problems(TEMPLATE, po(locale), po(locale).with_suffix(".mo")) == []


def test_the_template_holds_exactly_the_messages_of_the_code() -> None:
    sources = [PACKAGE / "src" / "otp_pro", PACKAGE / "src" / "otp_pro" / "_engine"]
    assert extraction_drift(PACKAGE / "babel.cfg", sources, TEMPLATE) == []


def test_the_check_fails_for_a_missing_message_a_lost_placeholder_and_a_stale_mo(tmp_path: Path) -> None:
    shutil.copytree(LOCALE / "de", tmp_path / "de")
    broken = po("de", tmp_path)
    text = broken.read_text(encoding="utf-8")
    # One message dropped, one placeholder lost, one tag lost.
    text = text.replace('msgid "Sign out"\nmsgstr "Abmelden"\n', "")
    text = text.replace("Die Methode heißt jetzt %(label)s.", "Die Methode hat einen neuen Namen.")
    text = text.replace("ist <strong>an</strong>.", "ist an.")
    broken.write_text(text, encoding="utf-8")
    problems = catalog_problems(TEMPLATE, broken, broken.with_suffix(".mo"))
    assert "de/otp_pro.po: missing 'Sign out'" in problems
    assert any("placeholders or tags differ in 'The method is now called %(label)s.'" in p for p in problems)
    assert any("placeholders or tags differ in 'Two-step verification is <strong>on</strong>.'" in p
               for p in problems)
    assert any("otp_pro.mo is out of date" in p for p in problems)  # the .mo still has the old wording


@pytest.mark.parametrize(("locale", "one", "two", "zero"), [
    ("en", "1 attempt left", "2 attempts left", "0 attempts left"),
    ("de", "Noch 1 Versuch bis", "Noch 2 Versuche bis", "Noch 0 Versuche bis"),
    ("fr", "Encore 1 tentative avant", "Encore 2 tentatives avant", "Encore 0 tentative avant"),
    ("es", "Te queda 1 intento antes", "Te quedan 2 intentos antes", "Te quedan 0 intentos antes"),
])
def test_plural_forms_follow_each_language(locale: str, one: str, two: str, zero: str) -> None:
    with i18n.using(Language(locale)):
        assert one in texts.attempts_left_text(1)
        assert two in texts.attempts_left_text(2)
        assert zero in texts.attempts_left_text(0)  # French counts 0 as singular


def test_refusal_reasons_are_written_in_the_current_language() -> None:
    assert texts.cooldown_text(31) == "Please wait 31 seconds before asking for another code."
    with i18n.using(Language("es")):
        assert texts.cooldown_text(31) == "Espera 31 segundos antes de pedir otro código."
        assert texts.cooldown_text(1) == "Espera 1 segundo antes de pedir otro código."
    with i18n.using(Language("de")):
        assert texts.locked_text(-1).startswith("Die Anmeldung ist nach zu vielen Fehlversuchen gesperrt.")
    with i18n.using(Language("fr")):
        assert i18n.gettext(texts.REASON_TEXT["invalid"]) == "Ce code est incorrect."


# ------------------------------------------------------------------ choosing the language


@pytest.mark.parametrize(("header", "chosen"), [
    ("de-AT,de;q=0.9,en;q=0.5", "de"),
    ("pt-BR, fr;q=0.8, en;q=0.6", "fr"),
    ("en;q=0.2, es;q=0.9", "es"),
    ("ja, zh", None),
    ("fr;q=0", None),
    ("", None),
])
def test_accept_language_is_matched_against_the_catalogs(header: str, chosen: str | None) -> None:
    assert i18n.negotiate(header, i18n.SHIPPED_LOCALES) == chosen


def test_a_site_catalog_adds_a_language_and_overrides_a_wording(tmp_path: Path) -> None:
    from babel.messages.catalog import Catalog
    from babel.messages.mofile import write_mo

    for locale, wording in (("nl", "Die code klopt niet."), ("de", "Der Code stimmt nicht.")):
        catalog = Catalog(locale=locale)
        catalog.add("That code is not correct.", wording)
        folder = tmp_path / locale / "LC_MESSAGES"
        folder.mkdir(parents=True)
        with (folder / "otp_pro.mo").open("wb") as f:
            write_mo(f, catalog)
    sites = (str(tmp_path),)
    assert "nl" in i18n.CORE.available(sites)
    with i18n.using(Language("nl", sites)):
        assert i18n.gettext("That code is not correct.") == "Die code klopt niet."
        assert i18n.gettext("Verify") == "Verify"  # not in the site's catalog, no shipped one: English
    with i18n.using(Language("de", sites)):
        assert i18n.gettext("That code is not correct.") == "Der Code stimmt nicht."
        assert i18n.gettext("Verify") == "Bestätigen"  # the shipped catalog behind the site's


def _verify_page(otp: OtpPro, member: Member, **headers: str) -> str:
    client = flow_client(otp, member)
    assert client.get("/login").headers["Location"] == "/otp/verify"
    return client.get("/otp/verify", headers=headers).text


@pytest.fixture
def enrolled(make_otp: Callable[..., OtpPro], member: Member, clock: Clock) -> OtpPro:
    # The core's own plain-text renderer writes the messages here (otp-pro-html-email tests its own).
    otp = make_otp(disable_plugins=["otp_pro_html_email"])
    enrol(otp, member)
    clock.advance(60)
    return otp


def test_the_page_follows_accept_language_and_says_so_in_html_lang(enrolled: OtpPro, member: Member) -> None:
    page = _verify_page(enrolled, member, **{"Accept-Language": "fr-CH, fr;q=0.9, en;q=0.8"})
    assert '<html lang="fr">' in page
    assert "Confirmez votre identité" in page and "Vérifier</button>" in page
    english = _verify_page(enrolled, member)
    assert '<html lang="en">' in english and "Verify it's you" in english


def test_the_members_locale_wins_over_the_browsers(enrolled: OtpPro, member: Member) -> None:
    german = Member(member.id, roles=member.roles, email=member.email, name=member.name, fields=member.fields,
                    locale="de_DE")
    page = _verify_page(enrolled, german, **{"Accept-Language": "es"})
    assert '<html lang="de">' in page and "Bestätigen Sie, dass Sie es sind" in page


def test_the_site_default_applies_when_nothing_matches(make_otp: Callable[..., OtpPro], member: Member,
                                                      clock: Clock) -> None:
    otp = make_otp(default_locale="es")
    enrol(otp, member)
    clock.advance(60)
    page = _verify_page(otp, member, **{"Accept-Language": "ja"})
    assert '<html lang="es">' in page and "Verifica que eres tú" in page


def test_a_refusal_on_the_verify_page_is_in_the_members_language(enrolled: OtpPro, member: Member) -> None:
    client = flow_client(enrolled, member)
    client.get("/login")
    headers = {"Accept-Language": "de"}
    token = page_csrf(client.get("/otp/verify", headers=headers).text)
    page = client.post("/otp/verify", data={"code": "000000", "csrf_token": token}, headers=headers).text
    assert "Dieser Code ist nicht korrekt." in page
    assert "Versuche bis zur Sperre." in page


# ------------------------------------------------------------------ messages


def test_a_code_message_is_written_in_the_members_language(enrolled: OtpPro, member: Member) -> None:
    spanish = Member(member.id, email=member.email, name="Ana", locale="es")
    enrolled.send_challenge(spanish, channel="outbox:code")
    message = enrolled.transports["outbox"].last()  # type: ignore[attr-defined]
    assert message.text.startswith("Hola, Ana:")
    assert "Tu código de verificación de Example es:" in message.text
    assert message.subject == "Example: tu código de verificación"


def test_a_message_sent_from_a_page_follows_the_pages_language(enrolled: OtpPro, member: Member) -> None:
    client = flow_client(enrolled, member)
    client.get("/login")
    headers = {"Accept-Language": "fr"}
    token = page_csrf(client.get("/otp/verify", headers=headers).text)
    client.post("/otp/send", data={"csrf_token": token}, headers=headers)
    message = enrolled.transports["outbox"].last()  # type: ignore[attr-defined]
    assert message.text.startswith("Bonjour Ann,")


def test_a_factor_change_notice_is_written_in_the_members_language(enrolled: OtpPro, member: Member,
                                                                   mailbox: Mailbox) -> None:
    german = Member(member.id, email=member.email, name="Anna", locale="de")
    enrolled.regenerate_backup_codes(german)
    [notice] = [m for m in mailbox.to("ann@example.com") if "Sicherheitsänderung" in str(m["Subject"])]
    assert notice["Subject"] == "Example: Sicherheitsänderung an Ihrem Konto"
    text = notice.get_body(("plain",)).get_content()
    assert text.startswith("Hallo Anna,") and "Für Ihr Konto wurden neue Backup-Codes erstellt" in text
    assert re.search(r"Wann: \d\d\.\d\d\.\d{4}, \d\d:\d\d:\d\d UTC", text)  # the German way


def test_channel_names_are_translated_where_they_are_shown(enrolled: OtpPro, member: Member) -> None:
    with i18n.using(Language("de")):
        assert i18n.label("Email") == "E-Mail"
        assert i18n.label("Authenticator app") == "Authenticator-App"
        assert i18n.label("Email (one-time code)") == "E-Mail (Einmalcode)"  # a channel's name, part by part
        assert i18n.label("Carrier pigeon") == "Carrier pigeon"  # a name no catalog has stays as it is
    assert i18n.label("Email") == "Email"
    page = _verify_page(enrolled, member, **{"Accept-Language": "fr"})
    assert "Boîte d\u2019envoi de développement" in page  # the outbox channel's name, in the sentence about the code


@pytest.mark.parametrize(("locale", "name", "written"), [
    ("en", "Authenticator app", "authenticator app"),
    ("en", "SMS (Twilio)", "SMS (Twilio)"),  # an acronym keeps its capitals
    ("fr", "Clé de sécurité", "clé de sécurité"),
    ("de", "Authenticator-App", "Authenticator-App"),  # German nouns keep their capital
    ("de_AT", "E-Mail", "E-Mail"),
])
def test_a_methods_name_inside_a_sentence(locale: str, name: str, written: str) -> None:
    with i18n.using(Language(locale)):
        assert i18n.in_sentence(name) == written


def test_the_builtin_factor_types_hints_follow_the_language(enrolled: OtpPro) -> None:
    app = enrolled.channels["totp"].factor_type
    assert app is not None
    with i18n.using(Language("de")):
        assert app.describe().hint == "Geben Sie den 6-stelligen Code aus Ihrer Authenticator-App ein."
    with i18n.using(Language("en")):
        assert app.describe().hint == "Enter the 6-digit code from your authenticator app."


# ------------------------------------------------------------------ reasons made before the language is known


def test_a_reason_is_written_in_the_language_of_the_place_it_is_shown() -> None:
    import pickle

    from otp_pro.errors import SetupError

    made = i18n.L_("hidden by plugin %(plugin)s", plugin="acme_fax")
    assert made == "hidden by plugin acme_fax"  # the English text for logs, the CLI and JSON
    raised = SetupError(i18n.L_("the setup expired: start it again"))
    with i18n.using(Language("de")):
        assert i18n.translate(made) == "vom Plugin acme_fax ausgeblendet"
        assert i18n.translate(pickle.loads(pickle.dumps(made))) == "vom Plugin acme_fax ausgeblendet"
        assert i18n.translate(raised) == "die Einrichtung ist abgelaufen: Beginnen Sie sie erneut"
        assert i18n.translate(i18n.N_("this channel is not installed")) == "dieser Zustellweg ist nicht installiert"
        assert i18n.translate("no fax line on file") == "no fax line on file"  # a plugin's own, untranslated
        # A plain variable is a value, not a message, even when a catalog happens to hold the same words.
        assert i18n.translate(i18n.L_("hidden by plugin %(plugin)s", plugin="Close")) == "vom Plugin Close ausgeblendet"
    with i18n.using(Language("fr")):
        # A variable that is itself a reason is translated too.
        nested = i18n.L_("hidden by plugin %(plugin)s", plugin=i18n.L_("this channel is not installed"))
        assert i18n.translate(nested) == "masqué par l’extension ce moyen d’envoi n’est pas installé"  # noqa: RUF001 - French apostrophes


def test_why_a_method_cannot_be_used_is_shown_in_the_pages_language(make_otp: Callable[..., OtpPro],
                                                                    clock: Clock) -> None:
    otp = make_otp(mode="required", channels=["email:code", "totp"], default_channel="email:code")
    no_email = Member("77", roles=["editor"], email=None, name="Bo")
    client = flow_client(otp, no_email)
    assert client.get("/login").headers["Location"] == "/otp/setup"
    page = client.get("/otp/setup", headers={"Accept-Language": "de"}).text
    assert "keine E-Mail-Adresse hinterlegt" in page and "no email address on file" not in page
    token = page_csrf(page)
    refused = client.post("/otp/setup", data={"channel": "email:code", "csrf_token": token},
                          headers={"Accept-Language": "es"}).text
    assert "no hay ninguna dirección de correo electrónico registrada" in refused
