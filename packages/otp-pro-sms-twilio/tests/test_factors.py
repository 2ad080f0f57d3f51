"""An SMS factor is bound to the phone confirmed at its setup; a member may hold it beside an email factor.

The official ``twilio`` client talks to the fake Messaging API on 127.0.0.1
(twilio_support.FakeTwilio), so "nothing was texted" means the server received no request.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from twilio_support import MOBILE_GB, MOBILE_GG, FakeTwilio, sms_settings

from otp_pro import ChannelUnavailable, FactorNeedsReconfirming, FactorNotEnrolled, Member, OtpPro
from otp_pro.testing import Mailbox, mailed_code

CHANNEL = "sms_twilio:code"


def numbers_texted(twilio: FakeTwilio) -> list[str]:
    return [r.form.get("To", "") for r in twilio.requests]


def test_a_changed_phone_is_not_texted_until_the_new_one_is_confirmed(otp, twilio, clock, ann):
    otp.begin_setup(ann, CHANNEL)
    assert len(otp.complete_setup(ann, twilio.last_code(MOBILE_GB))) == 10
    [factor] = otp.factors(ann)
    assert factor.kind == CHANNEL and not factor.needs_reconfirming
    clock.advance(60)
    otp.send_challenge(ann)
    assert otp.verify(ann, twilio.last_code(MOBILE_GB)).ok

    # Someone with the password changes the profile's phone: the factor stays bound to the confirmed one.
    moved = dataclasses.replace(ann, fields={"phone": MOBILE_GG})
    clock.advance(60)
    before = len(twilio.requests)
    for channel in (None, CHANNEL):
        with pytest.raises(FactorNeedsReconfirming) as refused:
            otp.send_challenge(moved, channel=channel)
        assert refused.value.factor_id == factor.id and refused.value.channel == CHANNEL
    assert len(twilio.requests) == before  # neither the old number nor the new one was texted
    assert MOBILE_GG not in numbers_texted(twilio)
    [listed] = otp.status(moved).factors
    assert listed.id == factor.id and listed.needs_reconfirming and not listed.usable
    assert "another address" in (listed.reason or "")

    # The member confirms the new number: its code goes there, and the factor is bound to it.
    otp.begin_setup(moved, CHANNEL, reconfirm=factor.id)
    assert numbers_texted(twilio)[before:] == [MOBILE_GG]
    assert otp.complete_setup(moved, twilio.last_code(MOBILE_GG)) == []  # backup codes kept, none issued
    assert otp.status(moved).backup_codes_remaining == 10
    [rebound] = otp.factors(moved)
    assert rebound.kind == CHANNEL and not rebound.needs_reconfirming and rebound.usable

    clock.advance(60)
    sent_before = len(twilio.requests)
    challenge = otp.send_challenge(moved)
    assert numbers_texted(twilio)[sent_before:] == [MOBILE_GG]
    assert challenge.provider_message_id == twilio.created[-1]["sid"]
    result = otp.verify(moved, twilio.last_code(MOBILE_GG))
    assert result.ok and result.factor_id == rebound.id
    # The old number is the one that now needs confirming: a profile changed back is not texted either.
    clock.advance(60)
    with pytest.raises(FactorNeedsReconfirming):
        otp.send_challenge(ann)
    assert numbers_texted(twilio)[sent_before:] == [MOBILE_GG]


@pytest.fixture
def with_email(make_otp: Any, twilio: FakeTwilio, smtp_server: tuple[str, int, Mailbox]) -> OtpPro:
    """A site offering SMS, email (the loopback SMTP server) and an authenticator app."""
    host, port, _mailbox = smtp_server
    return make_otp(channels=[CHANNEL, "email:code", "totp"], default_channel="email:code", providers={
        "sms_twilio": sms_settings(twilio),
        "email": {"smtp_host": host, "smtp_port": port, "from_address": "otp@example.com"},
    })


def test_a_member_with_an_email_and_an_sms_factor_signs_in_with_either(with_email, twilio, clock, ann,
                                                                        smtp_server):
    otp = with_email
    _host, _port, mailbox = smtp_server
    assert ann.email
    otp.begin_setup(ann, "email:code")
    assert len(otp.complete_setup(ann, mailed_code(mailbox, ann.email))) == 10
    otp.begin_setup(ann, CHANNEL, label="Mobile")
    assert otp.complete_setup(ann, twilio.last_code(MOBILE_GB)) == []  # backup codes only with the first factor
    mail, sms = otp.factors(ann)
    assert (mail.kind, mail.is_default, sms.kind, sms.label, sms.is_default) == \
        ("email:code", True, CHANNEL, "Mobile", False)

    # The default factor: email; nothing is texted.
    clock.advance(60)
    texted = len(twilio.requests)
    assert otp.send_challenge(ann).channel == "email:code"
    assert len(twilio.requests) == texted
    result = otp.verify(ann, mailed_code(mailbox, ann.email))
    assert result.ok and result.channel == "email:code" and result.factor_id == mail.id

    # Asked for by channel: the SMS factor, at the confirmed phone.
    clock.advance(60)
    assert otp.send_challenge(ann, channel=CHANNEL).channel == CHANNEL
    assert numbers_texted(twilio)[texted:] == [MOBILE_GB]
    result = otp.verify(ann, twilio.last_code(MOBILE_GB))
    assert result.ok and result.channel == CHANNEL and result.factor_id == sms.id

    # Made the default, SMS is what a plain send uses.
    otp.set_default_factor(ann, sms.id)
    clock.advance(60)
    assert otp.send_challenge(ann).channel == CHANNEL
    assert otp.verify(ann, twilio.last_code(MOBILE_GB)).ok

    # Without the email factor the member still signs in by SMS, and email is no longer sent to.
    otp.remove_factor(ann, mail.id)
    clock.advance(60)
    assert otp.send_challenge(ann).channel == CHANNEL
    assert otp.verify(ann, twilio.last_code(MOBILE_GB)).ok
    with pytest.raises(FactorNotEnrolled):
        otp.send_challenge(ann, channel="email:code")


def test_a_member_without_a_phone_keeps_an_sms_factor_it_cannot_use(otp, twilio, clock, ann):
    """A phone removed from the profile: nothing to text, and the factor is not offered as if it worked."""
    otp.begin_setup(ann, CHANNEL)
    otp.complete_setup(ann, twilio.last_code(MOBILE_GB))
    no_phone = Member(id=ann.id, roles=ann.roles, email=ann.email, name=ann.name)
    clock.advance(60)
    before = len(twilio.requests)
    with pytest.raises(ChannelUnavailable) as refused:
        otp.send_challenge(no_phone)
    assert not isinstance(refused.value, FactorNeedsReconfirming)
    assert len(twilio.requests) == before
