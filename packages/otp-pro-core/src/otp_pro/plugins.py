"""Plugin discovery and registration: one path for built-ins and entry points.

Built-ins come from :data:`DEFAULT_PLUGINS`, external plugins from the
entry-point group ``otp_pro``; both go through the same guarded registration.
A plugin that fails to import, validate or register is reported by name (in
:meth:`OtpPro.plugins` and the log) and skipped; the others carry on. Hooks
are called through :meth:`PluginHost.call` (see :mod:`otp_pro.hookcall`), and
every registration hook fills a :class:`Registry`.
``OTP_PRO_DISABLE_PLUGINS`` (comma-separated names) and the ``disable_plugins``
setting leave named plugins unloaded.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from .entry_points import installed
from .errors import PluginError
from .factor_types import FactorType
from .hookcall import Answer, GuardedPluginManager, HookFailure, OnError, calling_plugin, describe_error
from .results import PluginInfo
from .settings import Setting
from .transports import TOTP, Payload, Transport

log = logging.getLogger("otp_pro.plugins")

ENTRY_POINT_GROUP = "otp_pro"
DISABLE_ENV = "OTP_PRO_DISABLE_PLUGINS"

#: Built-in plugins, registered through the same manager as external ones.
DEFAULT_PLUGINS: tuple[tuple[str, str], ...] = (
    ("otp_pro_email", "otp_pro.builtins.email"),
    ("otp_pro_code", "otp_pro.builtins.code"),
    ("otp_pro_factor_types", "otp_pro.builtins.factor_types"),
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
    factor_types: list[str] = field(default_factory=list)

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
            factor_types=tuple(self.factor_types),
        )


class Registry:
    """What registration hooks registered, by name, each with the plugin that registered it.

    The one registration helper behind transports, payloads, settings sections,
    dispatchers and CLI commands. During the hook call ``register`` callbacks
    :meth:`claim` names for the calling plugin (named by
    :func:`~otp_pro.hookcall.calling_plugin`); :meth:`settle` then grants the
    claims in the plugins' registration order, so a built-in keeps its name
    whatever order pluggy called the implementations in, and refuses a name that
    is reserved or already taken with a message naming both plugins. Several
    kinds share one registry when they share a namespace (transports, payloads
    and settings sections are all configured as ``providers.<name>``).
    """

    def __init__(self, reserved: Callable[[str], str | None] = lambda name: None) -> None:
        #: name -> (owning plugin, kind, value), once settled
        self.entries: dict[str, tuple[str, str, Any]] = {}
        #: why nobody may register a name, or None
        self.reserved = reserved
        self._claims: list[tuple[str, str, str, Any]] = []

    def claim(self, kind: str, name: str, value: Any) -> None:
        """Ask for ``name`` (a ``kind``: transport, command...) for the calling plugin."""
        self._claims.append((calling_plugin(), kind, name, value))

    def settle(self, rank: Callable[[str], int]) -> list[tuple[str, str]]:
        """Grant the claims made so far, the plugin ranked first first; return the refusals as (plugin, message)."""
        refusals: list[tuple[str, str]] = []
        for owner, kind, name, value in sorted(self._claims, key=lambda claim: rank(claim[0])):
            why = self.reserved(name)
            if why is None and name in self.entries:
                why = f"already registered by plugin {self.entries[name][0]}"
            if why is not None:
                refusals.append((owner, f"plugin {owner}: {kind} {name!r} refused: {why}"))
            else:
                self.entries[name] = (owner, kind, value)
        self._claims.clear()
        return refusals

    def of_kind(self, *kinds: str) -> dict[str, tuple[str, Any]]:
        """The entries of ``kinds``, as name -> (owning plugin, value), in the order they were granted."""
        return {name: (owner, value) for name, (owner, kind, value) in self.entries.items() if kind in kinds}


class PluginHost:
    """Owns one pluggy manager and what is known about each plugin."""

    def __init__(self, *, disabled: Iterable[str] = (), extra: Iterable[object] = (), entry_points: bool = True):
        self.pm = GuardedPluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.disabled = set(disabled) | disabled_from_env()
        self.records: list[_Record] = []
        self._loaded: dict[str, _Record] = {}
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
        if record.name in self._loaded:
            record.error = f"another plugin is already registered as {record.name!r}"
            log.warning("otp-pro plugin %s skipped: %s", record.name, record.error)
            return
        try:
            plugin = load()
            self.pm.register(plugin, name=record.name)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the others
            record.error = describe_error(exc)
            log.warning("otp-pro plugin %s could not be loaded: %s", record.name, record.error)
            return
        record.plugin = plugin
        self._loaded[record.name] = record

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
                        record.error = describe_error(exc)
                        record.plugin = None
                        self._loaded.pop(record.name, None)
                        log.warning("otp-pro plugin %s skipped: %s", record.name, record.error)
                self.pm.unregister(culprit)

    # ------------------------------------------------------------ hook calls

    def call(self, hook_name: str, on_error: OnError, /, *, what: str = "", **kwargs: Any) -> list[Answer]:
        """Call hook ``hook_name`` through pluggy with ``kwargs``; apply ``on_error`` to failed implementations.

        Returns the answers that are not ``None``, in pluggy's call order (last
        registered first; one at most for a ``firstresult`` hook). ``what`` says
        what the call was doing, for the :class:`~otp_pro.errors.PluginError` of
        :attr:`OnError.RAISE` ("to render a challenge message for email:code").
        ``OnError.COLLECT`` is :meth:`call_collecting`'s.
        """
        answers, failures = self.call_collecting(hook_name, **kwargs)
        for failure in failures:
            self._failed(hook_name, failure, on_error, what)
        return answers

    def call_collecting(self, hook_name: str, **kwargs: Any) -> tuple[list[Answer], list[HookFailure]]:
        """Call hook ``hook_name`` and hand back its answers and its failures (:attr:`OnError.COLLECT`)."""
        try:
            raw = getattr(self.pm.hook, hook_name)(**kwargs)
        except Exception as exc:  # noqa: BLE001 - a plugin's hook wrapper raised: the hook's policy applies
            return [], [HookFailure("?", exc)]
        answers: list[Answer] = []
        failures: list[HookFailure] = []
        for value in raw if isinstance(raw, list) else ([] if raw is None else [raw]):
            if isinstance(value, HookFailure):
                failures.append(value)
            elif isinstance(value, Answer):
                answers.append(value)
            else:  # a hook wrapper replaced the result: nobody to name
                answers.append(Answer("?", value))
        return answers, failures

    def _failed(self, hook_name: str, failure: HookFailure, on_error: OnError, what: str) -> None:
        record = self._loaded.get(failure.plugin)
        error = failure.error
        if on_error is OnError.SKIP:
            if record is not None:
                record.error = describe_error(error)
            log.warning("otp-pro plugin %s failed in %s: %s", failure.plugin, hook_name, describe_error(error))
        elif on_error is OnError.LOG:
            log.warning("otp-pro plugin %s failed in %s: %s", failure.plugin, hook_name, type(error).__name__)
        elif on_error is OnError.RAISE:
            if record is not None:
                record.error = f"{type(error).__name__} in {hook_name}"
            raise PluginError(f"plugin {failure.plugin} failed {what or 'in ' + hook_name}: {type(error).__name__}",
                              plugin=failure.plugin)
        else:
            raise ValueError(f"{on_error} failures are handed back by call_collecting(), not call()")

    # ---------------------------------------------------------------- records

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
        # One namespace: each of them is configured as providers.<name>.
        # ":" separates a channel's transport from its payload; TOTP is the authenticator apps' channel.
        registry = Registry(reserved=lambda name: "the name is reserved" if ":" in name or name == TOTP else None)

        def provider_registrar(kind: str, base: type[Transport] | type[Payload]) -> Callable[[object], None]:
            def register(cls: object) -> None:
                if not isinstance(cls, type) or not issubclass(cls, base) or not getattr(cls, "name", ""):
                    owner = calling_plugin()
                    raise PluginError(
                        f"plugin {owner} registered {cls!r}, which is not a named {base.__name__} subclass",
                        plugin=owner,
                    )
                registry.claim(kind, cls.name, cls)

            return register

        def register_section(name: str, specs: Sequence[Setting]) -> None:
            owner = calling_plugin()
            if not isinstance(name, str) or not name:
                raise PluginError(f"plugin {owner} registered settings {name!r}, which is not a name", plugin=owner)
            if not all(isinstance(spec, Setting) for spec in specs):
                raise PluginError(f"plugin {owner} registered settings {name!r} that are not Setting objects",
                                  plugin=owner)
            registry.claim("settings", name, tuple(specs))

        self.call("otp_pro_register_transports", OnError.SKIP, register=provider_registrar("transport", Transport))
        self.call("otp_pro_register_payloads", OnError.SKIP, register=provider_registrar("payload", Payload))
        # Settings sections of plugins that are neither transports nor payloads (templating, webhooks).
        self.call("otp_pro_register_settings", OnError.SKIP, register=register_section)
        self.refused(registry.settle(self.rank))
        for name, (owner, kind, _value) in registry.entries.items():
            record = self._loaded.get(owner)
            if record is not None and kind != "settings":
                (record.transports if kind == "transport" else record.payloads).append(name)
        return registry.of_kind("transport", "payload"), registry.of_kind("settings")

    def collect_factor_types(self) -> dict[str, tuple[str, type[FactorType]]]:
        """Ask every plugin for its factor types: each name with the plugin that registered it and the class.

        Nothing is instantiated. A type that is not delivered is a channel too, so
        its name may not hold ``:`` (a delivered channel's separator).
        """
        registry = Registry(reserved=lambda name: "a factor type's name cannot hold ':'" if ":" in name else None)

        def register(cls: object) -> None:
            if not isinstance(cls, type) or not issubclass(cls, FactorType) or not getattr(cls, "name", ""):
                owner = calling_plugin()
                raise PluginError(f"plugin {owner} registered {cls!r}, which is not a named FactorType subclass",
                                  plugin=owner)
            registry.claim("factor type", cls.name, cls)

        self.call("otp_pro_register_factor_types", OnError.SKIP, register=register)
        self.refused(registry.settle(self.rank))
        found = registry.of_kind("factor type")
        for name, (owner, _cls) in found.items():
            record = self._loaded.get(owner)
            if record is not None:
                record.factor_types.append(name)
        return found

    def rank(self, plugin: str) -> int:
        """Where ``plugin`` stands in registration order (built-ins first); one not registered here comes last."""
        record = self._loaded.get(plugin)
        return self.records.index(record) if record is not None else len(self.records)

    def refused(self, refusals: Iterable[tuple[str, str]]) -> None:
        """Keep each refused registration as its plugin's error, and log it."""
        for plugin, message in refusals:
            record = self._loaded.get(plugin)
            if record is not None:
                record.error = message
            log.warning("otp-pro plugin %s failed to register: %s", plugin, message)


def _given(plugin: object) -> object:
    """The loader of a plugin object passed in by the application: the object itself."""
    return plugin


