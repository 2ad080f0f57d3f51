"""Phone numbers: parsed, checked and normalised to E.164 with ``phonenumbers``.

The reasons raised here are shown to the member in ``status().unavailable``,
so they are short, say what is wrong and never repeat the number; they are messages of the
companion's catalog, written in the page's language where they are shown (``otp_pro.i18n.translate``).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from otp_pro import RecipientUnavailable
from otp_pro.i18n import L_, N_

if TYPE_CHECKING:
    import phonenumbers

# phonenumbers (slow to import: its metadata) is imported by the functions that use it: plugin
# discovery (``otp-pro providers list``) loads this module without checking any number.

#: Types that can receive a text message (phonenumbers' PhoneNumberType.MOBILE and
#: FIXED_LINE_OR_MOBILE). Several countries (the US and Canada among them) do not tell
#: mobile from fixed-line numbers by their digits, so phonenumbers reports
#: FIXED_LINE_OR_MOBILE for every number there.
SMS_CAPABLE = frozenset({1, 2})

NO_NUMBER = N_("no mobile number on file")
INVALID = N_("the phone number on file is not valid")
NO_COUNTRY = N_("the phone number on file has no country code (write it with + and the country code)")
NOT_MOBILE = N_("the phone number on file is not a mobile number")

# Longer than any real number written with spaces and punctuation; a longer value is
# rejected before it reaches the parser.
_MAX_LENGTH = 64


def region_code(value: str) -> str:
    """Check an ISO 3166-1 alpha-2 region code phonenumbers knows; return it upper-cased."""
    import phonenumbers

    code = value.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"must be an ISO 3166-1 alpha-2 country code such as GB or US, got {value!r}")
    return code


def is_e164(value: str) -> bool:
    """Whether ``value`` is a valid number written exactly in E.164 (``+`` and digits only)."""
    if not value.startswith("+") or not value[1:].isdigit() or not value.isascii():
        return False
    import phonenumbers
    from phonenumbers import NumberParseException, PhoneNumberFormat

    try:
        number = phonenumbers.parse(value, None)
    except NumberParseException:
        return False
    return phonenumbers.is_valid_number(number) and phonenumbers.format_number(number, PhoneNumberFormat.E164) == value


def parse_number(raw: object, default_region: str | None, *, assigned: bool = True) -> phonenumbers.PhoneNumber:
    """Parse ``raw`` (``+`` and country code, or national with ``default_region``) into a valid number.

    With ``assigned`` false a well-formed number is enough (phonenumbers' ``is_possible_number``: its
    length fits the country, and not only for local dialling) even when it is in no range known to be
    assigned (``is_valid_number``), such as the UK's drama numbers +44 7700 900xxx. Raises
    :class:`~otp_pro.RecipientUnavailable` with a member-safe reason.
    """
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str) or not raw.strip():
        raise RecipientUnavailable(NO_NUMBER)
    text = raw.strip()
    if len(text) > _MAX_LENGTH:
        raise RecipientUnavailable(INVALID)
    import phonenumbers
    from phonenumbers import NumberParseException

    try:
        # "00" is the international prefix in most of the world; phonenumbers only
        # understands it relative to a region, so it is rewritten to "+".
        number = phonenumbers.parse("+" + text[2:] if text.startswith("00") else text, default_region)
    except NumberParseException as exc:
        # A national number with no region to read it in: say what is missing.
        no_country = exc.error_type == NumberParseException.INVALID_COUNTRY_CODE and not text.startswith(("+", "00"))
        raise RecipientUnavailable(NO_COUNTRY if no_country else INVALID) from None
    if assigned:
        ok = phonenumbers.is_valid_number(number)
    else:  # a whole number of a possible length; not one only dialable locally, within its area
        ok = phonenumbers.is_possible_number_with_reason(number) == phonenumbers.ValidationResult.IS_POSSIBLE
    if not ok:
        raise RecipientUnavailable(INVALID)
    return number


def is_assigned(e164: str) -> bool:
    """Whether a well-formed E.164 number is in a range known to be assigned (phonenumbers' ``is_valid_number``)."""
    import phonenumbers
    from phonenumbers import NumberParseException

    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(e164, None))
    except NumberParseException:
        return False


def sms_recipient(raw: object, *, default_region: str | None, allowed_countries: Collection[str]) -> str:
    """The E.164 form of a member's number, or :class:`~otp_pro.RecipientUnavailable` saying why not.

    The number must be valid, able to receive SMS (mobile, or a country where
    mobile and fixed-line numbers look alike) and, when ``allowed_countries`` is
    not empty, registered in one of those countries.
    """
    import phonenumbers
    from phonenumbers import PhoneNumberFormat

    number = parse_number(raw, default_region)
    if phonenumbers.number_type(number) not in SMS_CAPABLE:
        raise RecipientUnavailable(NOT_MOBILE)
    check_country(number, allowed_countries)
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def check_country(number: phonenumbers.PhoneNumber, allowed_countries: Collection[str]) -> None:
    """Raise :class:`~otp_pro.RecipientUnavailable` when ``number`` is outside ``allowed_countries`` (if any)."""
    if not allowed_countries:
        return
    import phonenumbers

    region = phonenumbers.region_code_for_number(number)
    if region not in allowed_countries:
        raise RecipientUnavailable(L_("text messages are not sent to numbers in this country (%(region)s)",
                                     region=region or "unknown"))
