"""A bound on every wait for the PostgreSQL server of an MLflow database store.

libpq's ``connect_timeout`` and ``tcp_user_timeout`` (set from ``?timeout=`` in :mod:`.urls`)
bound opening a connection and a peer that stops acknowledging; a server that is stopped
(SIGSTOP), swapping or deadlocked while its kernel keeps the TCP connections alive answers
neither, and a query already sent waits forever, inside MLflow's own connection pool.
:class:`DatabaseGuard` bounds every call into MLflow instead, whatever it does (a read, a
write, the pool's pre-ping of an idle connection): it watches MLflow's SQLAlchemy engine
(pool events: the connections it holds, and which thread has each checked out), and when a
call outlives the timeout, the watchdog (:class:`trackplug.plugin.Watchdog`, the SQL
backend's) shuts down the sockets that call may be waiting on: the connections its thread
has checked out and the idle ones (a pre-ping takes one of those). Connections other
threads have checked out are theirs to bound. The cut connection fails at once, SQLAlchemy
discards it, and the call ends in a :class:`~trackplug.BackendError`. A new connection the
cut call then tries to open is refused (libpq's ``connect_timeout`` would wait again).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from trackplug.plugin import BackendError, Watchdog, cut_socket

__all__ = ["DatabaseGuard", "engine_of"]

#: Engines already watched, with their guard's records (MLflow shares one engine per URI).
_WATCHED: weakref.WeakKeyDictionary[Any, _Connections] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


class _Connections:
    """The connections of one engine, and the thread that has each checked out."""

    def __init__(self) -> None:
        self.open: weakref.WeakSet[Any] = weakref.WeakSet()
        self.owners: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
        #: Threads whose call ran out of time: they may open no new connection.
        self.expired: set[int] = set()


class DatabaseGuard:
    """Bounds each call into MLflow's SQLAlchemy ``engine`` (a PostgreSQL one) by ``timeout``."""

    def __init__(self, engine: Any, timeout: float) -> None:
        self.timeout = timeout
        self._connections = _watch(engine)
        self._watchdog = Watchdog(timeout, "trackplug-mlflow watchdog")

    @contextmanager
    def bounded(self, what: str) -> Iterator[None]:
        """The block's waits on the database end within the timeout; one that did not is
        a :class:`~trackplug.BackendError` naming ``what`` and the bound."""
        me = threading.get_ident()
        try:
            with self._watchdog.watch(lambda: self._cut(me)) as watch:
                try:
                    yield
                except Exception as exc:
                    if not watch.fired:
                        raise
                    raise BackendError(
                        f"{what}: the database server did not answer within {self.timeout:g} s "
                        "(it is stopped, overloaded or unreachable; set the bound with "
                        "?timeout=<seconds>)"
                    ) from exc
        finally:  # after the watch: its cut can no longer mark this thread
            self._connections.expired.discard(me)

    def _cut(self, thread: int) -> None:
        """Shut down every socket ``thread`` may be waiting on (runs in the watchdog)."""
        self._connections.expired.add(thread)
        for conn in list(self._connections.open):
            owner = self._connections.owners.get(conn)
            if owner is not None and owner != thread:
                continue
            try:
                fd = conn.fileno()
            except Exception:  # closed already: nothing waits on it
                continue
            cut_socket(fd)

    def stop(self) -> None:
        self._watchdog.stop()


def engine_of(client: Any) -> Any:
    """The SQLAlchemy engine of an ``MlflowClient`` on a database store, else None."""
    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    return getattr(store, "engine", None)


def _watch(engine: Any) -> _Connections:
    """Listen to ``engine``'s pool once; the connections it already holds idle are closed
    (the pool opens new ones, which are then known)."""
    from sqlalchemy import event

    with _LOCK:
        found = _WATCHED.get(engine)
        if found is not None:
            return found
        connections = _Connections()

        def connecting(dialect: Any, record: Any, cargs: Any, cparams: Any) -> None:
            if threading.get_ident() in connections.expired:
                raise BackendError("the call ran out of time: no new connection")

        def connected(dbapi_conn: Any, record: Any) -> None:
            connections.open.add(dbapi_conn)

        def checked_out(dbapi_conn: Any, record: Any, proxy: Any) -> None:
            connections.owners[dbapi_conn] = threading.get_ident()

        def checked_in(dbapi_conn: Any, record: Any) -> None:
            if dbapi_conn is not None:
                connections.owners.pop(dbapi_conn, None)

        event.listen(engine, "do_connect", connecting)
        event.listen(engine, "connect", connected)
        event.listen(engine, "checkout", checked_out)
        event.listen(engine, "checkin", checked_in)
        engine.pool.dispose()  # idle connections opened before we listened
        _WATCHED[engine] = connections
        return connections
