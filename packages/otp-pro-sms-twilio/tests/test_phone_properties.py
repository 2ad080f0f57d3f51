"""Phone numbers of every shape: a valid E.164 number or a typed refusal, never another exception.

Hypothesis feeds the transport's recipient resolution (a member's ``phone``
field), its availability (``status().unavailable``) and ``normalize_recipient``
(what an operator types for a provider test) with digits of every script,
letters, separators, huge and empty strings, None, bytes, numbers, containers,
and the example numbers ``phonenumbers`` ships for every region, written in
E.164, international, national and ``00`` forms. Every answer is either an E.164
string (``+`` and ASCII digits, valid, re-parsing to itself) or
:class:`~otp_pro.RecipientUnavailable` with a reason that never repeats the digits.
"""

from __future__ import annotations

import os
from typing import Any

import phonenumbers
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from otp_pro import Member, RecipientUnavailable
from otp_pro_sms_twilio.phone import INVALID, NO_COUNTRY, NO_NUMBER, NOT_MOBILE, is_e164, sms_recipient

CHANNEL = "sms_twilio:code"
PROPS = settings(max_examples=int(os.environ.get("OTP_PRO_PHONE_EXAMPLES", "150")), deadline=None,
                 derandomize=True, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
REASONS = {NO_NUMBER, INVALID, NO_COUNTRY, NOT_MOBILE}

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
TYPES = [PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE,
         PhoneNumberType.TOLL_FREE, PhoneNumberType.PREMIUM_RATE, PhoneNumberType.VOIP, PhoneNumberType.PAGER,
         PhoneNumberType.UAN, PhoneNumberType.PERSONAL_NUMBER, PhoneNumberType.SHARED_COST]
FORMATS = [PhoneNumberFormat.E164, PhoneNumberFormat.INTERNATIONAL, PhoneNumberFormat.NATIONAL,
           PhoneNumberFormat.RFC3966]


def _examples() -> list[tuple[str, int, phonenumbers.PhoneNumber]]:
    out = []
    for region in REGIONS:
        for kind in TYPES:
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                out.append((region, kind, number))
    return out


EXAMPLES = _examples()
FULL_WIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + i) for i in range(10)))
ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x0660 + i) for i in range(10)))
#: Every script's decimal digits (Unicode category Nd): Arabic-Indic, Devanagari, full-width, Thai, ...
unicode_digits = st.characters(categories=["Nd"])
phone_like = st.text(alphabet=st.one_of(unicode_digits, st.sampled_from(" +-().-/\u00a0\u2011\u3000xX#*,;")),
                     max_size=30)
example_numbers = st.tuples(st.sampled_from(EXAMPLES), st.sampled_from(FORMATS), st.booleans()).map(
    lambda t: _write(t[0][2], t[1], t[2]))
anything = st.one_of(
    phone_like,
    st.text(max_size=40),
    st.text(min_size=60, max_size=5000),
    st.text(alphabet="+0123456789", min_size=1, max_size=200),
    example_numbers,
    example_numbers.map(lambda s: s.translate(FULL_WIDTH)),
    example_numbers.map(lambda s: s.translate(ARABIC_INDIC)),
    st.binary(max_size=30),
    st.none(),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.lists(st.text(max_size=5), max_size=2),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
)


def _write(number: phonenumbers.PhoneNumber, fmt: int, double_zero: bool) -> str:
    text = phonenumbers.format_number(number, fmt)
    if double_zero and text.startswith("+"):
        text = "00" + text[1:]
    return text


def _digits(value: Any) -> str:
    return "".join(ch for ch in str(value) if ch.isdigit())


def assert_e164(value: str) -> None:
    assert isinstance(value, str) and value.isascii() and value.startswith("+") and value[1:].isdigit(), value
    assert is_e164(value), value
    number = phonenumbers.parse(value, None)
    assert phonenumbers.is_valid_number(number)


def phone_member(value: Any) -> Member:
    return Member(id="phone-prop", email="p@example.com", fields={"phone": value})


