"""What a member types, in canonical form: the one place that decides what can be a code."""

from __future__ import annotations

import unicodedata

#: Longer input is refused unread: no code, backup code or token a member types is this long.
MAX_INPUT = 64


def normalize_code(code: object) -> str | None:
    """Canonical form of what a member typed, or None when it cannot be a code.

    Full-width and other compatibility digits become ASCII (NFKC); spaces and
    dashes are dropped; letters are lower-cased (backup codes). Anything left
    that is not an ASCII letter or digit makes the input malformed.
    """
    if isinstance(code, bytes):
        try:
            code = code.decode("ascii")
        except UnicodeDecodeError:
            return None
    if isinstance(code, int) and not isinstance(code, bool):
        code = str(code)
    if not isinstance(code, str) or len(code) > MAX_INPUT:
        return None
    text = unicodedata.normalize("NFKC", code)
    text = "".join(ch for ch in text if not ch.isspace() and ch not in "-\u2010\u2011\u2012\u2013\u2014")
    text = text.lower()
    if not text or not text.isascii() or not text.isalnum():
        return None
    return text


__all__ = ["MAX_INPUT", "normalize_code"]
