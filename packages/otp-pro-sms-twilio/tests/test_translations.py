"""The SMS in the member's language: the companion's catalogs are complete and every language fits the segment check."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from twilio_support import MOBILE_GB, site_settings, sms_settings

from otp_pro import ConfigurationError, Member, OtpPro, i18n
from otp_pro.testing.catalogs import catalog_problems, extraction_drift
from otp_pro_sms_twilio import count_segments
from otp_pro_sms_twilio.wording import DEFAULT_TEMPLATE, DOMAIN

PACKAGE = Path(__file__).resolve().parents[1]
LOCALE = PACKAGE / "src" / "otp_pro_sms_twilio" / "locale"
TEMPLATE = LOCALE / "otp_pro_sms_twilio.pot"


@pytest.mark.parametrize("locale", ["de", "fr", "es"])
def test_every_shipped_catalog_has_the_message_with_its_placeholders(locale: str) -> None:
    po = LOCALE / locale / "LC_MESSAGES" / "otp_pro_sms_twilio.po"
    assert catalog_problems(TEMPLATE, po, po.with_suffix(".mo")) == []


def test_the_template_holds_exactly_the_messages_of_the_code() -> None:
    assert extraction_drift(PACKAGE / "babel.cfg", [PACKAGE / "src" / "otp_pro_sms_twilio"], TEMPLATE) == []


def test_the_domain_ships_german_french_and_spanish() -> None:
    assert {"de", "fr", "es"} <= DOMAIN.available()


def spanish(member: Member) -> Member:
    return Member(member.id, roles=member.roles, email=member.email, name=member.name, fields=member.fields,
                  locale="es")


def test_a_spanish_members_sms_is_spanish_and_fits_the_segment_check(make_otp, ann, twilio) -> None:
    otp: OtpPro = make_otp(channels=["sms_twilio:code", "totp"], default_channel="sms_twilio:code")
    transport = otp.transports["sms_twilio"]
    assert transport.check() == []  # every shipped language of the default template fits max_segments = 1
    member = spanish(ann)
    now = otp.clock()
    message = otp.render_message(transport, member, "sms_twilio:code", "challenge", {
        "payload": "246810", "payload_kind": "code", "recipient": MOBILE_GB, "issued_at": now,
        "expires_at": now + timedelta(minutes=10)})
    assert message.text == "246810 es tu código de Example. Caduca en 10 min."
    info = count_segments(message.text)
    # "ó" is not in the GSM-7 alphabet: the Spanish text goes out as UCS-2 and still fits one segment.
    assert info.encoding == "UCS-2" and info.segments == 1 <= transport.config["max_segments"]
    # And through the real send path, to the fake Twilio API: the body that leaves is that one.
    otp.begin_setup(member, "sms_twilio:code")
    assert twilio.bodies(MOBILE_GB)[-1].endswith("es tu código de Example. Caduca en 10 min.")


def test_the_start_up_check_names_the_language_that_does_not_fit(tmp_path: Path) -> None:
    # 33 characters: one GSM-7 segment in English, two UCS-2 segments in Spanish.
    site = "Biblioteca Municipal de Salamanca"
    with pytest.raises(ConfigurationError) as info:
        OtpPro(site_settings(f"sqlite:///{tmp_path}/s.sqlite3", site_name=site, channels=None,
                             default_channel="email:code", providers={"sms_twilio": sms_settings()}))
    assert "in es: renders to 2 SMS segments" in str(info.value) and "UCS-2 because 'ó'" in str(info.value)
    # The site's own template is its own wording, sent as it is in every language: only it is checked.
    own = OtpPro(site_settings(f"sqlite:///{tmp_path}/t.sqlite3", site_name=site, channels=None,
                               default_channel="email:code",
                               providers={"sms_twilio": sms_settings(message_template="{payload}: {site_name}")}))
    own.close()


def test_the_default_template_is_translated_and_a_sites_own_is_not() -> None:
    from otp_pro_sms_twilio.wording import template

    with i18n.using(i18n.Language("de")):
        assert template({"message_template": DEFAULT_TEMPLATE}).startswith("{payload} ist Ihr Bestätigungscode")
        assert template({"message_template": "Code {payload}"}) == "Code {payload}"
