"""The floors that absolute-time targets are judged against, measured in the same run.

A loaded machine slows trackplug and its floor alike, so a target stated as a ratio to its
floor holds where an absolute one would fake a miss: a fresh process against a bare
interpreter (and one that imports sqlite3), caller latency against a bare Python call, a
history or a best against the same rows read by raw ``sqlite3``.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

from .. import data
from ..probes import latency_figures
from ..worker import Context, Result


def _child(code: str) -> float:
    """The wall time of ``python -c code``, start to exit."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def python_start(context: Context) -> Result:
    """``python -c pass``: the interpreter's own start and exit."""
    return Result(_child("pass"), 0, 0, 0)


def sqlite3_start(context: Context) -> Result:
    """``python -c "import sqlite3"``: the least a process that writes to SQLite loads."""
    return Result(_child("import sqlite3"), 0, 0, 0)


def call_latency(context: Context) -> Result:
    """The clock around a bare Python call with ``log_metric``'s arguments that appends a
    tuple: what timing one call costs, with nothing of trackplug in it."""
    points = data.series(context.size)
    kept: list[tuple[str, str, float, int]] = []
    append = kept.append

    def log(resource: str, key: str, value: float, step: int = 0) -> None:
        append((resource, key, value, step))

    waits = [0] * len(points)
    clock = time.perf_counter_ns
    resource, key = data.RESOURCE, data.KEY
    start = time.perf_counter()
    for index, (step, value) in enumerate(points):
        before = clock()
        log(resource, key, value, step=step)
        waits[index] = clock() - before
    seconds = time.perf_counter() - start
    return Result(seconds, len(points), len(points), len(kept), latency_figures(waits))


def sqlite_select(context: Context) -> Result:
    """The ``size`` points of one series as raw rows of a table clustered on the series and
    step (``WITHOUT ROWID``): a ``SELECT`` in that order, ``fetchall``; no sort, no lookup.
    The floor of ``history()``."""
    now = int(time.time() * 1000)
    rows = [
        (data.RESOURCE, data.KEY, step, now, value) for step, value in data.series(context.size)
    ]
    connection = sqlite3.connect(context.directory / "select.db")  # implicit BEGIN
    connection.execute(
        "CREATE TABLE points (resource TEXT, key TEXT, step INTEGER, timestamp INTEGER, "
        "value REAL, PRIMARY KEY (resource, key, step, timestamp)) WITHOUT ROWID"
    )
    with connection:  # one transaction
        connection.executemany("INSERT INTO points VALUES (?, ?, ?, ?, ?)", rows)
    connection.execute("SELECT 1").fetchall()  # the first query of the connection
    start = time.perf_counter()
    read = connection.execute(
        "SELECT step, timestamp, value FROM points WHERE resource = ? AND key = ? "
        "ORDER BY step, timestamp",
        (data.RESOURCE, data.KEY),
    ).fetchall()
    seconds = time.perf_counter() - start
    connection.close()
    ordered = all(row[0] == step for step, row in enumerate(read))
    mismatch = None if ordered else "rows out of step order"
    return Result(seconds, len(read), context.size, len(read), mismatch=mismatch)


def sqlite_best(context: Context) -> Result:
    """The resource with the greatest f1 of ``size``, one row each in an indexed table, by
    raw ``sqlite3`` (the floor of ``best()``)."""
    rows = data.ranked(context.size)
    connection = sqlite3.connect(context.directory / "best.db")  # implicit BEGIN
    connection.execute("CREATE TABLE latest (resource TEXT PRIMARY KEY, key TEXT, value REAL)")
    connection.execute("CREATE INDEX latest_by_value ON latest (key, value)")
    with connection:
        connection.executemany(
            "INSERT INTO latest VALUES (?, ?, ?)", [(r, data.RANK_KEY, f1) for r, f1, _ in rows]
        )
    connection.execute("SELECT 1").fetchall()
    start = time.perf_counter()
    top = connection.execute(
        "SELECT resource, value FROM latest WHERE key = ? ORDER BY value DESC LIMIT 1",
        (data.RANK_KEY,),
    ).fetchall()
    seconds = time.perf_counter() - start
    (found,) = connection.execute("SELECT count(*) FROM latest").fetchone()
    connection.close()
    expected = data.best_of(rows)
    mismatch = None if top[0][0] == expected else f"best is {top}, not {expected}"
    return Result(seconds, 0, len(rows), found, mismatch=mismatch)
