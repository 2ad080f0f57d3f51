"""The whole path through the public OtpPro API: SMS offered, set up, challenged, verified, audited."""

from __future__ import annotations

import logging
import re

import pytest
from twilio_support import AUTH_TOKEN, FROM_NUMBER, LANDLINE_GB, MOBILE_FR, MOBILE_GB, Reply, twilio_error

from otp_pro import (
    ChannelUnavailable,
    DeliveryError,
    Member,
    Message,
    PermanentDeliveryError,
    TransientDeliveryError,
    hookimpl,
)

CHANNEL = "sms_twilio:code"


def all_event_text(otp) -> str:
    return "\n".join(repr(e) for e in otp.events(limit=1000))


def test_code_by_sms_end_to_end(otp, twilio, clock, ann, caplog):
    caplog.set_level(logging.DEBUG)
    status = otp.status(ann)
    assert CHANNEL in status.channels and status.default_channel == CHANNEL

    setup = otp.begin_setup(ann, CHANNEL)
    [request] = twilio.requests
    assert request.form["To"] == MOBILE_GB and request.form["From"] == FROM_NUMBER
    assert request.form["Body"].endswith(" is your Example verification code. It expires in 10 min.")
    assert setup.challenge.provider_message_id == twilio.created[0]["sid"]
    assert setup.challenge.recipient_hint == "+44*******456"
    setup_code = twilio.last_code()
    backup_codes = otp.complete_setup(ann, setup_code)
    assert len(backup_codes) == 10 and otp.status(ann).channel == CHANNEL

    # The setup's security notice went by SMS too (the member's channel; this site sends no email).
    assert twilio.bodies()[1].startswith("Example: Two-step verification was set up on your account.")

    clock.advance(60)
    challenge = otp.send_challenge(ann)
    assert challenge.channel == CHANNEL and challenge.provider_message_id == twilio.created[2]["sid"]
    code = twilio.last_code()
    assert otp.verify(ann, "000000" if code != "000000" else "111111").ok is False
    result = otp.verify(ann, code)
    assert result.ok and result.method == "code" and result.channel == CHANNEL
    assert not otp.verify(ann, code).ok  # used once

    # Audit: each send carries the Twilio SID; no code and no token anywhere.
    sent = otp.events(ann, kinds=["challenge_sent"])
    assert [e.details["provider_message_id"] for e in sent] == [twilio.created[2]["sid"], twilio.created[0]["sid"]]
    assert all(e.details["transport"] == "sms_twilio" and e.details["recipient"] == "+44*******456" for e in sent)
    text = all_event_text(otp)
    for secret in (setup_code, code, AUTH_TOKEN, *backup_codes):
        assert secret not in text
        assert secret not in caplog.text


def test_members_who_cannot_get_sms_are_not_offered_it(otp):
    cases = {
        "no field": (Member(id="a"), "no mobile number on file"),
        "garbage": (Member(id="b", fields={"phone": "ring me"}), "the phone number on file is not valid"),
        "landline": (Member(id="c", fields={"phone": LANDLINE_GB}), "the phone number on file is not a mobile number"),
    }
    for member, reason in cases.values():
        status = otp.status(member)
        assert status.channels == ("totp",) and status.unavailable == {CHANNEL: reason}
        with pytest.raises(ChannelUnavailable):
            otp.begin_setup(member, CHANNEL)


def test_members_in_other_countries_are_not_offered_it(make_otp, twilio):
    otp = make_otp(sms={"allowed_countries": ["GB"]})
    status = otp.status(Member(id="fr", fields={"phone": MOBILE_FR}))
    assert CHANNEL not in status.channels
    assert status.unavailable[CHANNEL] == "text messages are not sent to numbers in this country (FR)"
    assert twilio.requests == []


def enrolled(otp, twilio, member):
    otp.begin_setup(member, CHANNEL)
    otp.complete_setup(member, twilio.last_code())


