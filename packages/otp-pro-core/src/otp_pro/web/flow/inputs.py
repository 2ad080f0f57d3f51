"""What a request carries, read defensively: a JSON object body, its typed fields, a device id in a path.

Whatever a client sends, reading it ends in a value of the expected type or in
an :class:`InputError` that names the field and says what was expected, so a
malformed request is answered with a 4xx and a clear message, never a 500 (a
``RecursionError`` from deeply nested JSON, an ``OverflowError`` from a huge id
reaching the database).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn

from ...errors import OtpProError
from ...storage.schema import MAX_BIG_ID

#: The largest JSON body the API reads. Its objects hold a few short fields (a code, a channel name, a flag,
#: an email and password on the demo's login), so this leaves ample room and bounds the parsing work.
MAX_JSON_BYTES = 8192


class InputError(OtpProError):
    """A request body or parameter that cannot be used; ``field`` names it (None: the body as a whole).

    ``status`` is the HTTP status to answer (400, or 413 for a body over :data:`MAX_JSON_BYTES`).
    """

    def __init__(self, message: str, *, field: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status

    def as_json(self) -> dict[str, Any]:
        """The API's refusal body: ``{"ok": false, "error": "bad_request", "message"[, "field"]}``."""
        data: dict[str, Any] = {"ok": False, "error": "bad_request", "message": self.message}
        if self.field is not None:
            data["field"] = self.field
        return data


def _no_constant(name: str) -> NoReturn:
    # NaN and Infinity are not JSON (RFC 8259), though Python's parser accepts them by default.
    raise ValueError(f"{name} is not JSON")


def parse_json_object(raw: bytes) -> Mapping[str, Any]:
    """``raw`` (a request body) as one JSON object; :class:`InputError` for anything else.

    At most :data:`MAX_JSON_BYTES` (a chunked body has no length to check beforehand), UTF-8, one JSON
    object. Nesting too deep for the parser is refused like any other malformed JSON.
    """
    if len(raw) > MAX_JSON_BYTES:
        raise InputError(f"The body is too large: at most {MAX_JSON_BYTES} bytes.", status=413)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("The body is not valid UTF-8.") from None
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        # RecursionError: the C parser's answer to nesting deeper than the interpreter's recursion limit.
        raise InputError("The body is not valid JSON: send a JSON object.") from None
    if not isinstance(data, dict):
        raise InputError("Send a JSON object.")
    return data


def string_field(data: Mapping[str, Any], name: str, *, max_length: int, default: str | None = None) -> str | None:
    """``data[name]`` when it is a string of at most ``max_length`` characters; ``default`` when missing or null."""
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise InputError(f"{name} must be a string.", field=name)
    if len(value) > max_length:
        raise InputError(f"{name} is too long: at most {max_length} characters.", field=name)
    return value


def bool_field(data: Mapping[str, Any], name: str, *, default: bool = False) -> bool:
    """``data[name]`` when it is ``true`` or ``false``; ``default`` when missing or null."""
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InputError(f"{name} must be true or false.", field=name)
    return value


def device_id(text: str) -> int | None:
    """The trusted-device id written in a path segment, or None when it is not one.

    Only ASCII digits count: ``str.isdigit`` and ``int`` also take other scripts' digits and
    characters such as ``²`` and ``①``, and an id past the database column's range is no device either.
    """
    if not text or len(text) > 19 or not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if 0 < number <= MAX_BIG_ID else None


def factor_id(text: str) -> int | None:
    """The factor id written in a path segment, or None when it is not one (read as :func:`device_id` is)."""
    return device_id(text)
