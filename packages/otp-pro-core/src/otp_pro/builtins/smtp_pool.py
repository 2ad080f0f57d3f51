"""SMTP sessions kept open between sends: a small pool per ``email`` transport (and so per process).

Opening a session costs a TCP connect, the greeting, ``EHLO``, maybe a TLS handshake
and ``AUTH``; sending one message on an open session costs ``MAIL``, ``RCPT`` and
``DATA``. :class:`SmtpPool` keeps up to ``size`` idle sessions:

- **reuse**: :meth:`SmtpPool.checkout` hands out the most recently used idle session
  (the least likely to have been dropped by the server), after a ``NOOP`` when it
  has been idle for ``check_after`` seconds or more; one that fails the ``NOOP`` is
  thrown away (nothing was being sent on it);
- **bounds**: a session older than ``max_age`` seconds, or that carried
  ``max_messages``, is ended with ``QUIT`` instead of being kept;
- **threads**: a session is used by one thread at a time (checked out, then checked
  in); the lock guards only the list of idle sessions, never network I/O. A send
  that finds no idle session opens its own, so threads never wait for each other;
  what comes back beyond ``size`` is closed;
- **fork**: a forked child must never write to its parent's sockets (both would speak
  on one SMTP session). Every session records the pid that opened it; in a child
  (:func:`os.register_at_fork`, and a pid check on every checkout and check-in) the
  pool forgets the parent's sessions without a ``QUIT`` (that would end the parent's
  session) and starts empty;
- **close**: :meth:`SmtpPool.close` (from ``OtpPro.close``) ends every idle session;
  a session checked in afterwards is ended too.

Whether a failed send may be retried on a new session is the transport's decision
(``email.py``): the pool only hands sessions out and takes them back.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any


class Session:
    """One open SMTP session: its ``smtplib`` client, when it was opened and last used, its messages, its pid."""

    __slots__ = ("client", "last_used", "messages", "opened", "pid")

    def __init__(self, client: smtplib.SMTP, now: float) -> None:
        self.client = client
        self.opened = now
        self.last_used = now
        self.messages = 0
        self.pid = os.getpid()


def end(session: Session, *, polite: bool) -> None:
    """Close ``session``: with ``QUIT`` first when ``polite`` (and the session is this process's).

    The ``QUIT`` is sent, not waited for: a session is ended on a member's send (too old,
    enough messages), and a server that vanished without closing the connection would
    hold that send for the whole read timeout before its answer failed to come.
    """
    client = session.client
    if polite and session.pid == os.getpid():
        try:
            client.putcmd("quit")
        except (OSError, smtplib.SMTPException):  # a session that ends badly is ended all the same
            pass
    if session.pid == os.getpid():
        client.close()
    else:
        # The parent's session: drop the client without touching the socket's state (close() of a
        # TLS socket could send close_notify on the parent's TLS session). The file descriptor is
        # this process's copy, closed when the object is collected; the parent's stays open.
        client.sock = None
        client.file = None


#: Every live pool, emptied in a forked child before any of the child's code runs.
_POOLS: weakref.WeakSet[SmtpPool] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for pool in list(_POOLS):
        pool._forget_parent()


os.register_at_fork(after_in_child=_after_fork_in_child)


class SmtpPool:
    """Idle SMTP sessions of one transport, reused across sends and threads (see the module docstring)."""

    def __init__(self, size: int, max_age: float, max_messages: int, check_after: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self.max_age = max_age
        self.max_messages = max_messages
        self.check_after = check_after
        self._clock = clock
        self._lock = threading.Lock()
        self._idle: list[Session] = []
        self._pid = os.getpid()
        self._closed = False
        #: Sessions opened and reused through this pool since it was made (what tests and benchmarks read).
        self.opened = 0
        self.reused = 0
        _POOLS.add(self)

    def _forget_parent(self) -> None:
        """In a forked child: the idle sessions are the parent's; drop them and start over."""
        parents, self._idle = self._idle, []
        self._lock = threading.Lock()  # the parent may have held it at the fork
        self._pid = os.getpid()
        for session in parents:
            end(session, polite=False)

    def checkout(self, watch: Callable[[Any], None] | None = None) -> Session | None:
        """An idle session fit for a message, or None (then the caller opens one: :meth:`adopt`).

        ``watch`` is called with a session's client before the ``NOOP`` that checks it, so the
        caller's deadline can cut a check that hangs.
        """
        if self._pid != os.getpid():
            self._forget_parent()
        while True:
            with self._lock:
                if not self._idle:
                    return None
                session = self._idle.pop()
            now = self._clock()
            if now - session.opened >= self.max_age or session.messages >= self.max_messages:
                end(session, polite=True)
                continue
            if now - session.last_used >= self.check_after:
                if watch is not None:
                    watch(session.client)
                try:
                    healthy = session.client.noop()[0] == 250
                except (OSError, smtplib.SMTPException):
                    healthy = False
                if not healthy:  # dropped while idle: nothing was being sent, so nothing is lost
                    end(session, polite=False)
                    continue
            self.reused += 1
            return session

    def adopt(self, client: smtplib.SMTP) -> Session:
        """A session for ``client``, freshly opened by the caller (checked in after its message)."""
        self.opened += 1
        return Session(client, self._clock())

    def checkin(self, session: Session) -> None:
        """``session`` carried its message and is fit for another: keep it, or end it when it is done."""
        session.messages += 1
        now = session.last_used = self._clock()
        if session.pid != os.getpid():
            end(session, polite=False)
            return
        if now - session.opened < self.max_age and session.messages < self.max_messages:
            with self._lock:
                if not self._closed and len(self._idle) < self.size and self._pid == session.pid:
                    self._idle.append(session)
                    return
        end(session, polite=True)

    def discard(self, session: Session) -> None:
        """``session`` failed: close it without a ``QUIT`` (its state is unknown)."""
        end(session, polite=False)

    def close(self) -> None:
        """End every idle session with ``QUIT``; sessions checked in later are ended too."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for session in idle:
            end(session, polite=True)

    def __len__(self) -> int:
        """The number of idle sessions."""
        return len(self._idle)

    def __repr__(self) -> str:
        return (f"<SmtpPool idle={len(self._idle)} size={self.size} opened={self.opened} reused={self.reused}"
                f"{' closed' if self._closed else ''}>")


_FQDN: str | None = None


def _local_hostname() -> str:
    """The name this host gives in ``EHLO``: smtplib asks ``socket.getfqdn()`` (a DNS lookup) per client; once here."""
    global _FQDN
    if _FQDN is None:
        import socket

        _FQDN = socket.getfqdn()
    return _FQDN


class _ReportsSocket:
    """Mixed into an ``smtplib`` client: reports its socket as soon as it is connected (a deadline can then
    shut it)."""

    on_socket: Callable[[Any], None] | None = None

    def _get_socket(self, host: str, port: int, timeout: float) -> Any:
        sock = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        if self.on_socket is not None:
            self.on_socket(sock)
        return sock


class _Client(_ReportsSocket, smtplib.SMTP):
    """``smtplib.SMTP`` that reports its socket."""


class _TlsClient(_ReportsSocket, smtplib.SMTP_SSL):
    """``smtplib.SMTP_SSL`` (implicit TLS) that reports its socket."""


def new_client(host: str, timeout: float, tls: ssl.SSLContext | None,
               on_socket: Callable[[Any], None]) -> smtplib.SMTP:
    """A client for ``host``, not connected yet (``connect`` is the caller's): implicit TLS with ``tls``, else plain."""
    made: _Client | _TlsClient
    if tls is not None:
        made = _TlsClient(local_hostname=_local_hostname(), timeout=timeout, context=tls)
    else:
        made = _Client(local_hostname=_local_hostname(), timeout=timeout)
    made.on_socket = on_socket
    client: smtplib.SMTP = made
    # smtplib sets this only when the constructor connects; TLS (implicit or STARTTLS) checks the
    # certificate against it.
    client._host = host  # type: ignore[attr-defined]
    return client
