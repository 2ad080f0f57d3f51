"""``providers.sms_twilio`` settings: every mistake is a ConfigurationError naming its key, secrets never shown."""

from __future__ import annotations

import pytest
from twilio_support import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, SERVICE_SID, site_settings, sms_settings

from otp_pro import ConfigurationError, Member, OtpPro
from otp_pro_sms_twilio.transport import DEFAULT_TEMPLATE, TwilioSmsTransport

KEY = "providers.sms_twilio."


@pytest.fixture
def build(tmp_path):
    """Build an OtpPro with the given ``providers.sms_twilio`` section (and site overrides)."""
    made = []

    def factory(section=None, **overrides):
        if section is not None:
            overrides.setdefault("providers", {"sms_twilio": section})
        overrides.setdefault("channels", None)
        overrides.setdefault("default_channel", "email:code")
        otp = OtpPro(site_settings(f"sqlite:///{tmp_path}/s.sqlite3", **overrides))
        made.append(otp)
        return otp

    yield factory
    for otp in made:
        otp.close()


def refused(build, section=None, **overrides) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        build(section, **overrides)
    return info.value


# ------------------------------------------------------------- not configured


def test_installed_but_unconfigured_transport_is_idle(build):
    otp = build()
    assert "sms_twilio:code" in otp.channels  # registered...
    assert "sms_twilio:code" not in otp.registered_channels  # ...but not in the default channel set
    status = otp.status(Member(id="1", email="a@example.com", fields={"phone": "+447400123456"}))
    assert "sms_twilio:code" not in status.channels and "sms_twilio:code" not in status.unavailable


@pytest.mark.parametrize(("overrides", "named"), [
    ({"channels": ["sms_twilio:code", "totp"], "default_channel": "totp"}, "channels"),
    ({"channels": ["email:code", "totp"], "roles": {"staff": {"requirement": "required",
                                                             "channels": ["sms_twilio:code"]}}},
     "roles.staff.channels"),
])
def test_naming_the_channel_without_credentials_is_refused(build, overrides, named):
    error = refused(build, **overrides)
    assert error.key == f"{KEY}account_sid"
    assert named in str(error)


def test_configured_transport_is_in_the_default_channel_set(build):
    assert "sms_twilio:code" in build(sms_settings()).registered_channels


# ------------------------------------------------------------- credentials and sender


@pytest.mark.parametrize("value", ["AB" + "0" * 32, "AC123", "ac" + "0" * 32, "AC" + "g" * 32, AUTH_TOKEN])
def test_account_sid_must_be_ac_and_32_hex(build, value):
    error = refused(build, sms_settings(account_sid=value))
    assert error.key == f"{KEY}account_sid"
    assert "AC followed by 32 hexadecimal" in str(error)
    assert value not in str(error)  # a token pasted into the wrong field is not echoed


@pytest.mark.parametrize("missing", ["account_sid", "auth_token"])
def test_credentials_are_required_once_configured(build, missing):
    error = refused(build, sms_settings(**{missing: None}))
    assert error.key == f"{KEY}{missing}"


def test_both_from_number_and_messaging_service_sid_is_refused(build):
    error = refused(build, sms_settings(messaging_service_sid=SERVICE_SID))
    assert error.key == f"{KEY}messaging_service_sid"
    assert "only one of from_number and messaging_service_sid" in str(error)


def test_neither_from_number_nor_messaging_service_sid_is_refused(build):
    error = refused(build, sms_settings(from_number=None))
    assert error.key == f"{KEY}from_number"


def test_messaging_service_sid_alone_is_enough(build):
    otp = build(sms_settings(from_number=None, messaging_service_sid=SERVICE_SID))
    assert otp.transports["sms_twilio"].config["messaging_service_sid"] == SERVICE_SID


