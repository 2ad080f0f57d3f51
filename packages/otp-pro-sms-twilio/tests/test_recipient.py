"""Who can get SMS: the member's number parsed to E.164; invalid, non-mobile or disallowed numbers hide the channel."""

from __future__ import annotations

import pytest
from twilio_support import LANDLINE_GB, MOBILE_FR, MOBILE_GB, MOBILE_GG

from otp_pro import ChannelUnavailable, Member, RecipientUnavailable

CHANNEL = "sms_twilio:code"


def phone(value, **kw) -> Member:
    return Member(id="m", email="m@example.com", fields={"phone": value} if value is not None else {}, **kw)


@pytest.mark.parametrize(("value", "e164"), [
    (MOBILE_GB, MOBILE_GB),
    ("+44 7400 123456", MOBILE_GB),
    ("+44 (0)7400-123456", MOBILE_GB),
    ("0044 7400 123456", MOBILE_GB),  # the international prefix most of the world dials
    (MOBILE_FR, MOBILE_FR),
    ("+1 (415) 555-2671", "+14155552671"),  # US numbers are FIXED_LINE_OR_MOBILE: accepted
    ("  +61 412 345 678 ", "+61412345678"),
])
def test_valid_mobile_numbers_are_normalised_to_e164(otp, value, e164):
    assert otp.transports["sms_twilio"].recipient(phone(value)) == e164
    assert CHANNEL in otp.status(phone(value)).channels


@pytest.mark.parametrize(("value", "reason"), [
    (None, "no mobile number on file"),
    ("", "no mobile number on file"),
    ("   ", "no mobile number on file"),
    (["+447400123456"], "no mobile number on file"),  # not a string
    ("call me maybe", "the phone number on file is not valid"),
    ("+44 7911", "the phone number on file is not valid"),
    ("+15551234567", "the phone number on file is not valid"),
    ("+" + "1" * 70, "the phone number on file is not valid"),
    ("07400 123456", "the phone number on file has no country code (write it with + and the country code)"),
    (7400123456, "the phone number on file has no country code (write it with + and the country code)"),
    (LANDLINE_GB, "the phone number on file is not a mobile number"),
    ("+44 800 123 4567", "the phone number on file is not a mobile number"),  # toll free
])
def test_members_who_cannot_get_sms_are_not_offered_it_and_told_why(otp, value, reason):
    member = phone(value)
    status = otp.status(member)
    assert CHANNEL not in status.channels
    assert status.unavailable[CHANNEL] == reason
    assert reason.find("7400") == -1  # the reason never repeats the number
    with pytest.raises(ChannelUnavailable) as info:
        otp.begin_setup(member, CHANNEL)
    assert info.value.reason == reason


def test_default_region_reads_national_numbers(make_otp):
    otp = make_otp(sms={"default_region": "GB"})
    assert otp.transports["sms_twilio"].recipient(phone("07400 123456")) == MOBILE_GB
    assert otp.transports["sms_twilio"].recipient(phone(7400123456)) == MOBILE_GB
    # A number written with + keeps its own country.
    assert otp.transports["sms_twilio"].recipient(phone("+33 6 12 34 56 78")) == MOBILE_FR


def test_allowed_countries(make_otp):
    otp = make_otp(sms={"allowed_countries": ["GB", "IE"]})
    assert CHANNEL in otp.status(phone(MOBILE_GB)).channels
    status = otp.status(phone(MOBILE_FR))
    assert CHANNEL not in status.channels
    assert status.unavailable[CHANNEL] == "text messages are not sent to numbers in this country (FR)"
    # Guernsey, Jersey and the Isle of Man share +44 but are not GB.
    assert otp.status(phone(MOBILE_GG)).unavailable[CHANNEL].endswith("(GG)")


def test_phone_field_names_the_member_field(make_otp):
    otp = make_otp(sms={"phone_field": "mobile"})
    assert otp.status(phone(MOBILE_GB)).unavailable[CHANNEL] == "no mobile number on file"
    member = Member(id="m", fields={"mobile": MOBILE_GB})
    assert otp.transports["sms_twilio"].recipient(member) == MOBILE_GB


