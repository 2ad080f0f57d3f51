"""The entry-point cache (otp_pro.entry_points): fast on a second start, never stale after an install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PROBE = textwrap.dedent("""
    import json, sys
    from otp_pro.plugins import PluginHost
    host = PluginHost()
    import otp_pro
    print(json.dumps({"metadata_imported": "importlib.metadata" in sys.modules,
                      "plugins": sorted(r.name for r in host.records if not r.builtin),
                      "errors": {r.name: r.error for r in host.records if r.error},
                      "version": otp_pro.__version__}))
""")


@pytest.fixture
def run(tmp_path: Path):
    cache = tmp_path / "cache"
    site = tmp_path / "site"
    site.mkdir()

    def probe(**env: str) -> dict:
        environment = {**os.environ, "OTP_PRO_ENTRY_POINT_CACHE": str(cache),
                       "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), **env}
        done = subprocess.run([sys.executable, "-c", PROBE], env=environment, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        result: dict = json.loads(done.stdout)
        return result

    probe.cache = cache  # type: ignore[attr-defined]
    probe.site = site  # type: ignore[attr-defined]
    return probe


def install_fake(site: Path) -> None:
    """A distribution with an ``otp_pro`` entry point, laid out as pip would (module + dist-info)."""
    (site / "otp_pro_cache_probe.py").write_text(
        "from otp_pro import hookimpl\n\n@hookimpl\ndef otp_pro_register_transports(register):\n    pass\n")
    info = site / "otp_pro_cache_probe-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: otp-pro-cache-probe\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[otp_pro]\notp_pro_cache_probe = otp_pro_cache_probe\n")


def test_second_start_reads_the_cache_instead_of_importlib_metadata(run):
    first = run()
    assert first["metadata_imported"] is True  # nothing cached yet: found the slow way
    files = list(run.cache.glob("entry-points-*.json"))
    assert len(files) == 1
    second = run()
    assert second["metadata_imported"] is False
    assert second["plugins"] == first["plugins"]
    assert second["version"] == first["version"] != "0.0.0"


def test_an_installed_or_removed_distribution_is_seen_at_the_next_start(run):
    before = run()
    assert "otp_pro_cache_probe" not in before["plugins"]
    install_fake(run.site)
    after = run()
    assert "otp_pro_cache_probe" in after["plugins"]
    assert after["metadata_imported"] is True  # the folder changed: read again
    assert "otp_pro_cache_probe" in run()["plugins"]
    for path in sorted(run.site.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    assert "otp_pro_cache_probe" not in run()["plugins"]


def test_a_damaged_or_unwritable_cache_is_ignored(run, tmp_path):
    run()
    (cache_file,) = run.cache.glob("entry-points-*.json")
    cache_file.write_text("{not json")
    repaired = run()
    assert repaired["metadata_imported"] is True and not repaired["errors"]
    assert json.loads(cache_file.read_text())["answers"]  # rewritten whole
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    assert run(OTP_PRO_ENTRY_POINT_CACHE=str(blocked / "below-a-file"))["plugins"] == repaired["plugins"]


def test_switched_off_it_writes_nothing(run):
    run(OTP_PRO_ENTRY_POINT_CACHE="0")
    assert not run.cache.exists()


def test_two_ways_of_starting_keep_their_own_answers(run):
    """The console script and ``python -m`` see different sys.path; neither evicts the other."""
    run()
    moved = run(PYTHONPATH=os.pathsep.join([str(run.site), str(run.site.parent)]))
    assert moved["metadata_imported"] is True
    assert run()["metadata_imported"] is False
    assert run(PYTHONPATH=os.pathsep.join([str(run.site), str(run.site.parent)]))["metadata_imported"] is False
