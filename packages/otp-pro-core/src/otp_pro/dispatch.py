"""Delivery dispatchers: how a rendered message leaves the request.

The ``dispatcher`` setting names one. ``inline`` (the default, registered here)
sends through the transport inside the request. A queue
dispatcher (``celery``, in :mod:`otp_pro.celery`) has ``queued = True``: the core
then renders the message in the request, stores it *encrypted* on the challenge
row with the status ``queued``, and hands the dispatcher only the challenge id.
A worker calls :meth:`OtpPro.deliver_queued` with that id, which claims the row
with one conditional UPDATE (so a duplicated or retried task never sends twice),
sends, and records the outcome. Nothing secret ever travels through the broker.

Dispatchers are registered through the ``otp_pro_register_dispatchers`` hook,
like transports; only the one the setting names is instantiated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import PluginError
from .hookcall import OnError, calling_plugin
from .hookspecs import hookimpl

if TYPE_CHECKING:
    from .core import OtpPro
    from .plugins import PluginHost
    from .settings import Problems

INLINE = "inline"


class Dispatcher:
    """Base class of dispatchers. Subclass, set ``name``, implement :meth:`enqueue`.

    ``queued`` is true for a dispatcher that hands delivery to a worker (the
    core then stores the message encrypted and calls :meth:`enqueue` after the
    challenge is committed); ``inline`` sets it false and is never asked to
    enqueue. The constructor receives the :class:`~otp_pro.OtpPro` instance; raise
    :class:`~otp_pro.errors.ConfigurationError` naming the fix when something
    the dispatcher needs is missing (a package, a setting).
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    queued: ClassVar[bool] = True

    def __init__(self, otp: OtpPro):
        self.otp = otp

    def enqueue(self, challenge_id: int) -> None:
        """Hand the delivery of challenge ``challenge_id`` to a worker.

        Carry the id only: the worker calls ``otp.deliver_queued(challenge_id)``.
        Raise any exception when the queue cannot take it; the core then marks
        the challenge failed (``error_code = "enqueue"``) and tells the member.
        """
        raise NotImplementedError

    def check(self) -> list[str]:
        """Configuration problems, each ``"<key>: <problem>"`` (empty when fine)."""
        return []

    def close(self) -> None:
        """Release what the dispatcher holds (broker connections). Called by ``OtpPro.close``."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class InlineDispatcher(Dispatcher):
    """Send inside the request (the default): the member's page waits for the transport."""

    name = INLINE
    label = "Inline (in the request)"
    queued = False

    def enqueue(self, challenge_id: int) -> None:  # pragma: no cover - the core never asks it
        raise RuntimeError("the inline dispatcher does not queue")


@dataclass(frozen=True)
class QueuedDelivery:
    """What :meth:`OtpPro.deliver_queued` did with one challenge.

    ``action`` is ``sent``; ``retry`` (a transient failure: the row is queued
    again, call again after ``retry_after`` seconds); ``failed`` (permanent, or
    the attempts are used up, or the challenge expired while queued); or
    ``skipped`` (the row was not ``queued``: already sent, sending, replaced or
    failed; a duplicated or late task does nothing).
    """

    action: str
    challenge_id: int
    attempts: int = 0
    retry_after: float | None = None
    error_code: str | None = None


def collect(host: PluginHost) -> dict[str, tuple[str, type[Dispatcher]]]:
    """Every registered dispatcher class by name, with the plugin that registered it."""
    from .plugins import Registry  # here: ``import otp_pro`` imports this module and must stay light

    registry = Registry()

    def register(cls: object) -> None:
        if not isinstance(cls, type) or not issubclass(cls, Dispatcher) or not getattr(cls, "name", ""):
            owner = calling_plugin()
            raise PluginError(f"plugin {owner} registered {cls!r}, which is not a named Dispatcher subclass",
                              plugin=owner)
        registry.claim("dispatcher", cls.name, cls)

    host.call("otp_pro_register_dispatchers", OnError.SKIP, register=register)
    host.refused(registry.settle(host.rank))
    return registry.of_kind("dispatcher")


def build(otp: OtpPro, problems: Problems) -> Dispatcher:
    """The dispatcher the ``dispatcher`` setting names, started; problems are added to ``problems``."""
    from .errors import ConfigurationError

    name = otp.settings.dispatcher
    found = collect(otp.host)
    if name not in found:
        installed = ", ".join(sorted(found)) or "none"
        hint = " (install it with: pip install 'otp-pro-core[celery]')" if name == "celery" else ""
        problems.add("dispatcher", f"no installed plugin provides the dispatcher {name!r} "
                                   f"(installed: {installed}){hint}")
        return InlineDispatcher(otp)
    owner, cls = found[name]
    try:
        dispatcher = cls(otp)
    except ConfigurationError as exc:
        problems.add(exc.key or "dispatcher", str(exc).partition(": ")[2] if exc.key and str(exc).startswith(
            f"{exc.key}: ") else str(exc))
        return InlineDispatcher(otp)
    except Exception as exc:  # noqa: BLE001 - a dispatcher that cannot start is a configuration problem
        problems.add("dispatcher", f"plugin {owner} failed to start dispatcher {name!r}: {type(exc).__name__}: {exc}")
        return InlineDispatcher(otp)
    for problem in dispatcher.check():
        key, _, message = problem.partition(": ")
        problems.add(key if message else "dispatcher", message or problem)
    return dispatcher


@hookimpl
def otp_pro_register_dispatchers(register: Callable[[type[Dispatcher]], Any]) -> None:
    """The built-in ``inline`` dispatcher."""
    register(InlineDispatcher)


__all__ = ["INLINE", "Dispatcher", "InlineDispatcher", "QueuedDelivery", "build", "collect"]
