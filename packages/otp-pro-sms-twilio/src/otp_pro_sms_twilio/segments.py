"""How many SMS segments a text takes: GSM-7 (160 per single message) or UCS-2 (70).

A text made only of GSM 03.38 characters is sent in the 7-bit alphabet: 160
septets fit one message, and a longer text is split into parts of 153 (7
septets go to the concatenation header). The extension characters (``€``,
``[``, ``{``, ...) take two septets each, and a part never splits one. Any
other character switches the whole text to UCS-2: 70 UTF-16 units in one
message, 67 per part, and a part never splits a surrogate pair (an emoji takes
two units). Carriers bill per segment, so a code message should fit in one.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# GSM 03.38 basic character set (the escape character 0x1B is left out: it
# introduces the extension table and cannot be sent on its own).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: each is sent as escape + character, two septets.
_GSM_EXTENSION = frozenset("\f^{}\\[~]|€")

#: Units that fit in a single message, and in each part of a concatenated one.
LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}


@dataclass(frozen=True)
class SegmentInfo:
    """The encoding of a text, its length in that encoding's units and the segments it takes."""

    encoding: str
    units: int
    segments: int

    @property
    def single_limit(self) -> int:
        """Units that fit in one message with this encoding (160 or 70)."""
        return LIMITS[self.encoding][0]


def is_gsm7(text: str) -> bool:
    """Whether ``text`` can be sent in the GSM 7-bit alphabet."""
    return all(ch in _GSM_BASIC or ch in _GSM_EXTENSION for ch in text)


def _unit_sizes(text: str, encoding: str) -> list[int]:
    if encoding == GSM7:
        return [2 if ch in _GSM_EXTENSION else 1 for ch in text]
    return [len(ch.encode("utf-16-le")) // 2 for ch in text]


def count_segments(text: str) -> SegmentInfo:
    """The encoding, length in units (septets or UTF-16 units) and number of segments of ``text``."""
    encoding = GSM7 if is_gsm7(text) else UCS2
    sizes = _unit_sizes(text, encoding)
    units = sum(sizes)
    single, part = LIMITS[encoding]
    if units <= single:
        return SegmentInfo(encoding, units, 1 if units else 0)
    # Fill parts greedily: a two-unit character that does not fit goes whole to the next part.
    segments, used = 1, 0
    for size in sizes:
        if used + size > part:
            segments += 1
            used = 0
        used += size
    return SegmentInfo(encoding, units, segments)
