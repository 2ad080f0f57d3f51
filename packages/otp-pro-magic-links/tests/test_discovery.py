"""otp-pro-magic-links is found through the ``otp_pro`` entry-point group once installed."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import otp_pro_magic_links
import otp_pro_magic_links.plugin
import pytest

NAME = "otp_pro_magic_links"  # the entry-point name, which is the plugin's identity
DISTRIBUTION = "otp-pro-magic-links"
MODULE = "otp_pro_magic_links.plugin"


def _entry_point() -> importlib.metadata.EntryPoint:
    found = [ep for ep in importlib.metadata.entry_points(group="otp_pro") if ep.name == NAME]
    assert len(found) == 1, f"expected one otp_pro entry point named {NAME}, found {found}"
    return found[0]


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Settings for an OtpPro on a fresh SQLite file, with no plugin blocked from outside."""
    monkeypatch.delenv("OTP_PRO_DISABLE_PLUGINS", raising=False)
    return {"secret_key": "x" * 40, "database_url": f"sqlite:///{tmp_path}/t.db"}


def test_entry_point_points_at_the_plugin_module() -> None:
    ep = _entry_point()
    assert ep.value == MODULE
    assert ep.dist is not None and ep.dist.name == DISTRIBUTION
    assert ep.load() is otp_pro_magic_links.plugin


def test_version_matches_the_installed_metadata() -> None:
    assert otp_pro_magic_links.__version__ == importlib.metadata.version(DISTRIBUTION)


def test_core_plugin_manager_loads_it(settings: dict[str, Any]) -> None:
    from otp_pro import OtpPro

    otp = OtpPro(settings)
    info = {p.name: p for p in otp.plugins()}
    plugin = info[NAME]
    assert plugin.module == MODULE
    assert plugin.distribution == DISTRIBUTION
    assert plugin.version == otp_pro_magic_links.__version__
    assert plugin.error is None
    assert not plugin.builtin
    assert plugin.enabled


def test_disable_plugins_setting_switches_it_off(settings: dict[str, Any]) -> None:
    from otp_pro import OtpPro

    otp = OtpPro({**settings, "disable_plugins": [NAME]})
    info = {p.name: p for p in otp.plugins()}
    assert info[NAME].enabled is False
    assert info[NAME].error is None


def test_disable_plugins_environment_variable_switches_it_off(
    settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from otp_pro import OtpPro

    monkeypatch.setenv("OTP_PRO_DISABLE_PLUGINS", NAME)
    otp = OtpPro(settings)
    info = {p.name: p for p in otp.plugins()}
    assert info[NAME].enabled is False
