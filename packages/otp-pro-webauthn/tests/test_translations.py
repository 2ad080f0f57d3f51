"""The passkey's name and hint in the member's language: the companion's catalogs are complete, hold exactly
the code's messages, and the core finds the name through its ``label`` and the flow's pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from otp_pro import i18n
from otp_pro.testing.catalogs import catalog_problems, extraction_drift
from otp_pro_webauthn.factor import WebAuthnFactor
from otp_pro_webauthn.wording import DOMAIN, LABEL

PACKAGE = Path(__file__).resolve().parents[1]
LOCALE = PACKAGE / "src" / "otp_pro_webauthn" / "locale"
TEMPLATE = LOCALE / "otp_pro_webauthn.pot"


@pytest.mark.parametrize("locale", ["de", "fr", "es"])
def test_every_shipped_catalog_has_every_message(locale: str) -> None:
    po = LOCALE / locale / "LC_MESSAGES" / "otp_pro_webauthn.po"
    assert catalog_problems(TEMPLATE, po, po.with_suffix(".mo")) == []


def test_the_template_holds_exactly_the_messages_of_the_code() -> None:
    assert extraction_drift(PACKAGE / "babel.cfg", [PACKAGE / "src" / "otp_pro_webauthn"], TEMPLATE) == []


@pytest.mark.parametrize(("locale", "name", "hint_starts"), [
    ("en", "Passkey or security key", "Use your passkey"),
    ("de", "Passkey oder Sicherheitsschlüssel", "Verwenden Sie Ihren Passkey"),
    ("fr", "Clé d’accès ou clé de sécurité", "Utilisez votre clé d’accès"),  # noqa: RUF001 - French apostrophe
    ("es", "Llave de acceso o llave de seguridad", "Usa tu llave de acceso"),
])
def test_the_name_and_the_hint_follow_the_language(otp, locale: str, name: str, hint_starts: str) -> None:
    assert {"de", "fr", "es"} <= DOMAIN.available()
    factor_type = otp.channels["webauthn"].factor_type
    assert isinstance(factor_type, WebAuthnFactor)
    with i18n.using(i18n.Language(locale)):
        assert i18n.label(LABEL) == name
        assert factor_type.describe().hint.startswith(hint_starts)
