"""The PostgreSQL store's reader connections: autocommit psycopg connections it holds itself.

A read of one statement (``get_metric``, ``latest``, ``best``, a history, a page…) needs no
transaction and no SQLAlchemy: it takes an idle connection from here (or opens one), runs
its statement on psycopg's cursor and gives the connection back. Taking and giving back are
a list's ``pop`` and ``append`` under a lock: a SQLAlchemy pool's checkout and checkin (with
its reset) cost more CPU than the read's own round trip. Each concurrent read has its own
connection; up to :data:`KEEP` stay open between reads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

__all__ = ["KEEP", "Readers"]

#: Idle connections kept open (SQLAlchemy's default pool size); more are closed when given back.
KEEP = 5

Conn = psycopg.Connection[Any]


class Readers:
    """Connections opened by ``connect`` (autocommit, as every read expects), reused while
    they are sound."""

    def __init__(self, connect: Callable[[], Conn], keep: int = KEEP) -> None:
        self._connect = connect
        self._keep = keep
        self._idle: list[Conn] = []
        self._lock = threading.Lock()
        self._closed = False

    def take(self) -> Conn:
        """An idle connection, else a new one (the caller's to give back)."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def give_back(self, conn: Conn, cut: bool) -> None:
        """Keep ``conn`` for the next read if it is sound: not ``cut`` by the watchdog, and
        idle (no statement left in flight, not broken). A broken one closes the idle ones
        too: they were opened before it broke, most likely to the same server that went
        away (a restart), and each would fail one read before being dropped."""
        sound = not cut and conn.pgconn.transaction_status == TransactionStatus.IDLE
        with self._lock:
            if sound and not self._closed and len(self._idle) < self._keep:
                self._idle.append(conn)
                return
            closing = [conn]
            if conn.broken:
                closing += self._idle
                self._idle = []
        _close(closing)

    def close(self) -> None:
        """Close the idle connections; one still reading is closed when it is given back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        _close(idle)


def _close(connections: list[Conn]) -> None:
    for conn in connections:
        conn.close()
