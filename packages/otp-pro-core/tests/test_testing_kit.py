"""The authoring kit's own fixtures (``otp_pro.testing``): otp, otp_settings, make_member, register_plugin."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from typing import Any

import pytest

from otp_pro import Member, OtpPro, hookimpl
from otp_pro import testing as kit
from otp_pro.testing import TEST_SECRET_KEY, registered_plugin, settings_toml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytest_plugins = ["pytester"]

# The kit's own `otp` fixture, in place of this suite's conftest one (which runs on both databases).
otp = kit.otp


class Listener:
    """A runtime plugin: records event kinds."""

    def __init__(self) -> None:
        self.kinds: list[str] = []

    @hookimpl
    def otp_pro_event(self, event: Any) -> None:
        self.kinds.append(event.kind)


@pytest.fixture
def otp_settings(otp_settings: dict[str, Any]) -> dict[str, Any]:
    # Overriding the kit's fixture, as a plugin's conftest would: the outbox stands in for a provider.
    return {**otp_settings, "channels": ["outbox:code", "totp"], "default_channel": "outbox:code"}


def test_otp_fixture_is_built_from_otp_settings(otp: OtpPro, tmp_path: Any) -> None:
    assert otp.settings.site_name == "Example" and otp.settings.mode == "visible"
    assert list(otp.settings.channels or ()) == ["outbox:code", "totp"]
    assert str(tmp_path) in otp.settings.database_url
    assert otp.settings.resend_cooldown_seconds == 0


def test_otp_fixture_follows_the_clock(otp: OtpPro, clock: Any) -> None:
    before = otp.clock()
    clock.advance(minutes=5)
    assert (otp.clock() - before).total_seconds() == 300


def test_make_member(make_member: Callable[..., Member]) -> None:
    first, second = make_member(), make_member(roles=["admin"], fields={"phone": "+447400123456"})
    assert first.id != second.id
    assert first.email == f"{first.id}@example.com" and first.name
    assert second.roles == ("admin",) and second.fields["phone"] == "+447400123456"
    assert make_member("x", email=None).email is None
    assert make_member(7).id == "7"


def test_register_plugin_on_the_otp_fixture(otp: OtpPro, register_plugin: Any, make_member: Any) -> None:
    listener = Listener()
    name = register_plugin(listener, name="kit-listener")
    assert name == "kit-listener" and otp.host.pm.is_registered(listener)
    member = make_member()
    otp.begin_setup(member, "outbox:code")
    assert listener.kinds[:2] == ["setup_started", "challenge_sent"]


def test_register_plugin_refuses_start_up_hooks(otp: OtpPro, register_plugin: Any) -> None:
    class Late:
        @hookimpl
        def otp_pro_register_transports(self, register: Any) -> None:
            raise AssertionError("never called")

    with pytest.raises(ValueError, match="otp_plugins"):
        register_plugin(Late())


def test_register_plugin_refuses_a_misspelt_hook(otp: OtpPro, register_plugin: Any) -> None:
    class Typo:
        @hookimpl
        def otp_pro_evnet(self, event: Any) -> None:
            pass

    typo = Typo()
    with pytest.raises(Exception, match="otp_pro_evnet"):
        register_plugin(typo)
    assert not otp.host.pm.is_registered(typo)


def test_registered_plugin_context_manager(otp: OtpPro) -> None:
    listener = Listener()
    with pytest.raises(RuntimeError), registered_plugin(otp, listener):
        assert otp.host.pm.is_registered(listener)
        raise RuntimeError("the block fails")
    assert not otp.host.pm.is_registered(listener)


def test_register_plugin_is_removed_when_the_test_fails(pytester: pytest.Pytester) -> None:
    # Two tests share one OtpPro through a module global: the first registers a plugin
    # and fails; the second must find the plugin gone.
    pytester.makepyfile(textwrap.dedent("""
        import pytest
        from otp_pro import OtpPro, hookimpl

        SHARED = {}

        class Listener:
            @hookimpl
            def otp_pro_event(self, event):
                pass

        @pytest.fixture(scope="module")
        def shared(tmp_path_factory):
            otp = OtpPro({"secret_key": "k" * 40,
                          "database_url": f"sqlite:///{tmp_path_factory.mktemp('db')}/t.sqlite3",
                          "channels": ["outbox:code"], "default_channel": "outbox:code"})
            yield otp
            otp.close()

        def test_registers_then_fails(shared, register_plugin):
            SHARED["listener"] = listener = Listener()
            register_plugin(listener, otp=shared)
            assert shared.host.pm.is_registered(listener)
            assert False, "the test fails after registering"

        def test_plugin_is_gone(shared):
            assert not shared.host.pm.is_registered(SHARED["listener"])
            assert "Listener" not in {type(p).__name__ for p in shared.host.pm.get_plugins()}
    """))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)


def test_otp_factory_closes_every_instance_when_the_test_fails(pytester: pytest.Pytester) -> None:
    # A transport records its close(); the first test builds two instances and fails,
    # the second finds both closed.
    pytester.makepyfile(textwrap.dedent("""
        from otp_pro import Transport, hookimpl

        CLOSED = []

        class Recorder(Transport):
            name = "recorder"
            label = "Recorder"

            def send(self, message):
                raise AssertionError("not used")

            def close(self):
                CLOSED.append(self)

        class Plugin:
            @hookimpl
            def otp_pro_register_transports(self, register):
                register(Recorder)

        def test_builds_then_fails(otp_factory, tmp_path):
            for n in range(2):
                otp_factory({"secret_key": "k" * 40, "database_url": f"sqlite:///{tmp_path}/t{n}.sqlite3",
                             "channels": ["outbox:code"], "default_channel": "outbox:code"}, plugins=[Plugin()])
            assert CLOSED == []
            assert False, "the test fails after building"

        def test_both_were_closed():
            assert len(CLOSED) == 2
    """))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)


def test_settings_toml_round_trips() -> None:
    settings = {"secret_key": TEST_SECRET_KEY, "max_attempts": 3, "code_ttl_seconds": 600, "mode": "visible",
                "channels": ["email:code", "totp"], "unused": None, "ratio": 0.5, "flag": True,
                "providers": {"email": {"smtp_host": "127.0.0.1", "smtp_password": 'p"w\\d\u00e9'},
                              "sms_twilio": {"allowed_countries": ["GB"]}}}
    expected = {k: v for k, v in settings.items() if v is not None}
    assert tomllib.loads(settings_toml(settings)) == expected
