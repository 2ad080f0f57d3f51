"""A German and a French browser get the verify and settings pages in their language (Debian's Chromium).

The browser context's ``locale`` makes Chromium send ``Accept-Language: de-DE`` (``fr-FR``); the flow
layer picks the catalog from it. The screenshots are test artefacts; with ``OTP_PRO_DOCS_IMG`` set to a
folder (``docs/img``) they are also written there under the names docs/translations.md shows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_browser import code_from_mailbox, visible

from otp_pro.testing import system_chromium
from otp_pro_flask.demo_site import DemoSite, running

TIMEOUT_MS = 15_000
REPO = Path(__file__).resolve().parents[3]

#: What each language's pages must say, and the browser locale that asks for it.
PAGES = {
    "de": {"browser": "de-DE", "email": "E-Mail", "password": "Passwort", "sign_in": "Anmelden",
           "verify": "Bestätigen Sie, dass Sie es sind", "button": "Bestätigen",
           "trust": "Diesem Browser 30 Tage lang vertrauen", "settings": "Sicherheitseinstellungen",
           "devices": "Vertrauenswürdige Geräte"},
    "fr": {"browser": "fr-FR", "email": "E-mail", "password": "Mot de passe", "sign_in": "Se connecter",
           "verify": "Confirmez votre identité", "button": "Vérifier",
           "trust": "Faire confiance à ce navigateur pendant 30 jours", "settings": "Paramètres de sécurité",
           "devices": "Appareils de confiance"},
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with system_chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, DemoSite]]:
    database = tmp_path_factory.mktemp("i18n") / "demo.sqlite3"
    with running("127.0.0.1", str(database), overrides={"resend_cooldown_seconds": 0}) as served:
        yield served


def save(page: Any, name: str) -> None:
    """The page as a test artefact, and under ``$OTP_PRO_DOCS_IMG`` when set."""
    folders = [Path(os.environ.get("OTP_PRO_ARTEFACTS") or REPO / "artefacts" / "screenshots")]
    if os.environ.get("OTP_PRO_DOCS_IMG"):
        folders.append(Path(os.environ["OTP_PRO_DOCS_IMG"]))
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"i18n-{name}.png"), full_page=True)


@pytest.mark.parametrize("lang", sorted(PAGES))
def test_verify_and_settings_pages_in_the_browsers_language(lang: str, demo: tuple[str, DemoSite],
                                                           browser: Any) -> None:
    base, site = demo
    want = PAGES[lang]
    email = f"{lang}@demo.test"
    site.add_member(email, "pw-" + lang, enroll_on="email:code")
    context = browser.new_context(locale=want["browser"], viewport={"width": 900, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto(f"{base}/login")
        # The demo site's own login page: rendered by its view, in the language the flow chose for the request.
        assert page.locator("html").get_attribute("lang") == lang
        page.get_by_label(want["email"], exact=True).fill(email)
        page.get_by_label(want["password"], exact=True).fill("pw-" + lang)
        page.get_by_role("button", name=want["sign_in"], exact=True).click()
        page.wait_for_url(f"{base}/otp/verify")
        assert page.locator("html").get_attribute("lang") == lang
        visible(page.get_by_role("heading", name=want["verify"]))
        save(page, f"verify-{lang}")
        page.locator("#otp-code").fill(code_from_mailbox(context, base, email))
        page.get_by_label(want["trust"]).check()
        page.get_by_role("button", name=want["button"], exact=True).click()
        page.wait_for_url(f"{base}/protected")
        page.goto(f"{base}/otp/settings")
        assert page.locator("html").get_attribute("lang") == lang
        visible(page.get_by_role("heading", name=want["settings"], exact=True))
        visible(page.get_by_role("heading", name=want["devices"]))
        save(page, f"settings-{lang}")
    finally:
        context.close()