@pytest.mark.parametrize("value", ["+1 415 555 2671", "14155552671", "+4420794600001", "+15551234567", "twilio"])
def test_from_number_must_be_e164(build, value):
    error = refused(build, sms_settings(from_number=value))
    assert error.key == f"{KEY}from_number"
    assert "E.164" in str(error)


@pytest.mark.parametrize("value", ["MG123", ACCOUNT_SID, "PN" + "0" * 32])
def test_messaging_service_sid_must_be_mg_and_32_hex(build, value):
    error = refused(build, sms_settings(from_number=None, messaging_service_sid=value))
    assert error.key == f"{KEY}messaging_service_sid"


def test_auth_token_from_an_environment_variable(build, monkeypatch):
    monkeypatch.setenv("OTP_TEST_TWILIO_TOKEN", AUTH_TOKEN)
    otp = build(sms_settings(auth_token={"env": "OTP_TEST_TWILIO_TOKEN"}))
    assert otp.transports["sms_twilio"].config.secret("auth_token") == AUTH_TOKEN
    monkeypatch.delenv("OTP_TEST_TWILIO_TOKEN")
    error = refused(build, sms_settings(auth_token={"env": "OTP_TEST_TWILIO_TOKEN"}))
    assert error.key == f"{KEY}auth_token" and "OTP_TEST_TWILIO_TOKEN is not set" in str(error)


def test_auth_token_is_redacted_everywhere(build):
    otp = build(sms_settings())
    transport = otp.transports["sms_twilio"]
    assert AUTH_TOKEN not in repr(transport)
    assert AUTH_TOKEN not in repr(transport.config)
    assert otp.redacted_settings()["providers"]["sms_twilio"]["auth_token"] == "********"
    assert AUTH_TOKEN not in str(otp.redacted_settings())
    # A wrongly typed token is reported without its value.
    error = refused(build, sms_settings(auth_token=987654321))
    assert error.key == f"{KEY}auth_token"
    assert "987654321" not in str(error) and "got ********" in str(error)


# ------------------------------------------------------------- other settings


@pytest.mark.parametrize(("value", "message"), [
    ("http://api.twilio.example", "must use https://"),
    ("ftp://127.0.0.1", "must be a URL"),
    ("https://user:pw@api.twilio.com", "must not contain a user name"),
    ("https://api.twilio.com?x=1", "query string"),
    ("https://api.twilio.com:port", "must be a URL"),
    ("not a url", "must be a URL"),
])
def test_api_base_url_must_be_https_or_loopback(build, value, message):
    error = refused(build, sms_settings(api_base_url=value))
    assert error.key == f"{KEY}api_base_url" and message in str(error)


