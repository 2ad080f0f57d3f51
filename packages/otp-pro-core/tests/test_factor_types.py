"""Factor types are plugins: the core's TOTP passes the contract kit, and so does a third party's HOTP token
registered through the hook exactly as an installed plugin's would be."""

from __future__ import annotations

import types
from typing import Any

import pyotp
import pytest
from core_support import HotpFactor, hotp_plugin

from otp_pro import Member, OtpPro, SetupInfo, hookimpl
from otp_pro.testing import FactorTypeContract


class TestTotpContract(FactorTypeContract):
    factor_type = "totp"
    distribution = "otp-pro-core"
    step_seconds = 30

    def answer(self, setup: SetupInfo, n: int) -> Any:
        # The contract moves the clock one step between answers; the code is the app's at that time.
        return pyotp.TOTP(setup.secret).at(self._clock.now)

    @pytest.fixture(autouse=True)
    def _keep_clock(self, clock: Any) -> None:
        self._clock = clock


class TestHotpContract(FactorTypeContract):
    factor_type = "hotp"
    distribution = None

    @pytest.fixture
    def otp_plugins(self) -> list[object]:
        return [hotp_plugin]

    def answer(self, setup: SetupInfo, n: int) -> Any:
        return pyotp.HOTP(setup.show["secret"]).at(n)


def test_a_third_party_type_is_a_channel_roles_can_list(otp_factory, tmp_path, clock):
    settings = {"secret_key": "s" * 40, "database_url": f"sqlite:///{tmp_path / 'o.db'}", "site_name": "Site",
                "channels": ["outbox:code", "totp"], "default_channel": "outbox:code",
                "roles": {"ops": {"requirement": "required", "channels": ["hotp"], "grace_days": 0}}}
    otp: OtpPro = otp_factory(settings, plugins=[hotp_plugin])
    ops = Member("o-1", roles=["ops"], email="o@example.com")
    assert otp.status(ops).must_setup and otp.status(ops).channels == ("hotp",)
    setup = otp.begin_setup(ops, "hotp", label="Blue token")
    codes = otp.complete_setup(ops, pyotp.HOTP(setup.show["secret"]).at(0))
    assert len(codes) == 10
    status = otp.status(ops)
    assert status.enrolled and status.channel == "hotp" and status.factors[0].label == "Blue token"
    # A code two presses ahead is accepted; the presses before it are used up with it.
    result = otp.verify(ops, pyotp.HOTP(setup.show["secret"]).at(3))
    assert result.ok and result.method == "hotp"
    assert not otp.verify(ops, pyotp.HOTP(setup.show["secret"]).at(2)).ok
    [info] = [p for p in otp.plugins() if "hotp" in p.factor_types]
    assert info.name == "otp_pro_hotp_example"


def test_the_core_registers_its_types_through_the_hook(otp):
    [core] = [p for p in otp.plugins() if p.factor_types and p.builtin]  # an installed companion may add types
    assert core.name == "otp_pro_factor_types" and core.builtin
    assert set(core.factor_types) == {"totp", "code", "link"}
    assert otp.channels["outbox:code"].factor_type is not None and otp.channels["outbox:code"].factor_type.delivers
    assert otp.channels["totp"].factor_type is not None and not otp.channels["totp"].factor_type.delivers


@pytest.mark.parametrize("name", ["totp", "bad:name"])
def test_a_taken_or_malformed_name_is_refused_naming_the_plugin(otp_factory, tmp_path, name):
    class Clash(HotpFactor):
        pass

    Clash.name = name
    clash = types.SimpleNamespace(__name__="otp_pro_clash",
                                  otp_pro_register_factor_types=hookimpl(lambda register: register(Clash)))
    otp = otp_factory({"secret_key": "s" * 40, "database_url": f"sqlite:///{tmp_path / 'o.db'}",
                       "site_name": "Site"}, plugins=[clash])
    [record] = [p for p in otp.plugins() if p.name == "otp_pro_clash"]
    assert record.error is not None and name in record.error and not record.factor_types
    # The core's TOTP is untouched by the refused clash.
    assert type(otp.channels["totp"].factor_type).__name__ == "TotpFactor"


def test_registering_something_else_is_refused(otp_factory, tmp_path):
    broken = types.SimpleNamespace(__name__="otp_pro_broken",
                                   otp_pro_register_factor_types=hookimpl(lambda register: register(object)))
    otp = otp_factory({"secret_key": "s" * 40, "database_url": f"sqlite:///{tmp_path / 'o.db'}",
                       "site_name": "Site"}, plugins=[broken])
    [record] = [p for p in otp.plugins() if p.name == "otp_pro_broken"]
    assert record.error is not None and "FactorType" in record.error
