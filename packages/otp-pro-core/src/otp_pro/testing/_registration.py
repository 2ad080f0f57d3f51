"""Registering a runtime plugin for one test, and always unregistering it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from .. import OtpPro

#: Hooks that run only while an ``OtpPro`` starts: a plugin implementing one must be
#: passed at construction (the ``otp_plugins`` fixture), not registered afterwards.
STARTUP_HOOKS = frozenset({
    "otp_pro_register_transports", "otp_pro_register_payloads", "otp_pro_register_settings", "otp_pro_startup",
})


@contextmanager
def registered_plugin(otp: OtpPro, plugin: object, *, name: str | None = None) -> Iterator[str]:
    """Register ``plugin`` on ``otp``'s plugin manager for the ``with`` block; yields the name it got.

    It is unregistered by object (never by a name that may belong to another plugin)
    when the block ends, however it ends. A plugin implementing a start-up hook
    (:data:`STARTUP_HOOKS`) is refused: registered late, it would be silently ignored.
    """
    pm = otp.host.pm
    late = sorted(attr for attr in STARTUP_HOOKS
                  if callable(getattr(plugin, attr, None)) and pm.parse_hookimpl_opts(plugin, attr) is not None)
    if late:
        raise ValueError(
            f"{plugin!r} implements {', '.join(late)}, which only run while OtpPro starts: "
            "pass it to OtpPro(plugins=[...]) (the otp_plugins fixture) instead"
        )
    chosen = name or getattr(plugin, "__name__", None) or f"{type(plugin).__name__}-{id(plugin):x}"
    pm.register(plugin, name=chosen)
    try:
        # A misspelt hook name would otherwise be ignored without a word.
        pm.check_pending()
    except Exception:
        pm.unregister(plugin)
        raise
    try:
        yield chosen
    finally:
        if pm.is_registered(plugin):
            pm.unregister(plugin)


class PluginRegistrar:
    """The ``register_plugin`` fixture: ``register_plugin(plugin, name=None, otp=None)`` returns the plugin's name.

    Without ``otp`` the plugin goes on the test's ``otp`` fixture. Every plugin is
    unregistered when the test ends, passed or failed.
    """

    def __init__(self, request: pytest.FixtureRequest):
        self._request = request
        self._stack = ExitStack()

    def __call__(self, plugin: object, *, name: str | None = None, otp: OtpPro | None = None) -> str:
        target = otp if otp is not None else self._request.getfixturevalue("otp")
        return self._stack.enter_context(registered_plugin(target, plugin, name=name))

    def close(self) -> None:
        """Unregister every plugin this registrar registered."""
        self._stack.close()


@pytest.fixture
def register_plugin(request: pytest.FixtureRequest) -> Iterator[PluginRegistrar]:
    """Register plugins for this test only; see :class:`PluginRegistrar`."""
    registrar = PluginRegistrar(request)
    try:
        yield registrar
    finally:
        registrar.close()
