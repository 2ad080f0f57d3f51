"""A third party's transport, from an empty folder to an installed, discovered plugin.

The test writes a small distribution, ``otp-pro-acme-fax``, that ships a
``Transport`` named ``acme_fax`` and declares it in the ``otp_pro`` entry-point
group. It installs the core (built from this source tree, not editable) and that
distribution into a fresh virtual environment that cannot see this interpreter's
site-packages, then runs a script there that enrols a member over
``acme_fax:code`` and verifies a code. Nothing in the core names the plugin: it
is found through ``importlib.metadata`` alone.

The wheelhouse (the core's wheel, its dependencies and ``hatchling`` to build the
fake distribution) is made once per session with ``pip wheel``; everything after
that installs with ``--no-index`` from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CORE = Path(__file__).resolve().parents[1]
CORE_PACKAGE = CORE / "src" / "otp_pro"
FAKE_DIST = "otp-pro-acme-fax"
FAKE_VERSION = "1.2.3"
FAX_NUMBER = "+15550100"
API_KEY = "acme-fax-api-key-do-not-log"

PYPROJECT = f"""\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "{FAKE_DIST}"
version = "{FAKE_VERSION}"
description = "Acme fax transport for otp-pro (test fixture)"
requires-python = ">=3.10"
dependencies = ["otp-pro-core"]

[project.entry-points.otp_pro]
otp_pro_acme_fax = "otp_pro_acme_fax.plugin"

[tool.hatch.build.targets.wheel]
packages = ["otp_pro_acme_fax"]
"""

PLUGIN = '''\
"""Acme fax: writes each message as one JSON line to the spool file a fax gateway reads."""

import json
from pathlib import Path

from otp_pro import Member, Message, Receipt, RecipientUnavailable, Setting, Transport, hookimpl


class AcmeFaxTransport(Transport):
    name = "acme_fax"
    label = "Fax"
    message_format = "text"
    settings = (
        Setting("spool", str, None, "file the fax gateway reads", required=True),
        Setting("api_key", str, None, "gateway key", secret=True),
    )

    def recipient(self, member: Member) -> str:
        number = member.fields.get("fax")
        if not number:
            raise RecipientUnavailable("no fax number on file")
        return str(number)

    def send(self, message: Message) -> Receipt:
        spool = Path(self.config["spool"])
        with spool.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"to": message.recipient, "text": message.text, "member": message.member_id}) + "\\n")
        return Receipt(provider_message_id=f"fax-{len(spool.read_text().splitlines())}")


@hookimpl
def otp_pro_register_transports(register):
    register(AcmeFaxTransport)
'''

# Runs inside the virtual environment; prints one JSON document.
SCRIPT = '''\
import base64
import dataclasses
import hashlib
import json
import re
import sys
from importlib import metadata
from pathlib import Path

import otp_pro
from otp_pro import Member, OtpPro

spool, database, api_key, fax = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]


def last_code():
    message = json.loads(spool.read_text(encoding="utf-8").splitlines()[-1])
    return re.search(r"\\b(\\d{6})\\b", message["text"]).group(1)


settings = {
    "secret_key": "third-party-test-key-" + "k" * 32,
    "database_url": "sqlite:///" + database,
    "site_name": "Acme",
    "channels": ["acme_fax:code"],
    "default_channel": "acme_fax:code",
    "resend_cooldown_seconds": 0,
    "providers": {"acme_fax": {"spool": str(spool), "api_key": api_key}},
}
with OtpPro(settings) as otp:
    member = Member("fax-1", name="Fax User", fields={"fax": fax})
    otp.begin_setup(member, "acme_fax:code")
    backup_codes = otp.complete_setup(member, last_code())
    status = otp.status(member)
    challenge = otp.send_challenge(member)
    code = last_code()
    wrong = otp.verify(member, f"{(int(code) + 1) % 10**6:06d}")
    verified = otp.verify(member, code)
    replayed = otp.verify(member, code)
    out = {
        "prefix": sys.prefix,
        "sys_path": sys.path,
        "otp_pro_file": otp_pro.__file__,
        "plugins": [dataclasses.asdict(p) for p in otp.plugins()],
        "channels": list(otp.channels),
        "enrolled": status.enrolled,
        "channel": status.channel,
        "backup_codes": len(backup_codes),
        "challenge_channel": challenge.channel,
        "provider_message_id": challenge.provider_message_id,
        "wrong": wrong.ok,
        "verified": verified.ok,
        "method": verified.method,
        "replayed": replayed.ok,
        "redacted": otp.redacted_settings()["providers"]["acme_fax"],
        "repr": repr(otp.transports["acme_fax"]),
    }

core = metadata.distribution("otp-pro-core")
root = Path(core.locate_file(""))
installed = {}
record_mismatches = []
for f in core.files:
    if f.parts[0] != "otp_pro" or "__pycache__" in f.parts:
        continue
    data = f.read_binary()
    installed["/".join(f.parts[1:])] = hashlib.sha256(data).hexdigest()
    digest = base64.urlsafe_b64encode(hashlib.new(f.hash.mode, data).digest()).rstrip(b"=").decode() if f.hash else None
    if f.hash is None or f.hash.value != digest:
        record_mismatches.append(str(f))
out["core_files"] = installed
out["core_record_mismatches"] = record_mismatches
out["core_editable"] = any("__editable__" in str(f) or str(f).endswith(".pth") for f in core.files)
out["fake_files"] = [str(f) for f in metadata.distribution("@FAKE_DIST@").files]
out["entry_points"] = [[ep.name, ep.value, ep.dist.name] for ep in metadata.entry_points(group="otp_pro")]
print(json.dumps(out, default=str))
'''.replace("@FAKE_DIST@", FAKE_DIST)


def _env() -> dict[str, str]:
    """This process's environment without anything that would leak the outer interpreter or settings in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP") and not k.startswith("OTP_PRO_")
    }
    env.update(PYTHONNOUSERSITE="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def _run(*args: object, timeout: float = 120, cwd: Path | None = None) -> str:
    cmd = [str(a) for a in args]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout, env=_env(), cwd=cwd)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


