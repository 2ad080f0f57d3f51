"""The core's factor contract kit, run against the installed ``webauthn`` type, and its discovery."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import ORIGIN
from soft_authenticator import SoftAuthenticator

from otp_pro import IssuedChallenge, SetupInfo
from otp_pro.testing import DiscoveryContract, FactorTypeContract


class TestWebAuthnContract(FactorTypeContract):
    factor_type = "webauthn"
    distribution = "otp-pro-webauthn"
    wrong_answer: Any = SoftAuthenticator(ORIGIN).get(
        {"publicKey": {"challenge": "bmV2ZXItaXNzdWVkLWJ5LXRoZS1zZXJ2ZXI", "rpId": "example.com"}})

    @pytest.fixture
    def otp_settings(self, otp_settings: dict[str, Any]) -> dict[str, Any]:
        return {**otp_settings, "providers": {"webauthn": {"rp_id": "example.com", "origins": [ORIGIN]}}}

    @pytest.fixture
    def otp_plugins(self) -> list[object]:
        return []  # the installed distribution, found through its entry point

    @pytest.fixture(autouse=True)
    def _keys(self) -> None:
        self._devices: dict[str, SoftAuthenticator] = {}

    def _device(self, setup: SetupInfo) -> SoftAuthenticator:
        return self._devices.setdefault(setup.show["publicKey"]["challenge"], SoftAuthenticator(ORIGIN))

    def answer(self, setup: SetupInfo, n: int) -> Any:
        return self._device(setup).create(setup.show)

    def answer_challenge(self, setup: SetupInfo, issued: IssuedChallenge, n: int) -> Any:
        return self._device(setup).get(issued.show)


class TestDiscovery(DiscoveryContract):
    entry_point = "otp_pro_webauthn"  # the entry-point name is the plugin's identity
    distribution = "otp-pro-webauthn"
    module = "otp_pro_webauthn.plugin"
