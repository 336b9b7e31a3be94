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

__all__ = ["KEEP", "Reader", "Readers"]

#: Idle connections kept open (SQLAlchemy's default pool size); more are closed when given back.
KEEP = 5

#: A reader: a cursor kept on its own connection (``reader.connection``).
Reader = psycopg.Cursor[Any]


class Readers:
    """Readers on connections opened by ``connect`` (autocommit, as every read expects),
    reused while they are sound."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], keep: int = KEEP) -> None:
        self._connect = connect
        self._keep = keep
        self._idle: list[Reader] = []
        self._lock = threading.Lock()
        self._closed = False

    def take(self) -> Reader:
        """An idle reader, else a new one (the caller's to give back)."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._connect().cursor()

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
                return
            closing = [reader]
            if conn.broken:
                closing += self._idle
                self._idle = []
        _close(closing)

    def close(self) -> None:
        """Close the idle readers; one still reading is closed when it is given back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        _close(idle)


def _close(readers: list[Reader]) -> None:
    for reader in readers:
        reader.connection.close()