@pytest.fixture(params=[None, "GB", "IN"], ids=["no-region", "GB", "IN"])
def region_otp(request: pytest.FixtureRequest, make_otp: Any) -> Any:
    return make_otp(sms={"default_region": request.param}), request.param


@PROPS
@given(value=anything)
@example(value="+447400123456")
@example(value="+44 7400 123456\u0000")
@example(value="\u202e+447400123456")
@example(value="+" + "9" * 63)
@example(value=b"+447400123456")
@example(value=10**40)
@example(value=float("nan"))
def test_recipient_and_availability_give_e164_or_a_reason(region_otp: Any, value: Any) -> None:
    otp, _region = region_otp
    transport = otp.transports["sms_twilio"]
    member = phone_member(value)
    try:
        e164 = transport.recipient(member)
    except RecipientUnavailable as exc:
        reason = exc.reason
        assert reason in REASONS or reason.startswith("text messages are not sent"), reason
        digits = _digits(value)
        assert len(digits) < 4 or digits not in reason, "the reason repeats the number"
        status = otp.status(member, start_grace=False)
        assert CHANNEL not in status.channels and status.unavailable[CHANNEL] == reason
    else:
        assert_e164(e164)
        number = phonenumbers.parse(e164, None)
        assert phonenumbers.number_type(number) in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
        assert CHANNEL in otp.status(member, start_grace=False).channels


@PROPS
@given(value=anything)
@example(value="")
@example(value="+1 (415) 555-2671")
def test_normalize_recipient_gives_e164_or_a_reason(region_otp: Any, value: Any) -> None:
    otp, _region = region_otp
    try:
        e164 = otp.transports["sms_twilio"].normalize_recipient(value)
    except RecipientUnavailable as exc:
        assert exc.reason and "valid phone number" in exc.reason
    else:
        # Any well-formed number (a dry run may show an example one); one not known to be assigned is warned of.
        assert isinstance(e164, str) and e164.isascii() and e164.startswith("+") and e164[1:].isdigit(), e164
        number = phonenumbers.parse(e164, None)
        assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == e164
        assert phonenumbers.is_possible_number_with_reason(number) == phonenumbers.ValidationResult.IS_POSSIBLE
        warned = bool(otp.transports["sms_twilio"].recipient_warnings(e164))
        assert warned != phonenumbers.is_valid_number(number), e164


@pytest.mark.parametrize("fmt", FORMATS, ids=["e164", "international", "national", "rfc3966"])
def test_every_regions_example_numbers(fmt: int) -> None:
    """Every region's example numbers, in each format: mobile ones become their E.164 form; others are refused.

    National forms are read with the region as ``default_region``; without it they are refused with
    the reason that asks for the country code.
    """
    accepted = refused = 0
    for region, kind, number in EXAMPLES:
        text = phonenumbers.format_number(number, fmt)
        e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
        for default_region in (region, None):
            try:
                got = sms_recipient(text, default_region=default_region, allowed_countries=())
            except RecipientUnavailable as exc:
                refused += 1
                assert exc.reason in REASONS, (region, kind, text, exc.reason)
                if kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE) and \
                        phonenumbers.number_type(number) == kind:
                    # A mobile number is refused only when it is written nationally with no region to read it.
                    assert default_region is None and fmt in (PhoneNumberFormat.NATIONAL,), (region, text, exc.reason)
                    assert exc.reason in (NO_COUNTRY, INVALID), (region, text, exc.reason)
            else:
                accepted += 1
                assert got == e164, (region, kind, text, got)
                assert phonenumbers.number_type(number) in (PhoneNumberType.MOBILE,
                                                            PhoneNumberType.FIXED_LINE_OR_MOBILE), (region, kind)
                # Allowed countries: the number's own region lets it through, another refuses it by name.
                own = phonenumbers.region_code_for_number(number)
                assert sms_recipient(text, default_region=default_region, allowed_countries=(own,)) == e164
                other = "FR" if own != "FR" else "DE"
                with pytest.raises(RecipientUnavailable, match="not sent to numbers in this country"):
                    sms_recipient(text, default_region=default_region, allowed_countries=(other,))
    assert accepted > 200 and refused > 200, (accepted, refused)
