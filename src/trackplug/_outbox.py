"""The outbox: writes a backend could not take, kept durably until they can be replayed.

A local SQLite file (Python's own ``sqlite3``, WAL, ``synchronous=FULL``: a write is on disk
when :meth:`Outbox.append` returns). One row per write, in order, keyed by the backend's URL
as given to ``connect`` — so the file holds that URL, credentials included: it is created
readable by its owner only. Replays are idempotent (exact duplicates collapse in every
backend), so a crash between a replay and the row's deletion duplicates nothing.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ._writes import Write, from_json, to_json

if TYPE_CHECKING:
    import sqlite3

__all__ = ["DEFAULT_OUTBOX", "ENV_OUTBOX", "Outbox", "default_outbox_path"]

ENV_OUTBOX = "TRACKPLUG_OUTBOX"
DEFAULT_OUTBOX = Path(".trackplug") / "outbox.db"

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

    def __repr__(self) -> str:
        return f"Outbox({str(self.path)!r})"

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            import sqlite3  # here, not at import: most trackers never spool anything

            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch(mode=0o600, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

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
        if not self.path.exists():
            return 0
        with self._lock:
            db = self._connection()
            if url is None:
                return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])
            query = "SELECT count(*) FROM outbox WHERE url = ?"
            return int(db.execute(query, (url,)).fetchone()[0])

    def urls(self) -> list[str]:
        """Every URL that has writes waiting."""
        if not self.path.exists():
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