@pytest.mark.parametrize(("value", "kept"), [
    ("https://api.dublin.ie1.twilio.com/", "https://api.dublin.ie1.twilio.com"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("http://localhost:8080/twilio/", "http://localhost:8080/twilio"),
])
def test_api_base_url_accepted(build, value, kept):
    transport = build(sms_settings(api_base_url=value)).transports["sms_twilio"]
    assert transport.base_url == kept
    assert transport.messages_url() == f"{kept}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def test_default_api_base_url_is_twilios(build):
    transport = build(sms_settings()).transports["sms_twilio"]
    assert transport.messages_url() == f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def test_country_codes_are_checked_and_upper_cased(build):
    config = build(sms_settings(default_region="gb", allowed_countries="gb, fr,GB")).transports["sms_twilio"].config
    assert config["default_region"] == "GB" and config["allowed_countries"] == ["GB", "FR"]
    assert refused(build, sms_settings(default_region="UK")).key == f"{KEY}default_region"  # ISO says GB
    assert refused(build, sms_settings(allowed_countries=["GB", "XX"])).key == f"{KEY}allowed_countries"


@pytest.mark.parametrize(("key", "value"), [
    ("max_retries", 6), ("max_retries", -1), ("backoff_seconds", 6), ("backoff_seconds", -0.1),
    ("timeout_seconds", 0), ("timeout_seconds", 121), ("max_segments", 0), ("max_segments", 11),
])
def test_bounded_numbers(build, key, value):
    assert refused(build, sms_settings(**{key: value})).key == f"{KEY}{key}"


def test_defaults(build):
    config = build(sms_settings(timeout_seconds=None, max_retries=None, backoff_seconds=None)) \
        .transports["sms_twilio"].config
    assert config["phone_field"] == "phone"
    assert config["message_template"] == DEFAULT_TEMPLATE
    assert config["dry_run_in_provider_test"] is True
    assert config["api_base_url"] is None and config["allowed_countries"] == [] and config["default_region"] is None
    assert (config["timeout_seconds"], config["max_retries"], config["backoff_seconds"]) == (10.0, 2, 0.5)
    assert config["max_segments"] == 1


def test_every_setting_has_help():
    assert all(spec.help for spec in TwilioSmsTransport.settings)
    assert [s.name for s in TwilioSmsTransport.settings if s.secret] == ["auth_token"]


# ------------------------------------------------------------- message template


@pytest.mark.parametrize(("template", "message"), [
    ("Your code is ready", "must contain {payload}"),
    ("{payload is your code", "not a valid template"),
    ("{0} is your code", "placeholder {0} is not allowed"),
    ("{payload.__class__} is your code", "is not allowed"),
    ("{payload} for {member[0]}", "is not allowed"),
])
def test_message_template_is_checked(build, template, message):
    error = refused(build, sms_settings(message_template=template))
    assert error.key == f"{KEY}message_template" and message in str(error)


def test_a_template_that_cannot_be_rendered_is_reported_at_start_up(build):
    error = refused(build, sms_settings(message_template="{payload} for {member_name:d}"))
    assert error.key == f"{KEY}message_template" and "cannot be rendered" in str(error)
    # Format specs that fit their values are fine, dates included.
    assert build(sms_settings(message_template="{payload:>6} valid until {expires_at:%H:%M} UTC"))


def test_a_template_longer_than_one_segment_is_reported_with_the_count(build):
    template = "{payload} is your {site_name} verification code. " + "Never share it with anyone. " * 5
    error = refused(build, sms_settings(message_template=template))
    assert error.key == f"{KEY}message_template"
    assert "renders to 2 SMS segments" in str(error) and "GSM-7" in str(error) and "one segment holds 160" in str(error)
    assert "max_segments = 2" in str(error)
    # Raising max_segments accepts it.
    assert build(sms_settings(message_template=template, max_segments=2))


def test_one_non_gsm_character_makes_a_short_template_two_segments(build):
    template = "{payload} is your {site_name} code. Don\u2019t share it with anyone. Expires in {expiry_minutes} min."
    error = refused(build, sms_settings(message_template=template))
    assert "UCS-2" in str(error) and "'\u2019'" in str(error) and "one segment holds 70" in str(error)
    assert build(sms_settings(message_template=template.replace("\u2019", "'")))


def test_the_length_check_uses_the_sites_own_values(build):
    # The default template fits one segment for a short site name, not for a very long one.
    assert build(sms_settings(), site_name="Example")
    error = refused(build, sms_settings(), site_name="The Very Long Name Of A Municipal Library Consortium " * 2)
    assert error.key == f"{KEY}message_template" and "2 SMS segments" in str(error)


def test_every_problem_is_reported_together(build):
    error = refused(build, sms_settings(account_sid="nope", from_number="nope", max_retries=99))
    keys = " ".join(error.problems)
    assert f"{KEY}account_sid" in keys and f"{KEY}from_number" in keys and f"{KEY}max_retries" in keys
    assert AUTH_TOKEN not in str(error)


def test_unknown_keys_are_refused(build):
    error = refused(build, {**sms_settings(), "from": FROM_NUMBER})
    assert error.key == f"{KEY}from"
