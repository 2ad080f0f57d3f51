"""``otp-pro new-transport NAME``: write the skeleton of a third-party transport distribution.

The skeleton is a complete distribution whose tests pass as generated:
``pyproject.toml`` with the ``otp_pro`` entry point, a module with the
``Transport`` subclass and its ``hookimpl``, a fake provider on loopback and
tests that run :class:`~otp_pro.testing.DiscoveryContract` and
:class:`~otp_pro.testing.TransportContract` against it. The templates are
files under ``otp_pro/scaffold_templates/transport/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

from .errors import OtpProError

#: A transport name: lower-case letters and digits, words joined by ``_`` or ``-``.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:[_-][a-z0-9]+)*")
MAX_NAME = 40
#: Names of the core's transports and payloads, and ``totp``: a new transport cannot take them.
RESERVED = frozenset({"email", "outbox", "code", "totp", "magic_link"})

#: Template file -> path in the new distribution (``{module}`` is replaced).
FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "__init__.py.tmpl": "src/{module}/__init__.py",
    "plugin.py.tmpl": "src/{module}/plugin.py",
    "transport.py.tmpl": "src/{module}/transport.py",
    "conftest.py.tmpl": "tests/conftest.py",
    "test_contract.py.tmpl": "tests/test_contract.py",
}


class ScaffoldError(OtpProError, ValueError):
    """The name is not usable or the target directory is taken."""


@dataclass(frozen=True)
class Names:
    """Every spelling of a new transport's name."""

    name: str  # transport id and channel prefix: fax_gateway
    distribution: str  # otp-pro-fax-gateway
    module: str  # otp_pro_fax_gateway
    class_name: str  # FaxGateway
    label: str  # Fax Gateway

    @property
    def entry_point(self) -> str:
        return self.module


def names_for(raw: str) -> Names:
    """Check ``raw`` and derive the names; :class:`ScaffoldError` says what is allowed."""
    if not isinstance(raw, str) or not NAME_PATTERN.fullmatch(raw) or len(raw) > MAX_NAME:
        raise ScaffoldError(
            f"{raw!r} is not a usable transport name: use lower-case letters and digits, words joined by "
            f"'_' or '-', starting with a letter, at most {MAX_NAME} characters (such as 'fax_gateway')"
        )
    name = raw.replace("-", "_")
    if name.startswith("otp_pro_"):
        raise ScaffoldError(f"{raw!r}: leave out the otp_pro_ prefix, it is added to the distribution and module")
    if name in RESERVED:
        raise ScaffoldError(f"{raw!r} is taken by otp-pro itself ({', '.join(sorted(RESERVED))}); choose another")
    words = name.split("_")
    return Names(
        name=name,
        distribution="otp-pro-" + "-".join(words),
        module="otp_pro_" + name,
        class_name="".join(w.capitalize() for w in words),
        label=" ".join(w.capitalize() for w in words),
    )


def render(names: Names) -> dict[str, str]:
    """The skeleton's files: relative path -> text."""
    try:
        core_version = metadata.version("otp-pro-core")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        core_version = "0.1"
    replacements = {
        "__ENTRY_POINT__": names.entry_point,
        "__DIST__": names.distribution,
        "__MODULE__": names.module,
        "__CLASS__": names.class_name,
        "__LABEL__": names.label,
        "__NAME__": names.name,
        "__ENV__": names.name.upper() + "_API_KEY",
        "__CORE_VERSION__": core_version,
    }
    folder = resources.files("otp_pro") / "scaffold_templates" / "transport"
    out: dict[str, str] = {}
    for template, target in FILES.items():
        text = (folder / template).read_text(encoding="utf-8")
        for token, value in replacements.items():
            text = text.replace(token, value)
        out[target.format(module=names.module)] = text
    out[f"src/{names.module}/py.typed"] = ""
    return out


def new_transport(raw_name: str, directory: str | Path | None = None) -> tuple[Names, Path, list[Path]]:
    """Write the skeleton for transport ``raw_name`` into ``directory`` (default ``./<distribution>``).

    Returns the names, the directory and the files written. Refuses (with
    :class:`ScaffoldError`) a directory that exists and is not empty, or a path that is a file.
    """
    names = names_for(raw_name)
    target = Path(directory) if directory is not None else Path.cwd() / names.distribution
    if target.exists() and not target.is_dir():
        raise ScaffoldError(f"{target} is a file: choose another --directory")
    if target.is_dir() and any(target.iterdir()):
        raise ScaffoldError(f"{target} already exists and is not empty: choose another --directory")
    written = []
    for relative, text in render(names).items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return names, target, written
