"""Hypothesis strategies for what a member, or an attacker, can put where a code goes (needs ``hypothesis``).

Not imported by ``otp_pro.testing`` itself, so the pytest plugin loads without hypothesis. A web adapter's
tests feed :data:`codes` to its verify form and JSON endpoints: a refusal, never a 500. The digit alphabets
name what :func:`otp_pro.codes.normalize_code` accepts (ASCII and full-width digits) and refuses (digits of
other scripts).
"""

from __future__ import annotations

from hypothesis import strategies as st

ASCII_DIGITS = "0123456789"
FULL_WIDTH = "".join(chr(0xFF10 + i) for i in range(10))
ARABIC_INDIC = "".join(chr(0x0660 + i) for i in range(10))
EXTENDED_ARABIC = "".join(chr(0x06F0 + i) for i in range(10))
DEVANAGARI = "".join(chr(0x0966 + i) for i in range(10))
SEPARATORS = " -\t\u00a0\u2010\u2013\u2014\u3000"

#: What a member (or an attacker) can put where a code goes.
codes = st.one_of(
    st.text(alphabet=ASCII_DIGITS + FULL_WIDTH + ARABIC_INDIC + EXTENDED_ARABIC + DEVANAGARI + SEPARATORS,
            max_size=24),
    st.text(max_size=80),
    st.text(alphabet="abcdefghjkmnpqrstuvwxyz23456789-", min_size=10, max_size=12),  # backup-code look-alikes
    st.text(min_size=65, max_size=5000),
    st.binary(max_size=80),
    st.none(),
    st.integers(),
    st.booleans(),
    st.floats(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)

__all__ = ["ARABIC_INDIC", "ASCII_DIGITS", "DEVANAGARI", "EXTENDED_ARABIC", "FULL_WIDTH", "SEPARATORS", "codes"]
