"""A string that never shows itself in a ``repr``, a log line or an exception."""

from __future__ import annotations

from typing import NoReturn


class Secret:
    """Wraps a secret value (password, auth token, key).

    ``str()`` and ``repr()`` both give ``'********'``; call :meth:`reveal` where the
    real value is needed (building an SMTP login, signing a request).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str):
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError("a Secret wraps a string")
        self._value = value

    def reveal(self) -> str:
        """The real value. Never log or print it."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            import hmac

            return hmac.compare_digest(self._value.encode(), other._value.encode())
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __repr__(self) -> str:
        return "Secret('********')"

    def __str__(self) -> str:
        return "********"

    def __reduce__(self) -> NoReturn:  # pragma: no cover - pickling a secret is a mistake
        raise TypeError("Secret values cannot be pickled")


REDACTED = "********"
