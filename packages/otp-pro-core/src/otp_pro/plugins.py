"""Plugin discovery and registration: one path for built-ins and entry points.

Built-ins come from :data:`DEFAULT_PLUGINS`, external plugins from the
entry-point group ``otp_pro``; both go through the same guarded registration.
A plugin that fails to import, validate or register is reported by name (in
:meth:`OtpPro.plugins` and the log) and skipped; the others carry on.
``OTP_PRO_DISABLE_PLUGINS`` (comma-separated names) and the ``disable_plugins``
setting leave named plugins unloaded.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy
from pluggy import HookImpl

from . import hookspecs
from .entry_points import installed
from .errors import PluginError
from .results import PluginInfo
from .settings import Setting
from .transports import Payload, Transport

log = logging.getLogger("otp_pro.plugins")

ENTRY_POINT_GROUP = "otp_pro"
DISABLE_ENV = "OTP_PRO_DISABLE_PLUGINS"

#: Built-in plugins, registered through the same manager as external ones.
DEFAULT_PLUGINS: tuple[tuple[str, str], ...] = (
    ("otp_pro_email", "otp_pro.builtins.email"),
    ("otp_pro_code", "otp_pro.builtins.code"),
    ("otp_pro_outbox", "otp_pro.builtins.outbox"),
    ("otp_pro_rendering", "otp_pro.builtins.rendering"),
    ("otp_pro_notify", "otp_pro.builtins.notify"),
    ("otp_pro_inline", "otp_pro.dispatch"),
    ("otp_pro_celery", "otp_pro.celery"),
)


def disabled_from_env() -> set[str]:
    raw = os.environ.get(DISABLE_ENV, "")
    return {part.strip() for part in raw.split(",") if part.strip()}


@dataclass
class _Record:
    name: str
    module: str | None
    distribution: str | None
    version: str | None
    builtin: bool
    enabled: bool = True
    error: str | None = None
    plugin: Any = None
    transports: list[str] = field(default_factory=list)
    payloads: list[str] = field(default_factory=list)

    def info(self) -> PluginInfo:
        return PluginInfo(
            name=self.name,
            module=self.module,
            distribution=self.distribution,
            version=self.version,
            builtin=self.builtin,
            enabled=self.enabled,
            error=self.error,
            transports=tuple(self.transports),
            payloads=tuple(self.payloads),
        )


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class PluginHost:
    """Owns one pluggy manager and what is known about each plugin."""

    def __init__(self, *, disabled: Iterable[str] = (), extra: Iterable[object] = (), entry_points: bool = True):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.disabled = set(disabled) | disabled_from_env()
        self.records: list[_Record] = []
        found = installed(ENTRY_POINT_GROUP)
        for name, module_name in DEFAULT_PLUGINS:
            builtin = _Record(name, module_name, "otp-pro-core", found.core_version, True)
            self._add(builtin, functools.partial(importlib.import_module, module_name))
        if entry_points:
            for ep in found.entry_points:
                self._add(_Record(ep.name, ep.value, ep.dist, ep.version, False), ep.load)
        for i, plugin in enumerate(extra):
            name = getattr(plugin, "__name__", None) or f"{type(plugin).__name__}-{i}"
            given = _Record(name, getattr(plugin, "__module__", None), None, None, False)
            self._add(given, functools.partial(_given, plugin))
        self._check_pending()

    def _add(self, record: _Record, load: Callable[[], Any]) -> None:
        self.records.append(record)
        if record.name in self.disabled:
            record.enabled = False
            return
        if any(r.name == record.name and r is not record and r.plugin is not None for r in self.records):
            record.error = f"another plugin is already registered as {record.name!r}"
            log.warning("otp-pro plugin %s skipped: %s", record.name, record.error)
            return
        try:
            plugin = load()
            self.pm.register(plugin, name=record.name)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the others
            record.error = _describe(exc)
            log.warning("otp-pro plugin %s could not be loaded: %s", record.name, record.error)
            return
        record.plugin = plugin

    def _check_pending(self) -> None:
        # A hookimpl with a misspelt name would be silently ignored: report it by plugin.
        for _ in range(len(self.records)):
            try:
                self.pm.check_pending()
                return
            except pluggy.PluginValidationError as exc:
                culprit = exc.plugin
                for record in self.records:
                    if record.plugin is culprit:
                        record.error = _describe(exc)
                        record.plugin = None
                        log.warning("otp-pro plugin %s skipped: %s", record.name, record.error)
                self.pm.unregister(culprit)

    @staticmethod
    def call(impl: HookImpl, **kwargs: Any) -> Any:
        """Call one implementation with just the arguments it names (pluggy's own rule)."""
        return impl.function(**{name: kwargs[name] for name in impl.argnames})

    def call_each(self, hook_name: str, **kwargs: Any) -> Iterator[tuple[_Record | None, Any]]:
        """Call one hook's implementations one by one, attributing any error to its plugin.

        The record is None for an implementation registered on the manager directly, not through this host.
        """
        hook = getattr(self.pm.hook, hook_name)
        for impl in hook.get_hookimpls():  # registration order: built-ins first
            record = self.record_for(impl.plugin)
            try:
                yield record, self.call(impl, **kwargs)
            except Exception as exc:  # noqa: BLE001
                if record is not None:
                    record.error = _describe(exc)
                owner = record.name if record else impl.plugin_name
                log.warning("otp-pro plugin %s failed in %s: %s", owner, hook_name, _describe(exc))

    def record_for(self, plugin: object) -> _Record | None:
        for record in self.records:
            if record.plugin is plugin:
                return record
        return None

    def infos(self) -> list[PluginInfo]:
        return [r.info() for r in self.records]

    def collect_providers(self) -> tuple[dict[str, tuple[str, type[Transport] | type[Payload]]],
                                         dict[str, tuple[str, tuple[Setting, ...]]]]:
        """Ask every plugin for its transports, payloads and settings sections, without starting any.

        Returns ``(providers, sections)``: each name with the plugin that registered
        it and the class (or the settings). A plugin whose registration fails gets
        its ``error`` and the others go on; each record lists what it brought.
        Nothing is instantiated and nothing is imported beyond the plugins
        themselves: ``otp-pro providers list`` uses this alone, :class:`~otp_pro.OtpPro`
        then validates the settings and starts the providers.
        """
        found: dict[str, tuple[str, type[Transport] | type[Payload]]] = {}

        def collect(kind: str, base: type[Transport] | type[Payload]) -> Callable[[object], None]:
            def register(cls: object) -> None:
                record = current[0]
                owner = record.name if record else "?"
                if not isinstance(cls, type) or not issubclass(cls, base) or not getattr(cls, "name", ""):
                    raise PluginError(
                        f"plugin {owner} registered {cls!r}, which is not a named {base.__name__} subclass",
                        plugin=owner,
                    )
                name = cls.name
                if name in found:
                    raise PluginError(
                        f"plugin {owner} registered {kind} {name!r}, already registered by {found[name][0]}",
                        plugin=owner,
                    )
                if ":" in name or name == "totp":  # the channel of authenticator apps
                    raise PluginError(f"plugin {owner} registered the reserved name {name!r}", plugin=owner)
                found[name] = (owner, cls)
                if record is not None:
                    (record.transports if kind == "transport" else record.payloads).append(name)

            return register

        current: list[Any] = [None]
        kinds: tuple[tuple[str, str, type[Transport] | type[Payload]], ...] = (
            ("otp_pro_register_transports", "transport", Transport),
            ("otp_pro_register_payloads", "payload", Payload),
        )
        for hook_name, kind, base in kinds:
            register = collect(kind, base)
            hook = getattr(self.pm.hook, hook_name)
            for impl in hook.get_hookimpls():
                current[0] = self.record_for(impl.plugin)
                try:
                    impl.function(register=register)
                except Exception as exc:  # noqa: BLE001 - reported by name, others go on
                    name = current[0].name if current[0] else impl.plugin_name
                    if current[0] is not None:
                        current[0].error = f"{type(exc).__name__}: {exc}"
                    log.warning("otp-pro plugin %s failed to register: %s", name, exc)
        # Settings sections of plugins that are neither transports nor payloads (templating, webhooks).
        sections: dict[str, tuple[str, tuple[Setting, ...]]] = {}
        for impl in self.pm.hook.otp_pro_register_settings.get_hookimpls():
            record = self.record_for(impl.plugin)
            owner = record.name if record else impl.plugin_name

            def register_section(name: str, specs: Sequence[Setting], _owner: str = owner) -> None:
                if not isinstance(name, str) or not name or name in found or name in sections:
                    taken = found.get(name, sections.get(name, ("?",)))[0] if isinstance(name, str) else "?"
                    raise PluginError(f"plugin {_owner} registered settings {name!r}, already taken by {taken}",
                                      plugin=_owner)
                if not all(isinstance(spec, Setting) for spec in specs):
                    raise PluginError(f"plugin {_owner} registered settings {name!r} that are not Setting objects",
                                      plugin=_owner)
                sections[name] = (_owner, tuple(specs))

            try:
                impl.function(register=register_section)
            except Exception as exc:  # noqa: BLE001 - reported by name, others go on
                if record is not None:
                    record.error = f"{type(exc).__name__}: {exc}"
                log.warning("otp-pro plugin %s failed to register settings: %s", owner, exc)
        return found, sections


def _given(plugin: object) -> object:
    """The loader of a plugin object passed in by the application: the object itself."""
    return plugin


