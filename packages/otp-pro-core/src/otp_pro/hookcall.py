"""How the core calls hooks: through pluggy's hook callers, with one error policy per hook.

Every hook is called as ``pm.hook.<name>(**kwargs)``, so pluggy's own order
(last registered first, ``tryfirst`` / ``trylast`` respected), its tracing
(``pm.enable_tracing()``, ``add_hookcall_monitoring``) and plugins' hook
wrappers all apply. What pluggy does not do is keep going when one
implementation raises: one broken listener would silence the others. So the
plugin manager (:class:`GuardedPluginManager`) wraps each plain implementation
when it is registered: the wrapper runs the implementation with its plugin's
name in :func:`calling_plugin` (registration hooks use it to name who
registered what), hands back a non-``None`` answer as an :class:`Answer`
naming the plugin (a channel hidden "by plugin X"), and turns an exception
into a :class:`HookFailure` answer. pluggy then calls the next implementation
as usual; the caller decides, by the hook's :class:`OnError` policy, what a
failure means. A plugin's own hook wrapper sees the answers in these two forms. Each hookspec's
docstring states its policy; ``docs/plugin-hooks.md`` has the table.
"""

from __future__ import annotations

import contextvars
import enum
from dataclasses import dataclass
from typing import Any, NamedTuple

import pluggy
from pluggy import HookImpl

_CALLING: contextvars.ContextVar[str | None] = contextvars.ContextVar("otp_pro_calling_plugin", default=None)


def calling_plugin() -> str:
    """The name of the plugin whose hook implementation is running (``"?"`` outside one)."""
    return _CALLING.get() or "?"


def describe_error(exc: BaseException) -> str:
    """``Type: message`` on one line, cut to 300 characters, for plugin records and log lines."""
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Answer(NamedTuple):
    """One implementation's answer: the plugin that gave it and the value it returned."""

    plugin: str
    value: Any


@dataclass(frozen=True)
class HookFailure:
    """What a guarded implementation answers instead of raising."""

    plugin: str
    error: Exception


class OnError(enum.Enum):
    """What an exception raised by one implementation of a hook means.

    Every policy names the plugin; none lets the exception's text reach a
    member. The exception's text is logged only by ``SKIP`` (registration and
    checks, where it explains a misconfiguration); ``LOG`` and ``RAISE`` give
    its type alone, since a message hook's exception may quote the message.
    """

    #: The implementation's answer is left out and the others' stand; a warning is logged and the
    #: failure is kept as the plugin's error (``OtpPro.plugins()``, ``otp-pro providers list``).
    SKIP = "skip"
    #: A warning naming the plugin is logged; the others' answers stand. For listeners of committed events.
    LOG = "log"
    #: The call fails with :class:`~otp_pro.errors.PluginError` naming the plugin, and the failure is kept
    #: as the plugin's error. For hooks whose answer the operation cannot do without (rendering, lookup).
    RAISE = "raise"
    #: The failures are handed back to the caller with the answers (start-up problems, CLI warnings).
    COLLECT = "collect"


def _guard(impl: HookImpl) -> None:
    """Wrap one plain implementation so that pluggy goes on past its exception (see the module docstring)."""
    function = impl.function
    if getattr(function, "_otp_pro_guarded", False):
        return
    plugin = impl.plugin_name

    def guarded(*args: Any) -> Any:
        token = _CALLING.set(plugin)
        try:
            value = function(*args)
            return None if value is None else Answer(plugin, value)
        except Exception as exc:  # noqa: BLE001 - the hook's OnError policy decides what it means
            return HookFailure(plugin, exc)
        finally:
            _CALLING.reset(token)

    guarded._otp_pro_guarded = True  # type: ignore[attr-defined]
    # pluggy calls impl.function(*args), the arguments in the order of impl.argnames.
    impl.function = guarded  # type: ignore[misc]


class GuardedPluginManager(pluggy.PluginManager):
    """pluggy's manager, with every plain hook implementation guarded when its plugin is registered.

    Registration through this class is the only way in (``OtpPro(plugins=...)``,
    entry points, the test kit's ``register_plugin``), so no implementation escapes
    the guard. Hook wrappers (``wrapper=True`` / ``hookwrapper=True``) are left as
    they are: they see an implementation's failure as its :class:`HookFailure` answer.
    """

    def register(self, plugin: object, name: str | None = None) -> str | None:
        registered = super().register(plugin, name)
        for caller in self.get_hookcallers(plugin) or ():
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin and not (impl.wrapper or impl.hookwrapper):
                    _guard(impl)
        return registered


