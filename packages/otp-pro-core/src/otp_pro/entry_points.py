"""The ``otp_pro`` entry points installed, remembered between runs of a process.

Finding plugins needs :mod:`importlib.metadata`, which costs more to import (it pulls
in ``email``, ``zipfile`` and ``csv`` on Python 3.11) and to run (it reads every
installed distribution's metadata) than the rest of ``otp-pro providers list``
together. Its answer only changes when a distribution is installed, upgraded or
removed, and each of those adds or removes a ``*.dist-info`` folder, which changes
the modification time of the folder on ``sys.path`` that holds it: the signal
Python's own import system uses to refresh its directory caches. So the answer is
kept in a small JSON file keyed by the interpreter, ``sys.path`` and the
modification time of every folder on it; any change there and it is read again
through :mod:`importlib.metadata`.

``OTP_PRO_ENTRY_POINT_CACHE=0`` switches the file off; any other value is the
folder to keep it in (default ``$XDG_CACHE_HOME/otp-pro`` or ``~/.cache/otp-pro``).
A cache that cannot be read or written is ignored: plugins are then found the slow way.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CACHE_ENV = "OTP_PRO_ENTRY_POINT_CACHE"
_FORMAT = 1
_KEEP = 8


@dataclass(frozen=True)
class EntryPointRecord:
    """One entry point: its ``name``, ``value`` (``module:attr``) and distribution."""

    name: str
    value: str
    dist: str | None
    version: str | None

    def load(self) -> Any:
        """Import the module and return the object the value names (as ``EntryPoint.load`` does)."""
        module_name, _, attrs = self.value.partition(":")
        loaded: Any = importlib.import_module(module_name.strip())
        for attr in filter(None, attrs.strip().split(".")):
            loaded = getattr(loaded, attr)
        return loaded


@dataclass(frozen=True)
class Installed:
    """What discovery needs: the group's entry points and the core's own version."""

    entry_points: tuple[EntryPointRecord, ...]
    core_version: str | None


def _fingerprint(group: str) -> str:
    parts = [_FORMAT, sys.version, sys.prefix, group]
    for entry in sys.path:
        try:
            parts.append(f"{entry}\0{os.stat(entry or '.').st_mtime_ns}")
        except OSError:
            parts.append(f"{entry}\0-")
    return hashlib.sha256("\n".join(map(str, parts)).encode()).hexdigest()


def _cache_file(group: str) -> Path | None:
    setting = os.environ.get(CACHE_ENV, "")
    if setting == "0":
        return None
    folder = Path(setting) if setting else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "otp-pro"
    # One file per interpreter environment: two virtualenvs never overwrite each other's.
    env = hashlib.sha256(f"{sys.prefix}\0{sys.executable}\0{group}".encode()).hexdigest()[:16]
    return folder / f"entry-points-{env}.json"


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("format") == _FORMAT else {}


def _read(path: Path, fingerprint: str) -> Installed | None:
    try:
        entry = _load(path).get("answers", {})[fingerprint]
        return Installed(tuple(EntryPointRecord(**item) for item in entry["entry_points"]), entry["core_version"])
    except (KeyError, TypeError, AttributeError):
        return None


def _write(path: Path, fingerprint: str, installed: Installed) -> None:
    # A few answers side by side: the console script and ``python -m`` see different
    # sys.path (bin folder, current folder) and would otherwise evict each other.
    answers = _load(path).get("answers", {})
    if not isinstance(answers, dict):
        answers = {}
    answers.pop(fingerprint, None)
    answers[fingerprint] = {"core_version": installed.core_version,
                            "entry_points": [ep.__dict__ for ep in installed.entry_points]}
    data = {"format": _FORMAT, "answers": dict(list(answers.items())[-_KEEP:])}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(data), encoding="utf-8")
        os.replace(temporary, path)  # readers see the old file or the new one, never half of one
    except OSError:
        pass


def _scan(group: str, core: str) -> Installed:
    from importlib import metadata

    seen: set[tuple[str, str, str | None]] = set()
    records = []
    for ep in sorted(metadata.entry_points(group=group), key=lambda e: e.name):
        # Several copies of one distribution on sys.path list the same entry point twice;
        # two distributions claiming one name are both kept so the clash is reported.
        dist = getattr(ep, "dist", None)
        key = (ep.name, ep.value, dist.name if dist is not None else None)
        if key in seen:
            continue
        seen.add(key)
        records.append(EntryPointRecord(ep.name, ep.value, key[2], dist.version if dist is not None else None))
    try:
        version: str | None = metadata.version(core)
    except metadata.PackageNotFoundError:  # running from a source tree
        version = None
    return Installed(tuple(records), version)


def installed(group: str = "otp_pro", core: str = "otp-pro-core") -> Installed:
    """The entry points of ``group`` and the version of ``core``, from the cache when nothing changed."""
    fingerprint = _fingerprint(group)
    path = _cache_file(group)
    if path is not None:
        cached = _read(path, fingerprint)
        if cached is not None:
            return cached
    found = _scan(group, core)
    if path is not None:
        _write(path, fingerprint, found)
    return found
