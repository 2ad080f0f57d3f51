"""The deadline of one SMTP send: past it, the session's socket is shut down, which wakes the read that waits.

``smtp_timeout_seconds`` bounds each read; a server that answers a byte at a time
could still hold a send for ever, so the whole send (a retry included) has a
deadline too. Deadlines are watched by one daemon thread per process
(:class:`_Watchdog`) holding a heap of them; a send only pushes its deadline on the
heap and marks it done at the end. A ``threading.Timer`` per send did the same with
a thread started and stopped per message, which costs about as much as handing a
message to a server over an open connection.
"""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time
from typing import Any


class Deadline:
    """One send's deadline: ``expired`` is set, and the session's socket shut down, ``seconds`` after it was made."""

    __slots__ = ("_lock", "_socket", "cancelled", "client", "expired", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = threading.Event()
        self.cancelled = False
        self._lock = threading.Lock()  # expire() and cancel() exclude each other: see cancel()
        self.client: Any = None  # the smtplib client in use: its socket changes with STARTTLS
        self._socket: Any = None  # the socket it connected with, before the client is known
        _watchdog().add(time.monotonic() + seconds, self)

    def watch(self, client: Any) -> None:
        """``client`` is the session the send uses now (a pooled one, or one being opened)."""
        self.client = client

    def saw_socket(self, sock: Any) -> None:
        """A new session's socket, as soon as it is connected (before the greeting is read)."""
        self._socket = sock
        if self.expired.is_set():  # expired while connecting
            _shut(sock)

    def expire(self) -> None:
        """Called by the watchdog when the deadline passes; does nothing once :meth:`cancel` was called."""
        with self._lock:
            if self.cancelled:
                return
            self.expired.set()
            current = getattr(self.client, "sock", None)
            _shut(current if current is not None else self._socket)

    def cancel(self) -> None:
        """The send is over: from now on the session's socket is left alone (it may go back to the pool).

        Returns after an :meth:`expire` running in the watchdog has finished, so ``expired``
        then says for certain whether the socket was shut down.
        """
        with self._lock:
            self.cancelled = True


def _shut(sock: Any) -> None:
    if sock is None:
        return
    try:
        # The plain socket call, also on a TLS socket: the TLS state stays with the reader.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:  # already closed
        pass


class _Watchdog:
    """A daemon thread that expires deadlines in time order; cancelled ones are dropped when they come up."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._thread = threading.Thread(target=self._run, name="otp-pro-smtp-deadlines", daemon=True)
        self._thread.start()

    def add(self, when: float, deadline: Deadline) -> None:
        with self._cond:
            heapq.heappush(self._heap, (when, next(self._order), deadline))
            if self._heap[0][2] is deadline:  # sooner than all the others: the thread must wake earlier
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                due = self._next_due()
            if not due.cancelled:
                due.expire()

    def _next_due(self) -> Deadline:
        while True:
            while self._heap and self._heap[0][2].cancelled:
                heapq.heappop(self._heap)
            if not self._heap:
                self._cond.wait()
                continue
            wait = self._heap[0][0] - time.monotonic()
            if wait <= 0:
                return heapq.heappop(self._heap)[2]
            self._cond.wait(wait)


_WATCHDOG: _Watchdog | None = None
_WATCHDOG_LOCK = threading.Lock()


def _watchdog() -> _Watchdog:
    global _WATCHDOG
    watchdog = _WATCHDOG
    if watchdog is None or watchdog.pid != os.getpid():  # none yet, or the parent's (its thread is not here)
        with _WATCHDOG_LOCK:
            if _WATCHDOG is None or _WATCHDOG.pid != os.getpid():
                _WATCHDOG = _Watchdog()
            watchdog = _WATCHDOG
    return watchdog


def _after_fork_in_child() -> None:
    global _WATCHDOG, _WATCHDOG_LOCK
    _WATCHDOG = None  # the parent's thread does not exist here; the first send starts this process's own
    _WATCHDOG_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
