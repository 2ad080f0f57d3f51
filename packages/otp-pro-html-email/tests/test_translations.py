"""The HTML email in the member's language: the companion's catalogs are complete and used for every part."""

from __future__ import annotations

from pathlib import Path

import pytest

from otp_pro import Member
from otp_pro.testing.catalogs import catalog_problems, extraction_drift

PACKAGE = Path(__file__).resolve().parents[1]
LOCALE = PACKAGE / "src" / "otp_pro_html_email" / "locale"
TEMPLATE = LOCALE / "otp_pro_html_email.pot"


@pytest.mark.parametrize("locale", ["de", "fr", "es"])
def test_every_shipped_catalog_has_every_message_with_its_placeholders(locale):
    po = LOCALE / locale / "LC_MESSAGES" / "otp_pro_html_email.po"
    assert catalog_problems(TEMPLATE, po, po.with_suffix(".mo")) == []


def test_the_template_holds_exactly_the_messages_of_the_templates():
    assert extraction_drift(PACKAGE / "babel.cfg", [PACKAGE / "src" / "otp_pro_html_email"], TEMPLATE) == []


def test_a_french_members_code_email_is_french_in_every_part(make_otp, mailbox):
    otp = make_otp(html_email={})
    otp.begin_setup(Member(id="1", email="ann@example.com", name="Anne", locale="fr"), "email:code")
    [mail] = mailbox.to("ann@example.com")
    html = mail.get_body(("html",)).get_content()
    text = mail.get_body(("plain",)).get_content()
    assert mail["Subject"] == "Example : votre code de vérification"  # a header is one line of plain spaces
    assert text.startswith("Bonjour Anne,")
    assert "Saisissez ce code pour terminer la configuration de la validation en deux étapes sur Example" in text
    assert '<html lang="fr">' in html
    assert "Votre code de vérification</h1>" in html
    assert "Il expire dans 10\u00a0minutes" not in html and "Il expire dans 10 minutes et ne fonctionne" in html


def test_an_english_member_keeps_the_english_wording(make_otp, mailbox):
    otp = make_otp(html_email={})
    otp.begin_setup(Member(id="2", email="bob@example.com", name="Bob"), "email:code")
    [mail] = mailbox.to("bob@example.com")
    assert mail["Subject"] == "Example: your verification code"
    assert '<html lang="en">' in mail.get_body(("html",)).get_content()
