"""A bound on how long any operation waits for a database server that does not answer.

libpq's ``connect_timeout`` bounds opening a connection, and ``tcp_user_timeout`` a peer
that stops acknowledging packets; neither helps when the server's machine acknowledges
everything but the server itself answers nothing (a stopped, swapping or deadlocked
postmaster: its kernel keeps the TCP connection alive). psycopg then waits for an answer
forever. The watchdog bounds the whole operation instead: one thread per store keeps the
deadline of every operation in flight and, past it, cuts it (``cut``: usually
:func:`cut_socket` on the connection's socket), so the waiting call returns at once with
the driver's "server closed the connection" error, which the store reports as a timeout.
The connection is then discarded, never reused. Used by the SQL backend (one connection per
operation, known up front) and the MLflow backend (MLflow's own pool picks the connection:
the cut finds it), through :mod:`trackplug.plugin`.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from collections.abc import Callable

__all__ = ["Watch", "Watchdog", "cut_socket"]


class Watchdog:
    """Cuts an operation still running ``timeout`` seconds after it began."""

    def __init__(self, timeout: float, name: str = "trackplug watchdog") -> None:
        self.timeout = timeout
        self._name = name
        # Arming and disarming take the lock itself: Condition's ``with`` is a Python call.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        # token -> (deadline, what cuts the operation)
        self._deadlines: dict[int, tuple[float, Callable[[], None]]] = {}
        self._fired: set[int] = set()
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def watch(self, cut: Callable[[], None]) -> Watch:
        """Bound a ``with`` block: past the deadline the watchdog's thread calls ``cut``
        (which must not raise), which makes the block's wait end; the :class:`Watch` says,
        within the block, whether it did."""
        return Watch(self, next(self._tokens), cut)

    def _arm(self, watch: Watch) -> None:
        with self._lock:
            # No notify: the thread wakes at the latest ``timeout`` after it went to sleep
            # (sooner for an earlier deadline), never after this deadline. Waking it on every
            # watch cost a thread switch per operation, more than a small read itself.
            self._deadlines[watch.token] = (time.monotonic() + self.timeout, watch.cut)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def _disarm(self, watch: Watch) -> None:
        with self._lock:
            self._deadlines.pop(watch.token, None)
            self._fired.discard(watch.token)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._stopped:
                now = time.monotonic()
                for token, (deadline, cut) in list(self._deadlines.items()):
                    if deadline <= now:
                        del self._deadlines[token]
                        self._fired.add(token)
                        cut()
                upcoming = [deadline for deadline, _ in self._deadlines.values()]
                self._cond.wait(min(upcoming) - now if upcoming else self.timeout)


class Watch:
    """One watched operation, a context manager (a class, not a generator: it bounds reads
    of ~100 µs, and a generator's ``with`` costs several µs of it)."""

    __slots__ = ("_watchdog", "cut", "token")

    def __init__(self, watchdog: Watchdog, token: int, cut: Callable[[], None]) -> None:
        self.token = token
        self.cut = cut
        self._watchdog = watchdog

    def __enter__(self) -> Watch:
        self._watchdog._arm(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._watchdog._disarm(self)

    @property
    def fired(self) -> bool:
        """Whether the deadline passed and the connection was cut (forgotten on leaving)."""
        return self.token in self._watchdog._fired


def cut_socket(fd: int) -> None:
    """Shut the socket down for both directions: a read waiting on it returns at once.
    Through a duplicate descriptor, so the connection's own stays valid until it closes."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:  # already closed: nothing waits on it
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()