@dataclass(frozen=True)
class Wheelhouse:
    path: Path
    core_wheel: Path
    core_digests: dict[str, str]  # the source tree the wheel was built from
    seconds: float


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Wheelhouse:
    """The core's wheel built from this tree, its dependencies, and hatchling for building plugins offline."""
    start = time.monotonic()
    path = tmp_path_factory.mktemp("wheelhouse")
    digests = _digests(CORE_PACKAGE)
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", path, CORE, "hatchling", timeout=300)
    wheels = sorted(path.glob("otp_pro_core-*.whl"))
    assert len(wheels) == 1, sorted(p.name for p in path.iterdir())
    return Wheelhouse(path, wheels[0], digests, time.monotonic() - start)


def _write_fake_distribution(folder: Path) -> Path:
    package = folder / "otp_pro_acme_fax"
    package.mkdir(parents=True)
    (folder / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (package / "__init__.py").write_text('"""Acme fax transport for otp-pro."""\n', encoding="utf-8")
    (package / "plugin.py").write_text(PLUGIN, encoding="utf-8")
    return folder


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def test_third_party_transport_is_discovered_through_its_entry_point(
    wheelhouse: Wheelhouse, tmp_path: Path
) -> None:
    source = _write_fake_distribution(tmp_path / "otp-pro-acme-fax")

    # A plain venv: no --system-site-packages, so only what is installed below is importable.
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    python = _venv_python(venv)
    _run(python, "-m", "pip", "install", "--quiet", "--no-index", "--find-links", wheelhouse.path,
         wheelhouse.core_wheel, source, timeout=300)

    script = tmp_path / "enrol.py"
    script.write_text(SCRIPT, encoding="utf-8")
    spool = tmp_path / "spool" / "outgoing.jsonl"
    spool.parent.mkdir()
    # -I: isolated mode, no user site, no PYTHON* variables, no script folder on sys.path.
    out = _run(python, "-I", script, spool, tmp_path / "otp.sqlite3", API_KEY, FAX_NUMBER, cwd=tmp_path)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])

    # The environment was isolated: the core came from the wheel, not this checkout or the outer site-packages.
    prefix = Path(result["prefix"]).resolve()
    assert prefix == venv.resolve()
    assert Path(result["otp_pro_file"]).resolve().is_relative_to(prefix)
    assert not result["core_editable"]
    outer = [p for p in result["sys_path"] if "site-packages" in p and not Path(p).resolve().is_relative_to(prefix)]
    assert outer == [], f"the venv sees outer site-packages: {outer}"
    assert str(CORE) not in " ".join(result["sys_path"])

    # Discovered through the entry point of the fake distribution.
    plugins = {p["name"]: p for p in result["plugins"]}
    acme = plugins["otp_pro_acme_fax"]
    assert acme == {
        "name": "otp_pro_acme_fax",
        "module": "otp_pro_acme_fax.plugin",
        "distribution": FAKE_DIST,
        "version": FAKE_VERSION,
        "builtin": False,
        "enabled": True,
        "error": None,
        "transports": ["acme_fax"],
        "payloads": [],
        "factor_types": [],
    }
    assert ["otp_pro_acme_fax", "otp_pro_acme_fax.plugin", FAKE_DIST] in result["entry_points"]
    for name in ("otp_pro_email", "otp_pro_code", "otp_pro_outbox", "otp_pro_rendering"):
        assert plugins[name]["builtin"] and plugins[name]["error"] is None
        assert plugins[name]["distribution"] == "otp-pro-core"
    assert [p for p in result["plugins"] if p["error"]] == []
    assert "acme_fax:code" in result["channels"]

    # The member enrolled and verified over the fax channel.
    assert result["enrolled"] is True
    assert result["channel"] == result["challenge_channel"] == "acme_fax:code"
    assert result["backup_codes"] == 10
    # fax-1: the setup code; fax-2: the setup's security notice (the site has no email channel); fax-3: the code.
    assert result["provider_message_id"] == "fax-3"
    assert result["wrong"] is False
    assert result["verified"] is True and result["method"] == "code"
    assert result["replayed"] is False
    faxes = [json.loads(line) for line in spool.read_text(encoding="utf-8").splitlines()]
    assert [(f["to"], f["member"]) for f in faxes] == [(FAX_NUMBER, "fax-1")] * 3
    # The setup code, the setup's security notice (on the member's own channel), the sign-in code.
    assert ["Acme verification code" in f["text"] for f in faxes] == [True, False, True]
    assert faxes[1]["text"].startswith("Acme: Two-step verification was set up on your account.")

    # The plugin's secret setting is redacted wherever settings are shown, and never written out.
    assert result["redacted"]["api_key"] == "********"
    assert API_KEY not in result["repr"]
    assert API_KEY not in spool.read_text(encoding="utf-8")

    # No core file was changed: the plugin ships only its own files, the installed core is
    # byte-identical to this source tree and to its own RECORD after the plugin was installed.
    assert result["fake_files"] and not [f for f in result["fake_files"] if f.startswith("otp_pro/")]
    assert result["core_record_mismatches"] == []
    assert result["core_files"] == wheelhouse.core_digests
