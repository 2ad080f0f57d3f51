"""SMS segment counting: GSM-7 (160 / 153 per part) and UCS-2 (70 / 67 per part)."""

from __future__ import annotations

import pytest

from otp_pro_sms_twilio.segments import GSM7, UCS2, count_segments, is_gsm7


@pytest.mark.parametrize(("text", "encoding", "units", "segments"), [
    ("", GSM7, 0, 0),
    ("a" * 160, GSM7, 160, 1),
    ("a" * 161, GSM7, 161, 2),
    ("a" * 306, GSM7, 306, 2),
    ("a" * 307, GSM7, 307, 3),
    ("é@£$¥Ñ§¿" * 20, GSM7, 160, 1),  # accented letters of the basic GSM table cost one septet
    ("€" * 80, GSM7, 160, 1),  # extension characters cost two
    ("€" * 81, GSM7, 162, 2),
    ("{[]}" * 40, GSM7, 320, 3),
    ("ł" * 70, UCS2, 70, 1),  # one character outside GSM-7 switches the whole text
    ("a" * 69 + "\u2019", UCS2, 70, 1),  # the typographic apostrophe is such a character
    ("a" * 70 + "\u2019", UCS2, 71, 2),
    ("ł" * 134, UCS2, 134, 2),
    ("ł" * 135, UCS2, 135, 3),
    ("😀" * 35, UCS2, 70, 1),  # outside the BMP: two UTF-16 units each
    ("😀" * 36, UCS2, 72, 2),
])
def test_encoding_units_and_segments(text, encoding, units, segments):
    info = count_segments(text)
    assert (info.encoding, info.units, info.segments) == (encoding, units, segments)
    assert info.single_limit == (160 if encoding == GSM7 else 70)


def test_a_part_never_splits_an_escaped_character():
    # 152 + 2 + 152 = 306 septets would fill two parts of 153 exactly, but the € cannot
    # be cut after its escape septet: it opens the second part, and a third is needed.
    assert count_segments("a" * 152 + "€" + "a" * 152).segments == 3
    assert count_segments("a" * 151 + "€" + "a" * 153).segments == 2


def test_a_part_never_splits_a_surrogate_pair():
    assert count_segments("a" * 66 + "😀" + "a" * 66).segments == 3
    assert count_segments("a" * 65 + "😀" + "a" * 67).segments == 2


def test_gsm7_alphabet():
    assert is_gsm7("123456 is your Example code. Expires in 10 min.\n@Example #123456")
    assert is_gsm7("Zoé's code")  # é and the straight apostrophe are in the GSM-7 table
    assert not is_gsm7("Zoé\u2019s code")  # the typographic apostrophe is not
    assert not is_gsm7("Zoë")  # nor is ë
    assert not is_gsm7("\x1b")  # the escape septet alone is not a character