@pytest.mark.parametrize(("code", "status"), [(21610, 400), (21211, 400), (20003, 401), (60605, 403)])
def test_a_permanent_failure_is_audited_with_the_error_code(otp, twilio, ann, code, status):
    enrolled(otp, twilio, ann)
    twilio.reply(twilio_error(code, status))
    with pytest.raises(PermanentDeliveryError) as info:
        otp.send_challenge(ann)
    assert info.value.provider_code == str(code)
    [failed] = otp.events(ann, kinds=["delivery_failed"])
    assert failed.details["provider_code"] == str(code) and failed.details["permanent"] is True
    assert failed.details["error"] == "PermanentDeliveryError" and failed.outcome == "failed"
    # The code in the message Twilio refused was never delivered: it does not sign in.
    undelivered = twilio.last_code()
    assert not otp.verify(ann, undelivered).ok
    assert undelivered not in all_event_text(otp) and AUTH_TOKEN not in all_event_text(otp)


def test_a_transient_failure_after_retries_is_audited(make_otp, twilio, ann):
    otp = make_otp(sms={"max_retries": 1})
    enrolled(otp, twilio, ann)
    twilio.reply(twilio_error(20429, 429), twilio_error(20429, 429))
    with pytest.raises(TransientDeliveryError):
        otp.send_challenge(ann)
    [failed] = otp.events(ann, kinds=["delivery_failed"])
    assert failed.details["provider_code"] == "20429" and failed.details["permanent"] is False
    # A storm that passes within the retries is one successful send, audited with its SID.
    twilio.reply(twilio_error(20429, 429))
    challenge = otp.send_challenge(ann)
    assert otp.events(ann, kinds=["challenge_sent"])[0].details["provider_message_id"] == challenge.provider_message_id
    assert otp.verify(ann, twilio.last_code()).ok


def test_a_timeout_during_a_challenge_is_audited(make_otp, twilio, ann):
    otp = make_otp(sms={"timeout_seconds": 0.2, "max_retries": 0})
    enrolled(otp, twilio, ann)
    twilio.reply(Reply(201, delay=2))
    with pytest.raises(TransientDeliveryError):
        otp.send_challenge(ann)
    assert otp.events(ann, kinds=["delivery_failed"])[0].details["provider_code"] == "timeout"


def test_message_template_and_variables(make_otp, twilio):
    otp = make_otp(sms={"message_template": "{site_name}: {payload} ({member_name}). Help: {support_email}"})
    member = Member(id="z", name="Zoé", fields={"phone": MOBILE_GB})
    otp.begin_setup(member, CHANNEL)
    body = twilio.bodies()[-1]
    assert re.fullmatch(r"Example: \d{6} \(Zoé\)\. Help: help@example\.com", body)


def test_other_transports_keep_the_cores_wording(make_otp, twilio):
    otp = make_otp(channels=["sms_twilio:code", "outbox:code", "totp"])
    member = Member(id="o", email="o@example.com", fields={"phone": MOBILE_GB})
    otp.begin_setup(member, "outbox:code")
    mail = otp.transports["outbox"].last()
    assert mail.subject == "Example: your verification code" and mail.text.startswith("Hello o,")
    assert twilio.requests == []


def test_the_plugin_renders_only_sms_codes_and_tests(otp):
    from otp_pro_sms_twilio import plugin

    sms, outbox = otp.transports["sms_twilio"], otp.transports["outbox"]
    variables = {"payload": "123456", "payload_kind": "code", "recipient": MOBILE_GB, "site_name": "Example",
                 "expiry_minutes": 10}
    rendered = plugin.otp_pro_render_message(sms, CHANNEL, "challenge", variables)
    assert rendered.text == "123456 is your Example verification code. It expires in 10 min."
    assert rendered.subject == "" and rendered.recipient == MOBILE_GB
    assert plugin.otp_pro_render_message(sms, CHANNEL, "test", variables) is not None
    assert plugin.otp_pro_render_message(outbox, "outbox:code", "challenge", variables) is None
    assert plugin.otp_pro_render_message(sms, CHANNEL, "notification", {**variables, "notice": "x"}) is None
    link = {**variables, "payload_kind": "magic_link"}
    assert plugin.otp_pro_render_message(sms, "sms_twilio:magic_link", "challenge", link) is None


