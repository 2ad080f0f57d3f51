"""The discovery contract: an installed plugin distribution is found, loaded and can be switched off."""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path
from typing import Any, ClassVar

import pytest

from .. import OtpPro
from ..plugins import DISABLE_ENV, ENTRY_POINT_GROUP


class DiscoveryContract:
    """Tests every plugin distribution should pass: discovered, loaded, switchable off.

    Subclass it in a test module and set the class attributes::

        class TestDiscovery(DiscoveryContract):
            entry_point = "otp_pro_acme_fax"
            distribution = "otp-pro-acme-fax"
            module = "otp_pro_acme_fax.plugin"
            lazy_imports = ("acme_fax_sdk",)  # optional
    """

    #: The entry point's name in the ``otp_pro`` group (the plugin's identity).
    entry_point: ClassVar[str]
    #: The distribution that declares it.
    distribution: ClassVar[str]
    #: The module the entry point loads.
    module: ClassVar[str]
    #: Heavy modules the plugin must not import while it is only discovered (``otp-pro providers list``
    #: discovers every plugin): an SDK or a template engine waits until a message needs it.
    lazy_imports: ClassVar[tuple[str, ...]] = ()

    @pytest.fixture
    def settings(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
        """Settings for an OtpPro on a fresh SQLite file, with no plugin blocked from outside."""
        monkeypatch.delenv(DISABLE_ENV, raising=False)
        return {"secret_key": "discovery-contract-" + "x" * 32, "database_url": f"sqlite:///{tmp_path}/t.sqlite3"}

    def _entry_point(self) -> importlib.metadata.EntryPoint:
        found = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == self.entry_point]
        assert len(found) == 1, f"expected one {ENTRY_POINT_GROUP} entry point named {self.entry_point}, found {found}"
        return found[0]

    def _plugin(self, settings: dict[str, Any]) -> Any:
        otp = OtpPro(settings)
        try:
            return {p.name: p for p in otp.plugins()}[self.entry_point]
        finally:
            otp.close()

    def test_entry_point_points_at_the_plugin_module(self) -> None:
        ep = self._entry_point()
        assert ep.value == self.module
        assert ep.dist is not None and ep.dist.name == self.distribution
        assert ep.load() is importlib.import_module(self.module)

    def test_version_matches_the_installed_metadata(self) -> None:
        package = importlib.import_module(self.module.split(".")[0])
        assert package.__version__ == importlib.metadata.version(self.distribution)

    def test_core_plugin_manager_loads_it(self, settings: dict[str, Any]) -> None:
        plugin = self._plugin(settings)
        assert plugin.module == self.module
        assert plugin.distribution == self.distribution
        assert plugin.version == importlib.metadata.version(self.distribution)
        assert plugin.error is None
        assert not plugin.builtin
        assert plugin.enabled

    def test_disable_plugins_setting_switches_it_off(self, settings: dict[str, Any]) -> None:
        plugin = self._plugin({**settings, "disable_plugins": [self.entry_point]})
        assert plugin.enabled is False and plugin.error is None

    def test_disable_plugins_environment_variable_switches_it_off(
        self, settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(DISABLE_ENV, self.entry_point)
        assert self._plugin(settings).enabled is False

    def test_discovery_does_not_import_heavy_dependencies(self) -> None:
        """In a fresh interpreter, discovery finds the plugin and leaves ``lazy_imports`` unimported."""
        import subprocess
        import sys

        probe = ("import sys\n"
                 "from otp_pro.plugins import PluginHost\n"
                 "host = PluginHost()\n"
                 "host.collect_providers()\n"
                 f"assert {self.entry_point!r} in {{p.name for p in host.infos()}}\n"
                 f"print(' '.join(m for m in {self.lazy_imports!r} if m in sys.modules))")
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
        assert done.stdout.split() == []
