"""Start-up and shut-down: providers started from the plugins, channels built, the database opened and checked.

:func:`start` runs once from ``OtpPro(...)``. Every configuration problem
found on the way (bad provider settings, an unknown channel, a dispatcher
that cannot start) is collected and raised together as one
:class:`~otp_pro.errors.ConfigurationError`, before the database is touched;
the plugins' ``otp_pro_startup`` checks run last, with everything ready.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from typing import Any, cast

from .. import dispatch
from ..errors import ConfigurationError
from ..settings import Problems, validate_section
from ..storage import migrate
from ..storage.db import Database
from ..transports import Payload, ProviderConfig, Transport
from .runtime import ChannelDef, Runtime

log = logging.getLogger("otp_pro")


def start(rt: Runtime, migrate_database: bool | None) -> None:
    """Start the providers and the dispatcher, build the channels, open the database, run the start-up checks."""
    problems = Problems()
    _start_providers(rt, problems)
    _start_factor_types(rt, problems)
    rt.dispatcher = dispatch.build(rt.otp, problems)
    rt.member_lookup = _member_lookup(rt.settings.member_lookup, problems)
    rt.channels.update(_channels(rt))
    _check_channels(rt, problems)
    problems.raise_if_any()
    s = rt.settings
    rt.open_database(Database(s.database_url, pool_size=s.database_pool_size, max_overflow=s.database_max_overflow))
    _prepare_database(rt, migrate_database)
    _startup_checks(rt)


def _member_lookup(path: str | None, problems: Problems) -> Callable[[str], Any] | None:
    """The function the ``member_lookup`` setting names, imported now so a typo fails at start-up, not at the
    first support call."""
    if path is None:
        return None
    module_name, _, attr = path.partition(":")
    try:
        found: Any = importlib.import_module(module_name.strip())
        for part in attr.strip().split("."):
            found = getattr(found, part)
    except Exception as exc:  # noqa: BLE001 - any failure to import the site's module is a configuration problem
        problems.add("member_lookup", f"cannot import {path!r}: {type(exc).__name__}: {exc}")
        return None
    if not callable(found):
        problems.add("member_lookup", f"{path!r} is a {type(found).__name__}, not a function")
        return None
    return cast("Callable[[str], Any]", found)


def _start_providers(rt: Runtime, problems: Problems) -> None:
    found, sections = rt.host.collect_providers()
    providers = dict(rt.settings.providers)
    for name, (_owner, specs) in sections.items():
        raw = providers.pop(name, {})
        rt.plugin_settings[name] = ProviderConfig(
            name, validate_section(specs, raw, f"providers.{name}.", problems), specs
        )
    for name, (owner, cls) in found.items():
        raw = providers.pop(name, {})
        values = validate_section(cls.settings, raw, f"providers.{name}.", problems)
        config = ProviderConfig(name, values, cls.settings)
        try:
            instance = cls(config, rt.otp)
        except Exception as exc:  # noqa: BLE001 - a provider that cannot start is a configuration problem
            problems.add(f"providers.{name}", f"plugin {owner} failed to start: {type(exc).__name__}: {exc}")
            continue
        if isinstance(instance, Transport):
            rt.transports[name] = instance
        else:
            rt.payloads[name] = instance
    for name in providers:
        installed = ", ".join(sorted([*found, *sections])) or "none"
        problems.add(
            f"providers.{name}", f"no installed plugin has settings called {name!r} (installed: {installed})"
        )
    started: list[Transport | Payload] = [*rt.transports.values(), *rt.payloads.values()]
    for provider in started:
        for problem in provider.check():
            key, _, message = problem.partition(": ")
            problems.add(key if message else f"providers.{provider.name}", message or problem)


def _start_factor_types(rt: Runtime, problems: Problems) -> None:
    for name, (owner, cls) in rt.host.collect_factor_types().items():
        try:
            rt.factor_types[name] = cls(rt.otp)
        except Exception as exc:  # noqa: BLE001 - a factor type that cannot start is a configuration problem
            problems.add(f"factor type {name}", f"plugin {owner} failed to start it: {type(exc).__name__}: {exc}")


def _channels(rt: Runtime) -> dict[str, ChannelDef]:
    """Every transport with every payload it supports (each a delivered factor of the ``code`` or ``link``
    type), then each factor type that is not delivered (``totp``, a third party's), under its own name."""
    channels: dict[str, ChannelDef] = {}
    code_type, link_type = rt.factor_types.get("code"), rt.factor_types.get("link")
    for transport in rt.transports.values():
        for payload in rt.payloads.values():
            if payload.supports(transport):
                name = f"{transport.name}:{payload.name}"
                label = transport.label if payload.name == "code" else f"{transport.label} ({payload.label})"
                delivered = code_type if payload.entered_as_code else link_type
                channels[name] = ChannelDef(name, label, transport, payload,
                                            delivered if delivered is not None and delivered.delivers else None)
    for name, factor_type in rt.factor_types.items():
        if not factor_type.delivers:
            channels[name] = ChannelDef(name, factor_type.label or name, None, None, factor_type)
    return channels


def _check_channels(rt: Runtime, problems: Problems) -> None:
    known = ", ".join(rt.channels)

    def check(key: str, name: str | None) -> None:
        if name is not None and name not in rt.channels:
            problems.add(key, f"unknown channel {name!r} (available: {known})")

    s = rt.settings
    site = s.channels if s.channels is not None else rt.registered_channels
    if s.channels is not None:
        for name in s.channels:
            check("channels", name)
    if s.mode != "hidden" and s.default_channel not in rt.channels:
        check("default_channel", s.default_channel)
    for role in s.roles.values():
        for name in role.channels or ():
            check(f"roles.{role.name}.channels", name)
        check(f"roles.{role.name}.default_channel", role.default_channel)
    if s.channels is not None and not site:
        problems.add("channels", "must list at least one channel")


def _prepare_database(rt: Runtime, migrate_database: bool | None) -> None:
    if migrate_database is False:
        return
    db = rt.db
    has_tables = db.has_tables()
    if migrate_database or (db.is_sqlite and not has_tables):
        migrate.upgrade(db.engine)
        return
    if db.is_sqlite:
        if migrate.current_revision(db.engine) != migrate.head_revision():
            migrate.upgrade(db.engine)
        return
    if not has_tables:
        raise ConfigurationError(
            "the database has no otp-pro tables yet: run `otp-pro db upgrade`", key="database_url"
        )
    # A shared database is never migrated by an instance (several would race): one that is behind
    # this code is refused. One ahead of it (a rolling deploy's newer instances migrated it) is
    # accepted: a migration that only adds leaves older code working on a newer schema (one that
    # does not, such as 0005, has its older instances stopped first: docs/deployment.md).
    current = migrate.current_revision(db.engine)
    if current != migrate.head_revision() and current in migrate.known_revisions():
        raise ConfigurationError(
            f"the database schema is at revision {current}, this otp-pro-core needs "
            f"{migrate.head_revision()}: run `otp-pro db upgrade`", key="database_url"
        )


def _startup_checks(rt: Runtime) -> None:
    """Call every ``otp_pro_startup`` hook; their problems (and their exceptions) fail start-up together."""
    problems = Problems()
    answers, failures = rt.host.call_collecting("otp_pro_startup", otp=rt.otp)
    for failure in failures:
        problems.add(f"plugin {failure.plugin}",
                     f"failed at start-up: {type(failure.error).__name__}: {failure.error}")
    for answer in answers:
        found: Any = answer.value
        if isinstance(found, str) or not isinstance(found, Iterable):
            found = [str(found)]
        for problem in found:
            key, _, message = str(problem).partition(": ")
            problems.add(key if message else f"plugin {answer.plugin}", message or str(problem))
    if problems.items:
        rt.db.dispose()
    problems.raise_if_any("start-up checks failed")


def close(rt: Runtime) -> None:
    """Release database connections and whatever the transports and the dispatcher hold."""
    try:
        rt.dispatcher.close()
    except Exception as exc:  # noqa: BLE001 - closing must go on for the others
        log.warning("otp-pro dispatcher %s failed to close: %s", rt.dispatcher.name, type(exc).__name__)
    for transport in rt.transports.values():
        try:
            transport.close()
        except Exception as exc:  # noqa: BLE001 - closing must go on for the others
            log.warning("otp-pro transport %s failed to close: %s", transport.name, type(exc).__name__)
    rt.db.dispose()


def redacted_settings(rt: Runtime) -> dict[str, Any]:
    """The effective settings with secrets shown as ``'********'``, providers as validated."""
    out = rt.settings.redacted()
    started: dict[str, Transport | Payload] = {**rt.transports, **rt.payloads}
    out["providers"] = {name: p.config.redacted() for name, p in started.items()}
    out["providers"].update({name: config.redacted() for name, config in rt.plugin_settings.items()})
    return out
