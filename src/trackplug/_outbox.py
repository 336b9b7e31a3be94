"""The outbox: writes a backend could not take, kept durably until they can be replayed.

A local SQLite file (Python's own ``sqlite3``, WAL, ``synchronous=FULL``: a write is on disk
when :meth:`Outbox.append` returns). One row per write, in order, keyed by the backend's URL
as given to ``connect`` — so the file holds that URL, credentials included (``trackplug
sync`` with no argument replays to every URL it holds, which needs them). Hence the file,
its ``-wal`` and ``-shm`` companions and its lock file are made readable by their owner only
(0600) every time the outbox is opened, whatever mode they had before, and a directory the
outbox creates is 0700. Replays are idempotent (exact duplicates collapse in every
backend), so a crash between a replay and the row's deletion duplicates nothing.

One replay at a time: :meth:`Outbox.replaying` holds an exclusive lock on ``<outbox>.lock``
(``flock``, so across processes; released by the kernel if a process dies) for as long as a
replay runs. Two ``trackplug sync`` runs of one outbox never send the same write twice: the
second waits, then finds only what the first left. A tracker that replays on its own while
it logs does not wait: it leaves the outbox to the replay under way and keeps spooling.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ._errors import BackendError
from ._writes import Write, from_json, to_json

if TYPE_CHECKING:
    import sqlite3

__all__ = ["DEFAULT_OUTBOX", "ENV_OUTBOX", "Outbox", "default_outbox_path"]

ENV_OUTBOX = "TRACKPLUG_OUTBOX"
DEFAULT_OUTBOX = Path(".trackplug") / "outbox.db"
#: The only mode an outbox file may have: it holds URLs with their passwords.
PRIVATE = 0o600
_COMPANIONS = ("-wal", "-shm", ".lock")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL,
    write TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_by_url ON outbox (url, id);
"""


def default_outbox_path() -> Path:
    """``$TRACKPLUG_OUTBOX``, else ``.trackplug/outbox.db`` in the working directory."""
    return Path(os.environ.get(ENV_OUTBOX) or DEFAULT_OUTBOX)


class Outbox:
    """Writes waiting for their backend, oldest first. Safe across threads and processes."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_outbox_path()
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._replay_lock = threading.RLock()  # this object's replays, across its threads
        self._replay_fd: int | None = None  # holds the flock while a replay runs
        self._replay_depth = 0

    def __repr__(self) -> str:
        return f"Outbox({str(self.path)!r})"

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            import sqlite3  # here, not at import: most trackers never spool anything

            try:
                self._make_private()
                db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.executescript(_SCHEMA)
            except (OSError, sqlite3.Error) as exc:
                raise BackendError(
                    f"the outbox {self.path} cannot be opened: {type(exc).__name__}: {exc}"
                ) from exc
            self._db = db
        return self._db

    def _make_private(self) -> None:
        """Create the file (and its directory, 0700) if needed; force 0600 on it and on any
        companion file a previous run left, whatever mode they had."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path.touch(mode=PRIVATE, exist_ok=True)
        for path in [self.path, *(self._companion(suffix) for suffix in _COMPANIONS)]:
            if path.exists() and path.stat().st_mode & 0o777 != PRIVATE:
                path.chmod(PRIVATE)

    def _exists(self) -> bool:
        """Whether the file is there; a path that cannot be (a name too long for the file
        system) is not, and says why when something is spooled to it."""
        try:
            return self.path.exists()
        except OSError:
            return False

    def _companion(self, suffix: str) -> Path:
        return self.path.with_name(self.path.name + suffix)

    @contextmanager
    def replaying(self, wait: bool = True) -> Iterator[bool]:
        """Hold the replay lock of this outbox for the ``with`` block; yields whether it is
        held. ``wait=False`` yields False at once when another replay holds it (in this
        process or another). Re-entrant in the thread that holds it."""
        if not self._replay_lock.acquire(blocking=wait):
            yield False
            return
        try:
            if self._replay_depth == 0 and not self._lock_file(wait):
                yield False
                return
            self._replay_depth += 1
            try:
                yield True
            finally:
                self._replay_depth -= 1
                if self._replay_depth == 0:
                    self._unlock_file()
        finally:
            self._replay_lock.release()

    def _lock_file(self, wait: bool) -> bool:
        try:
            import fcntl
        except ImportError:  # not POSIX: replays exclude each other within this process only
            return True
        if not self._exists():  # nothing waits: nothing to guard, nothing to create
            return True
        try:
            fd = os.open(self._companion(".lock"), os.O_RDWR | os.O_CREAT, PRIVATE)
        except OSError as exc:
            raise BackendError(f"the outbox {self.path} cannot be locked: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        self._replay_fd = fd
        return True

    def _unlock_file(self) -> None:
        fd, self._replay_fd = self._replay_fd, None
        if fd is not None:
            os.close(fd)  # closing releases the flock

    def append(self, url: str, write: Write) -> None:
        """Keep ``write`` for ``url``; durable when this returns."""
        with self._lock:
            db = self._connection()
            with db:
                db.execute(
                    "INSERT INTO outbox (url, write, created_ms) VALUES (?, ?, ?)",
                    (url, to_json(write), time.time_ns() // 1_000_000),
                )

    def pending(self, url: str | None = None) -> int:
        """How many writes wait (for ``url``, or for every URL)."""
        if not self._exists():
            return 0
        with self._lock:
            db = self._connection()
            if url is None:
                return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])
            query = "SELECT count(*) FROM outbox WHERE url = ?"
            return int(db.execute(query, (url,)).fetchone()[0])

    def urls(self) -> list[str]:
        """Every URL that has writes waiting."""
        if not self._exists():
            return []
        with self._lock:
            rows = self._connection().execute("SELECT DISTINCT url FROM outbox ORDER BY url")
            return [str(url) for (url,) in rows]

    def entries(self, url: str) -> Iterator[tuple[int, Write]]:
        """The writes waiting for ``url``, oldest first, read one at a time."""
        last = 0
        while True:
            with self._lock:
                row = (
                    self._connection()
                    .execute(
                        "SELECT id, write FROM outbox WHERE url = ? AND id > ? ORDER BY id LIMIT 1",
                        (url, last),
                    )
                    .fetchone()
                )
            if row is None:
                return
            last = int(row[0])
            yield last, from_json(str(row[1]))

    def remove(self, entry_id: int) -> None:
        """Forget a write that its backend has taken."""
        with self._lock:
            db = self._connection()
            with db:
                db.execute("DELETE FROM outbox WHERE id = ?", (entry_id,))

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
