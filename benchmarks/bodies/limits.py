"""The physical limits beside trackplug: raw sqlite3, and keeping tuples in a list."""

from __future__ import annotations

import sqlite3
import time

from .. import data
from ..worker import Context, Result

_SCHEMA = (
    "CREATE TABLE points (resource TEXT NOT NULL, key TEXT NOT NULL, step INTEGER NOT NULL, "
    "timestamp INTEGER NOT NULL, value REAL)",
    "CREATE INDEX points_series ON points (resource, key, step, timestamp)",
)
_INSERT = "INSERT INTO points VALUES (?, ?, ?, ?, ?)"


def sqlite_executemany(context: Context) -> Result:
    """The same points as rows of an indexed table: one ``executemany`` in one transaction,
    WAL and ``synchronous=NORMAL``, committed."""
    now = int(time.time() * 1000)
    points = data.series(context.size)
    rows = [(data.RESOURCE, data.KEY, step, now, value) for step, value in points]
    connection = sqlite3.connect(context.directory / "raw.db", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    for statement in _SCHEMA:
        connection.execute(statement)
    start = time.perf_counter()
    connection.execute("BEGIN")
    connection.executemany(_INSERT, rows)
    connection.execute("COMMIT")
    seconds = time.perf_counter() - start
    (found,) = connection.execute("SELECT count(*) FROM points").fetchone()
    connection.close()
    return Result(seconds, len(rows), len(rows), found)


def list_append(context: Context) -> Result:
    """The same points appended as ``(resource, key, value, step)`` tuples to a list."""
    points = data.series(context.size)
    kept: list[tuple[str, str, float, int]] = []
    append, resource, key = kept.append, data.RESOURCE, data.KEY
    start = time.perf_counter()
    for step, value in points:
        append((resource, key, value, step))
    seconds = time.perf_counter() - start
    return Result(seconds, len(points), len(points), len(kept))