def test_a_site_plugin_can_word_sms_differently(make_otp, twilio):
    class Wording:
        @hookimpl
        def otp_pro_render_message(self, transport, variables):
            if transport.name != "sms_twilio":
                return None
            return Message(recipient=variables["recipient"], subject="", text=f"Code: {variables['payload']}")

    otp = make_otp(plugins=[Wording()])
    otp.begin_setup(Member(id="w", fields={"phone": MOBILE_GB}), CHANNEL)
    assert re.fullmatch(r"Code: \d{6}", twilio.bodies()[-1])


def test_provider_test_dry_run_sends_nothing_and_shows_the_parameters(otp, twilio):
    assert otp.transports["sms_twilio"].config["dry_run_in_provider_test"] is True
    result = otp.provider_test("sms_twilio", "+44 7400 123456", dry_run=True, actor="ops")
    assert twilio.requests == []
    assert result.dry_run and result.ok and result.recipient == MOBILE_GB
    assert re.fullmatch(r"\d{6} is your Example verification code\. It expires in 10 min\.", result.text)
    params = result.parameters
    assert params["To"] == MOBILE_GB and params["From"] == FROM_NUMBER and params["auth_token"] == "********"
    assert params["url"].endswith("/Messages.json") and params["segments"] == 1 and params["encoding"] == "GSM-7"
    [event] = otp.events(kinds=["provider_test"])
    assert event.details["dry_run"] is True and event.actor == "ops" and event.details["recipient"] == "+44*******456"
    assert AUTH_TOKEN not in repr(result) and AUTH_TOKEN not in all_event_text(otp)


def test_provider_test_send(otp, twilio):
    result = otp.provider_test("sms_twilio", MOBILE_GB, dry_run=False, actor="ops")
    assert result.ok and result.provider_message_id == twilio.created[0]["sid"]
    assert twilio.requests[0].form["Body"] == result.text
    event = otp.events(kinds=["provider_test"])[0]
    assert event.details["provider_message_id"] == result.provider_message_id and event.outcome == "ok"


def test_provider_test_failure_reports_the_code_not_the_token(otp, twilio):
    twilio.reply(twilio_error(21608))
    result = otp.provider_test("sms_twilio", MOBILE_GB, dry_run=False)
    assert not result.ok and "21608" in result.error and "trial account" in result.error
    event = otp.events(kinds=["provider_test"])[0]
    assert event.outcome == "failed" and "21608" in event.details["error"]
    for text in (result.error, all_event_text(otp)):
        assert AUTH_TOKEN not in text and result.text not in text


def test_unconfigured_provider_test_dry_run_shows_what_is_missing(make_otp):
    otp = make_otp(providers={}, channels=["totp"], default_channel="totp")
    result = otp.provider_test("sms_twilio", MOBILE_GB, dry_run=True)
    assert result.parameters["account_sid"] is None and result.parameters["auth_token"] is None
    sent = otp.provider_test("sms_twilio", MOBILE_GB, dry_run=False)
    assert not sent.ok and "not configured" in sent.error


def test_no_secret_in_repr_settings_exceptions_audit_or_logs(make_otp, twilio, ann, caplog):
    caplog.set_level(logging.DEBUG)
    otp = make_otp()
    enrolled(otp, twilio, ann)
    for reply in (twilio_error(21211), twilio_error(20500, 500), twilio_error(20500, 500), twilio_error(20500, 500)):
        twilio.reply(reply)
    errors = []
    for _ in range(2):
        with pytest.raises(DeliveryError) as info:
            otp.send_challenge(ann)
        errors.append(info.value)
    assert [type(e) for e in errors] == [PermanentDeliveryError, TransientDeliveryError]
    texts = [repr(otp), repr(otp.transports["sms_twilio"]), str(otp.redacted_settings()), all_event_text(otp),
             caplog.text, *(str(e) for e in errors), *(repr(e) for e in errors)]
    bodies = twilio.bodies()
    codes = [found.group(0) for b in bodies if (found := re.search(r"\d{6}", b))]  # security notices hold none
    assert codes
    for text in texts:
        assert AUTH_TOKEN not in text
        for code in codes:
            assert code not in text
