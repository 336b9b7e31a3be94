"""The PostgreSQL store's reader connections: autocommit psycopg connections it holds itself.

A read of one statement (``get_metric``, ``latest``, ``best``, a history, a page…) needs no
transaction and no SQLAlchemy: it takes an idle reader from here (or opens one), runs its
statement and gives the reader back. Taking and giving back are a list's ``pop`` and
``append`` under a lock: a SQLAlchemy pool's checkout and checkin (with its reset) cost more
CPU than the read's own round trip. A reader is a cursor kept on its connection: psycopg's
``Connection.execute`` builds a cursor (and its adapters' map) per statement, ~30 µs of a
small read's ~100 µs of CPU. Each concurrent read has its own reader; up to :data:`KEEP`
stay open between reads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from trackplug import BackendError

__all__ = ["KEEP", "LIMIT", "Reader", "Readers"]

#: Idle connections kept open (SQLAlchemy's default pool size); more are closed when given back.
KEEP = 5
#: Connections open at once, idle or reading (SQLAlchemy's default pool: 5 + 10 overflow):
#: a cap of the store's own, so that many threads cannot exhaust the server's max_connections.
LIMIT = 15

#: A reader: a cursor kept on its own connection (``reader.connection``).
Reader = psycopg.Cursor[Any]


class Readers:
    """Readers on connections opened by ``connect`` (autocommit, as every read expects),
    reused while they are sound: at most ``limit`` connections open, a read beyond them
    waiting up to ``wait`` seconds for one; ``what`` (no password) names the store in the
    error of a read that waited in vain."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]],
        what: str,
        wait: float,
        limit: int = LIMIT,
        keep: int = KEEP,
    ) -> None:
        self._connect = connect
        self._what = what
        self._wait = wait
        self._limit = limit
        self._keep = min(keep, limit)
        self._idle: list[Reader] = []
        self._open = 0  # connections open or opening: taken ones and idle ones
        self._waiting = 0  # reads waiting in take(): told when a reader or a slot is free
        self._lock = threading.Lock()
        # On the same lock: the no-contention path takes the lock alone (a Condition's
        # ``with`` is a Python call), and only a read finding none free waits on it.
        self._freed = threading.Condition(self._lock)
        self._closed = False

    def take(self) -> Reader:
        """An idle reader, else a new one while fewer than ``limit`` are open, else the
        first given back (or whose slot is freed) within ``wait`` seconds (the caller's to
        give back)."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
            if self._open >= self._limit:
                self._await_free()
                if self._idle:
                    return self._idle.pop()
            self._open += 1
        try:
            return self._connect().cursor()
        except BaseException:
            self._release(1)  # a connection that failed to open holds no slot
            raise

    def _await_free(self) -> None:
        """Under the lock: wait for an idle reader or a free slot, or fail after ``wait``."""
        self._waiting += 1
        try:
            free = self._freed.wait_for(lambda: self._idle or self._open < self._limit, self._wait)
        finally:
            self._waiting -= 1
        if not free:
            raise BackendError(
                f"{self._what}: all {self._limit} read connections stayed busy for "
                f"{self._wait:g} s (more concurrent reads than the store's {self._limit} "
                f"connections, or reads that do not end)"
            )

    def _release(self, slots: int) -> None:
        with self._lock:
            self._forget(slots)

    def _forget(self, slots: int) -> None:
        """Under the lock: ``slots`` connections closed (or never opened): as many free."""
        self._open -= slots
        self._notify(slots)

    def _notify(self, freed: int) -> None:
        """Under the lock: tell up to ``freed`` waiting reads; with none waiting (the usual
        case) the Condition is not called."""
        if self._waiting:
            self._freed.notify(freed)

    def give_back(self, reader: Reader, cut: bool) -> None:
        """Keep ``reader`` for the next read if it is sound: not ``cut`` by the watchdog, and
        its connection idle (no statement left in flight, not broken). A broken one closes
        the idle ones too: they were opened before it broke, most likely to the same server
        that went away (a restart), and each would fail one read before being dropped."""
        conn = reader.connection
        sound = not cut and conn.pgconn.transaction_status == TransactionStatus.IDLE
        with self._lock:
            if sound and not self._closed and len(self._idle) < self._keep:
                self._idle.append(reader)
                self._notify(1)
                return
            closing = [reader]
            if conn.broken:
                closing += self._idle
                self._idle = []
            self._forget(len(closing))
        _close(closing)

    def close(self) -> None:
        """Close the idle readers; one still reading is closed when it is given back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._forget(len(idle))
        _close(idle)


def _close(readers: list[Reader]) -> None:
    for reader in readers:
        reader.connection.close()
