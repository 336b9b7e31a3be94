"""A second peer beside MLflow: trackio (local mode), on the same data as trackplug."""

from __future__ import annotations

import os
import time

from .. import data
from ..worker import Context, Result


def trackio_log_dict(context: Context) -> Result:
    """The batch data as one ``trackio.log({key: value}, step=...)`` per step."""
    return _trackio_log(context, data.grid(context.size, int(context.params["keys"])))


def trackio_log_metric(context: Context) -> Result:
    """One point per call, as ``log_metric`` logs: ``trackio.log({"loss": value}, step=i)``."""
    return _trackio_log(context, [{data.KEY: value} for _, value in data.series(context.size)])


def _trackio_log(context: Context, rows: list[dict[str, float]]) -> Result:
    """``trackio.log(row, step=i)`` per row, then ``finish()`` (which waits until every
    point is in trackio's SQLite file)."""
    os.environ["TRACKIO_DIR"] = str(context.directory / "trackio")  # before the import
    import trackio

    total = sum(len(row) for row in rows)
    start = time.perf_counter()
    trackio.init(project="bench", name=data.RESOURCE)
    for step, row in enumerate(rows):
        trackio.log(row, step=step)
    trackio.finish()
    seconds = time.perf_counter() - start
    return Result(seconds, total, total, _trackio_points(context, rows[0]))


def _trackio_points(context: Context, keys: dict[str, float]) -> int:
    """Points trackio kept: each of its metric rows holds one step's dict."""
    import json
    import sqlite3

    (path,) = (context.directory / "trackio").glob("bench*.db")
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute("SELECT metrics FROM metrics").fetchall()
    finally:
        connection.close()
    return sum(sum(1 for key in json.loads(text) if key in keys) for (text,) in rows)
