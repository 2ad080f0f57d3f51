"""The ``celery`` dispatcher: delivery as a Celery task (``pip install 'otp-pro-core[celery]'``).

Set ``dispatcher = "celery"`` and, if the defaults do not fit, ``[providers.celery]``
``broker_url`` and ``queue``. The request renders the message, stores it encrypted on
the challenge row (status ``queued``) and enqueues the task ``otp_pro.deliver`` with
the challenge id as its only argument: no code, link, address or message body
ever reaches the broker. Run a worker with the same settings file::

    OTP_PRO_CONFIG=/etc/otp-pro.toml celery -A otp_pro.celery worker -Q otp_pro

or, to run the task in an existing Celery application, ``otp.dispatcher.bind(app)``.

The worker claims the row with a conditional UPDATE (``queued`` -> ``sending``), so
a task delivered twice (a broker redelivery, a retry racing a duplicate) sends
once; a transient provider error puts the row back to ``queued`` and the task
retries with exponential backoff (``delivery_retry_backoff_seconds``, doubled
each time) until ``delivery_max_attempts``. A worker that dies in the middle of a
send leaves the row ``sending``: it is never sent again (at most once), and the
member sees it as failed when the code's lifetime ends and may ask again.

Importing this module does not import Celery: plugin discovery stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .dispatch import Dispatcher
from .errors import ConfigurationError, StorageError
from .hookspecs import hookimpl
from .settings import Setting

if TYPE_CHECKING:
    from .core import OtpPro

NAME = "celery"
TASK_NAME = "otp_pro.deliver"
INSTALL_HINT = "pip install 'otp-pro-core[celery]'"

SETTINGS: tuple[Setting, ...] = (
    Setting("broker_url", str, "redis://127.0.0.1:6379/0", "Celery broker URL (may hold a password)", secret=True),
    Setting("queue", str, "otp_pro", "queue the delivery tasks go to (run a worker with -Q <queue>)"),
    Setting("enqueue_timeout_seconds", float, 3.0, "how long a request waits for the broker before the delivery "
            "is failed", minimum=0.1, maximum=60),
)


def _require_celery() -> Any:
    try:
        import celery  # type: ignore[import-untyped]  # celery ships no type information
    except ImportError:
        raise ConfigurationError(
            f"dispatcher: the celery dispatcher needs the celery package: {INSTALL_HINT}", key="dispatcher"
        ) from None
    return celery


class CeleryDispatcher(Dispatcher):
    """Enqueue each delivery as the Celery task ``otp_pro.deliver`` (argument: the challenge id)."""

    name = NAME
    label = "Celery task queue"
    queued = True

    def __init__(self, otp: OtpPro):
        super().__init__(otp)
        celery = _require_celery()
        config = otp.plugin_settings[NAME]
        self.queue = str(config["queue"])
        self.timeout = float(config["enqueue_timeout_seconds"])
        app = celery.Celery("otp_pro", broker=config.secret("broker_url"), set_as_current=False)
        app.conf.update(
            task_serializer="json", accept_content=["json"], task_ignore_result=True, result_backend=None,
            task_default_queue=self.queue,
            # Acknowledge after the task ran: a worker killed before its claim leaves the message to be
            # redelivered (the row is still queued); one killed after the claim finds the row "sending"
            # on redelivery and does nothing. Delivery is at most once either way.
            task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
            broker_connection_retry_on_startup=True,
            broker_transport_options={"socket_connect_timeout": self.timeout, "socket_timeout": self.timeout},
        )
        self.app = app
        self.task = self.bind(app)

    def bind(self, app: Any) -> Any:
        """Register the delivery task on the Celery application ``app`` (yours, or the dispatcher's own)."""
        otp = self.otp

        # shared=False: a task of this instance only (a shared task would reach the first OtpPro ever built).
        @app.task(name=TASK_NAME, bind=True, max_retries=None, acks_late=True, ignore_result=True, shared=False)
        def deliver(task: Any, challenge_id: int) -> str:
            try:
                outcome = otp.deliver_queued(int(challenge_id))
            except StorageError:
                # The database is away: nothing was claimed (the claim rolled back, the row is still
                # queued) or the claim's answer was lost (the row is "sending": the retry skips it).
                # Bounded by the code's lifetime: after it, the row would only be failed as expired.
                wait = max(1.0, otp.settings.delivery_retry_backoff_seconds)
                raise task.retry(countdown=wait, max_retries=int(otp.settings.code_ttl_seconds / wait) + 1) from None
            if outcome.action == "retry":
                # The attempt counter on the row, not Celery's, bounds the retries.
                raise task.retry(countdown=outcome.retry_after, max_retries=None)
            return outcome.action

        self.app = app
        self.task = deliver
        return deliver

    def enqueue(self, challenge_id: int) -> None:
        """Send the task (the challenge id only) to the broker; raises when the broker cannot take it."""
        self.task.apply_async(
            args=(int(challenge_id),), queue=self.queue, retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2},
        )

    def close(self) -> None:
        try:
            self.app.close()
        except Exception:  # noqa: BLE001 - closing a broker pool must not stop OtpPro.close
            pass


def worker_app(otp: OtpPro) -> Any:
    """The Celery application of ``otp`` (whose ``dispatcher`` setting must be ``celery``), for a worker."""
    if not isinstance(otp.dispatcher, CeleryDispatcher):
        raise ConfigurationError(f"dispatcher: the settings use {otp.settings.dispatcher!r}, not 'celery'",
                                 key="dispatcher")
    return otp.dispatcher.app


def __getattr__(name: str) -> Any:
    """``celery -A otp_pro.celery worker``: the application of the settings in ``$OTP_PRO_CONFIG``."""
    if name not in ("app", "celery"):
        raise AttributeError(f"module 'otp_pro.celery' has no attribute {name!r}")
    from .core import OtpPro

    path = os.environ.get("OTP_PRO_CONFIG", "otp-pro.toml")
    value = worker_app(OtpPro.from_file(path))
    globals()[name] = value
    return value


@hookimpl
def otp_pro_register_settings(register: Callable[[str, Any], None]) -> None:
    """``[providers.celery]``: broker URL, queue name and enqueue timeout."""
    register(NAME, SETTINGS)


@hookimpl
def otp_pro_register_dispatchers(register: Callable[[type[Dispatcher]], None]) -> None:
    """The ``celery`` dispatcher (Celery itself is imported only when the setting picks it)."""
    register(CeleryDispatcher)


__all__ = ["TASK_NAME", "CeleryDispatcher", "worker_app"]
