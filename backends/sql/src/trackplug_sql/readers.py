"""The PostgreSQL store's reader connections: autocommit psycopg connections it holds itself.

A read of one statement (``get_metric``, ``latest``, ``best``, a history, a page…) needs no
transaction and no SQLAlchemy: it takes an idle reader from here (or opens one), runs its
statement and gives the reader back. Taking and giving back are a list's ``pop`` and
``append`` under a lock: a SQLAlchemy pool's checkout and checkin (with its reset) cost more
CPU than the read's own round trip. A :class:`Reader` runs a small read's statement
prepared on its connection through psycopg's libpq layer (``psycopg.pq``): psycopg's
``Cursor.execute`` (its query conversion, parameter dumping, prepared-statement bookkeeping
and result generator) cost ~15 µs more CPU per read than libpq's own call, for the same
round trip. Each concurrent read has its own reader; up to :data:`KEEP` stay open between
reads.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from psycopg.adapt import Transformer
from psycopg.errors import error_from_result
from psycopg.pq import ConnStatus, ExecStatus, TransactionStatus
from psycopg.pq.abc import PGresult

from trackplug import BackendError
from trackplug.plugin import cut_socket

__all__ = ["KEEP", "LIMIT", "Reader", "Readers"]

#: Idle connections kept open (SQLAlchemy's default pool size); more are closed when given back.
KEEP = 5
#: Connections open at once, idle or reading (SQLAlchemy's default pool: 5 + 10 overflow):
#: a cap of the store's own, so that many threads cannot exhaust the server's max_connections.
LIMIT = 15

#: ``:name`` parameters of the shared statements (not a ``::type`` cast).
_PARAMETER = re.compile(r"(?<![:\w]):(\w+)")


@functools.cache
def _numbered(sql: str) -> tuple[bytes, tuple[str, ...]]:
    """A shared statement (``:name`` parameters) in libpq's spelling (``$1``…), and the
    parameters' names in that order (a name used twice is one parameter)."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    return _PARAMETER.sub(number, sql).encode(), tuple(names)


class Reader:
    """One read connection (``connection``, autocommit) and the statements prepared on it.
    Used by one read at a time (:class:`Readers` hands it out)."""

    __slots__ = ("_encoding", "_loader", "_pgconn", "_prepared", "connection", "cut")

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.connection = connection
        #: Shuts the connection's socket (the watchdog's cut of a read that overran).
        self.cut = functools.partial(cut_socket, connection.fileno())
        self._pgconn = connection.pgconn
        self._encoding = connection.info.encoding
        # psycopg's own loaders (its C ones), so every column comes back as its cursor's would.
        self._loader = Transformer(connection)
        # shared statement -> (its prepared name, its parameters' names in order)
        self._prepared: dict[str, tuple[bytes, tuple[str, ...]]] = {}

    def rows(self, sql: str, params: Mapping[str, object]) -> list[tuple[Any, ...]]:
        """The rows of ``sql`` (a shared statement, ``:name`` parameters) run with
        ``params``: prepared on this connection at its first run, executed by name after.
        A statement that fails raises psycopg's exception for it, as its cursor would."""
        name, names = self._prepared.get(sql) or self._prepare(sql)
        values = [self._dumped(params[n]) for n in names]
        # A None is SQL NULL to libpq (psycopg's own calls pass it; its stub says bytes).
        result = self._pgconn.exec_prepared(name, values)  # type: ignore[arg-type]
        self._check(result, ExecStatus.TUPLES_OK)
        loader = self._loader
        loader.set_pgresult(result)
        try:
            return loader.load_rows(0, result.ntuples, tuple)
        finally:
            loader.set_pgresult(None)  # the reader keeps no result until its next read

    def _prepare(self, sql: str) -> tuple[bytes, tuple[str, ...]]:
        statement, names = _numbered(sql)
        name = b"trackplug_%d" % len(self._prepared)
        self._check(self._pgconn.prepare(name, statement), ExecStatus.COMMAND_OK)
        self._prepared[sql] = (name, names)
        return name, names

    def _dumped(self, value: object) -> bytes | None:
        """A parameter as text, its type left to the server (the statement's context: the
        column compared, ``LIMIT``'s bigint), as psycopg leaves a ``str``'s."""
        if value is None:
            return None
        if type(value) is str:
            return value.encode(self._encoding)
        if type(value) is int:
            return str(value).encode()
        raise TypeError(f"a read's parameter is a str or an int, not {type(value).__name__}")

    def _check(self, result: PGresult, expected: ExecStatus) -> None:
        """psycopg's exception for a failed statement; a lost connection (libpq's own
        message, no SQLSTATE) is an ``OperationalError``, as on psycopg's cursor."""
        if result.status == expected:
            return
        if self._pgconn.status == ConnStatus.BAD:
            raise psycopg.OperationalError(result.get_error_message(self._encoding))
        raise error_from_result(result, encoding=self._encoding)


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
            return Reader(self._connect())
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
