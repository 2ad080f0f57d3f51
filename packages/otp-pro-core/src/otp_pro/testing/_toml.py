"""Settings written as a TOML file, for tests that run the CLI (``otp-pro --config FILE``)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any


def settings_toml(settings: Mapping[str, Any]) -> str:
    """``settings`` (strings, numbers, booleans, lists, nested tables; None left out) as a TOML document."""
    lines: list[str] = []

    def key(name: str) -> str:
        return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)

    def value(item: Any) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, (int, float)):
            return repr(item)
        if isinstance(item, str):
            return json.dumps(item)  # JSON string escapes are valid TOML basic-string escapes
        if isinstance(item, (list, tuple)):
            return "[" + ", ".join(value(v) for v in item) + "]"
        raise TypeError(f"cannot write {type(item).__name__} as TOML")

    def table(prefix: str, data: Mapping[str, Any]) -> None:
        nested = []
        for name, item in data.items():
            if item is None:
                continue
            if isinstance(item, Mapping):
                nested.append((name, item))
            else:
                lines.append(f"{key(name)} = {value(item)}")
        for name, item in nested:
            header = f"{prefix}.{key(name)}" if prefix else key(name)
            lines.append(f"\n[{header}]")
            table(header, item)

    table("", settings)
    return "\n".join(lines) + "\n"
