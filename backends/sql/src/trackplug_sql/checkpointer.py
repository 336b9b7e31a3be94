"""SQLite's WAL checkpoints in a thread of their own, off the writer's commits.

In WAL mode a commit appends pages to the write-ahead log, and a *checkpoint* copies them
back into the database file (and syncs both) so the log can start over. SQLite runs one
itself in the commit that takes the log past 1,000 pages (``wal_autocheckpoint``): in the
writer's thread, on its critical path. A write of one point into each of 100,000 new
resources logs ~16 MiB (its series rows and their two indexes), so two of its three commits
checkpointed, 17 to 38 ms each, while the next batch waited (docs/performance.md, "WAL
checkpoints off the flusher").

A :class:`Checkpointer` does it beside the writer: after every ``CHECKPOINT_ROWS`` rows the
store's writes changed, a thread of its own runs a passive checkpoint on a connection of its
own (SQLite lets a checkpoint run while a writer appends); ``sqlite3`` lets go of the GIL
meanwhile. The writer's own automatic checkpoint stays, at :data:`BACKSTOP_PAGES`: should
the thread fall behind or stop on an error, the log still stops growing there.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref

__all__ = ["BACKSTOP_PAGES", "CHECKPOINT_ROWS", "Checkpointer", "checkpoint"]

#: Rows changed between two background checkpoints: 1 to 4 MiB of log for points.
CHECKPOINT_ROWS = 20_000
#: The writer's own automatic checkpoint, in pages (40 MiB): a backstop, 10x SQLite's.
BACKSTOP_PAGES = 10_000


def checkpoint(db: sqlite3.Connection) -> None:
    """A passive checkpoint: syncs the log, then copies what no reader still needs into
    the database file, without waiting for other connections."""
    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


class Checkpointer:
    """The background checkpoints of one store's file.

    :param path: the database file.
    :param writer: the store's connection, whose rows changed (``total_changes``) count
        towards the next checkpoint; used only under the store's lock.
    :param timeout: seconds the thread's connection waits on another's lock.
    """

    def __init__(self, path: str, writer: sqlite3.Connection, timeout: float) -> None:
        self._path = path
        self._writer = writer
        self._timeout = timeout
        writer.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        self._counted = writer.total_changes
        #: One checkpoint at a time: the store's ``sync()`` takes it for its own.
        self.lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # A store dropped without close(): its thread ends with it (the thread holds
        # neither the checkpointer nor the writer, so they can be collected).
        weakref.finalize(self, _stop_thread, self._stop, self._wake)

    def committed(self) -> None:
        """Count a write transaction that just committed (under the store's lock); wake
        the thread once ``CHECKPOINT_ROWS`` rows have changed since it last woke."""
        changes = self._writer.total_changes
        if 0 <= changes - self._counted < CHECKPOINT_ROWS:  # < 0: the count wrapped
            return
        self._counted = changes
        if self._thread is None:  # started by the first big write: small stores never
            self._thread = threading.Thread(
                target=_checkpoints,
                args=(self._path, self._timeout, self.lock, self._wake, self._stop),
                name="trackplug-sqlite-checkpoint",
                daemon=True,
            )
            self._thread.start()
        self._wake.set()

    def close(self) -> None:
        """Stop the thread, after the checkpoint it is running."""
        _stop_thread(self._stop, self._wake)
        if self._thread is not None:
            self._thread.join()


def _checkpoints(
    path: str,
    timeout: float,
    lock: threading.Lock,
    wake: threading.Event,
    stop: threading.Event,
) -> None:
    """The thread: a passive checkpoint each time it is woken, on a connection of its own."""
    db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        while True:
            wake.wait()
            wake.clear()
            if stop.is_set():
                return
            with lock:
                checkpoint(db)
    except sqlite3.Error:
        return  # the backstop keeps the log bounded; sync() meets the error and reports it
    finally:
        db.close()


def _stop_thread(stop: threading.Event, wake: threading.Event) -> None:
    stop.set()
    wake.set()
