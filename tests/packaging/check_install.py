"""Check one installed otp-pro distribution in the environment running this script (``nox -s build``).

Usage: ``python check_install.py <distribution>``. The environment holds the core
wheel, that distribution's wheel and their dependencies, nothing from the
checkout. The script proves that what was installed is the wheel (its modules
live under this environment's prefix), that its import package imports, that
every entry point it declares loads, and that the installed ``otp-pro`` command
discovers it (``providers list --json`` with a minimal settings file, because
the command reads settings before it lists). Exits non-zero with the reason on
the first failure.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CORE = "otp-pro-core"
#: Web adapters plug into a web framework, not into otp-pro's plugin manager: they declare no ``otp_pro`` entry
#: point and are not in ``providers list`` (their other entry points, such as ``otp_pro.demo_site``, still load).
ADAPTERS = ("otp-pro-flask", "otp-pro-django", "otp-pro-starlette")


def fail(message: str) -> None:
    sys.exit(f"check_install: {message}")


def main(distribution: str) -> None:
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        fail(f"{distribution} is not installed in this environment ({sys.prefix})")
    module_name = "otp_pro" if distribution == CORE else distribution.replace("-", "_")
    for name in dict.fromkeys((module_name, "otp_pro")):
        module = importlib.import_module(name)
        # A module imported from the checkout's src/ (PYTHONPATH, an editable install) would prove nothing.
        if not Path(module.__file__ or "").resolve().is_relative_to(Path(sys.prefix).resolve()):
            fail(f"{name} was imported from {module.__file__}, not from this environment ({sys.prefix})")
        print(f"{distribution} {dist.version}: imports {name} from {Path(module.__file__ or '').parent}")

    declared = list(dist.entry_points)
    plugin = distribution not in (CORE, *ADAPTERS)
    if plugin and not any(ep.group == "otp_pro" for ep in declared):
        fail(f"{distribution} declares no entry point in the group otp_pro: otp-pro would never find it")
    for ep in declared:
        # The core's pytest11 entry point (the test kit) is pytest's to load, and needs the [testing] extra.
        if ep.group == "pytest11":
            print(f"  entry point [{ep.group}] {ep.name} = {ep.value}: a pytest plugin, not loaded here")
            continue
        ep.load()
        print(f"  entry point [{ep.group}] {ep.name} = {ep.value}: loads")

    # The installed command, as an operator would run it; the settings file holds only what every start needs.
    with tempfile.TemporaryDirectory() as folder:
        settings = Path(folder) / "otp-pro.toml"
        settings.write_text(f'secret_key = "{"k" * 40}"\ndatabase_url = "sqlite:///{folder}/otp-pro.sqlite3"\n')
        command = [str(Path(sys.executable).parent / "otp-pro"), "--config", str(settings), "providers", "list",
                   "--json"]
        run = subprocess.run(command, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        fail(f"{' '.join(command[1:])} exited {run.returncode}: {run.stderr.strip()}")
    plugins = json.loads(run.stdout)
    broken = [p for p in plugins if p["error"]]
    if broken:
        fail(f"plugins with errors: {broken}")
    ours = [p for p in plugins if p["distribution"] == distribution]
    if plugin and not (ours and all(p["enabled"] for p in ours)):
        fail(f"otp-pro providers list does not show {distribution} enabled: {plugins}")
    for p in plugins:
        provides = ", ".join([*p["transports"], *(f"payload {name}" for name in p["payloads"])]) or "-"
        print(f"  otp-pro providers list: {p['plugin']} ({p['distribution'] or 'built in'}) enabled: {provides}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        fail("usage: check_install.py <distribution>")
    main(sys.argv[1])