def test_a_number_that_stops_being_valid_stops_sends(otp, twilio):
    member = phone(MOBILE_GB)
    otp.begin_setup(member, CHANNEL)
    otp.complete_setup(member, twilio.last_code())
    sent = len(twilio.requests)
    with pytest.raises(ChannelUnavailable) as info:
        otp.send_challenge(phone(LANDLINE_GB))  # the site's record changed to a landline
    assert info.value.reason == "the phone number on file is not a mobile number"
    assert len(twilio.requests) == sent


@pytest.mark.parametrize(("typed", "e164"), [
    ("+44 7400 123456", MOBILE_GB),
    ("+1 415-555-2671", "+14155552671"),
    (LANDLINE_GB, LANDLINE_GB),  # a provider test may try any valid number; Twilio answers 21614 if need be
])
def test_provider_test_numbers_are_normalised(otp, typed, e164):
    assert otp.transports["sms_twilio"].normalize_recipient(typed) == e164


@pytest.mark.parametrize("typed", ["07400 123456", "hello", "", "+1555"])
def test_provider_test_numbers_must_be_valid(otp, typed):
    with pytest.raises(RecipientUnavailable) as info:
        otp.transports["sms_twilio"].normalize_recipient(typed)
    assert "is not a valid phone number" in info.value.reason and "default_region" in info.value.reason
    with pytest.raises(RecipientUnavailable):
        otp.provider_test("sms_twilio", typed, dry_run=True)


def test_provider_test_accepts_national_numbers_with_default_region(make_otp):
    otp = make_otp(sms={"default_region": "GB"})
    assert otp.transports["sms_twilio"].normalize_recipient("07400 123456") == MOBILE_GB


# The UK reserves +44 7700 900000 to 900999 for drama: well formed, assigned to nobody.
DRAMA_GB = "+447700900123"


def test_provider_test_dry_run_takes_a_well_formed_number_not_known_to_be_assigned(otp, twilio):
    transport = otp.transports["sms_twilio"]
    assert transport.normalize_recipient("+44 7700 900123") == DRAMA_GB
    [warning] = transport.recipient_warnings(DRAMA_GB)
    assert "not a number known to be assigned" in warning
    assert transport.recipient_warnings(MOBILE_GB) == []
    result = otp.provider_test("sms_twilio", DRAMA_GB, dry_run=True)
    assert result.ok and result.dry_run and result.recipient == DRAMA_GB and twilio.requests == []


def test_provider_test_send_refuses_a_number_not_known_to_be_assigned(otp, twilio):
    result = otp.provider_test("sms_twilio", DRAMA_GB, dry_run=False, actor="ops")
    assert not result.ok and "is not a valid phone number" in (result.error or "")
    assert twilio.requests == []  # refused before any request: nothing billed
    [event] = otp.events(kinds=["provider_test"])
    assert event.outcome == "failed"


def test_provider_test_command_warns_on_a_dry_run_and_fails_a_send(otp, twilio, tmp_path):
    from click.testing import CliRunner

    from otp_pro.cli import cli

    config = tmp_path / "unused.toml"  # the instance is passed in: the file is never read
    dry = CliRunner().invoke(cli, ["--config", str(config), "providers", "test", "sms_twilio", "--to", DRAMA_GB,
                                   "--dry-run"], obj={"otp": otp})
    assert dry.exit_code == 0, dry.output
    assert f"dry run via sms_twilio to {DRAMA_GB}" in dry.stdout
    assert "warning: " in dry.stderr and "not a number known to be assigned" in dry.stderr
    sent = CliRunner().invoke(cli, ["--config", str(config), "providers", "test", "sms_twilio", "--to", DRAMA_GB,
                                    "--send"], obj={"otp": otp})
    assert sent.exit_code == 2 and "is not a valid phone number" in sent.stderr
    assert f"send failed via sms_twilio to {DRAMA_GB}" in sent.stdout
    assert twilio.requests == []
