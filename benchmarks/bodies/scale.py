"""The scaling curves (``--scale``): one series of 100,000 / 1,000,000 / 5,000,000 points
written and read back, time and peak memory, so growth with the size shows.

Peak memory is the high-water mark above the process once its store is open (its imports
done). Writes log into a fresh store; reads open the run's scale store
(:mod:`benchmarks.scale`) and read the series of their size.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .. import data, scale
from ..probes import PeakMemory
from ..worker import Context, Result
from .stores import store_url

if TYPE_CHECKING:
    from trackplug import MetricPoint, Tracker


def _open(url: str) -> Tracker:
    import trackplug

    tracker = trackplug.connect(url)
    tracker.get_metric("absent", data.KEY)  # opens the store, outside the timer
    return tracker


def log(context: Context) -> Result:
    """``size`` points as one ``log_metric`` call each into a fresh store, then ``flush``;
    the values are computed in the loop, so no input list inflates the peak."""
    with store_url(context) as url:
        tracker = _open(url)
        log_metric, resource, key = tracker.log_metric, data.RESOURCE, data.KEY
        memory = PeakMemory()
        start = time.perf_counter()
        for step in range(context.size):
            log_metric(resource, key, scale.value(step), step=step)
        tracker.flush()
        seconds = time.perf_counter() - start
        figures = {"peak_rss_mib": memory.mib()}
        tracker.close()
        found = _stored_points(context, url)
    return Result(seconds, context.size, context.size, found, figures)


def _stored_points(context: Context, url: str) -> int:
    """Rows in the store's points table, counted by the driver (a history of millions
    read back through trackplug would double the case's time)."""
    query = "SELECT count(*) FROM trackplug_points"
    if context.backend == "postgresql":
        import psycopg

        with psycopg.connect(url) as connection:
            row = connection.execute(query).fetchone()
    else:
        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            row = connection.execute(query).fetchone()
    return int(row[0]) if row else 0


def history(context: Context) -> Result:
    """``history()`` of the ``size``-point series: the whole list at once."""
    return _read(context, lambda tracker, resource: tracker.history(resource, data.KEY))


def iter_history(context: Context) -> Result:
    """``iter_history()`` of the ``size``-point series, a page at a time, each point dropped
    once seen (as a plot or a copy does)."""
    return _read(context, lambda tracker, resource: tracker.iter_history(resource, data.KEY))


def _read(context: Context, read: Callable[[Tracker, str], Iterable[MetricPoint]]) -> Result:
    tracker = _open(scale.store_url(context.fixtures, context.backend))
    resource = scale.resource(context.size)
    memory = PeakMemory()
    start = time.perf_counter()
    found = out_of_order = 0
    for point in read(tracker, resource):
        out_of_order += point.step != found
        found += 1
    seconds = time.perf_counter() - start
    figures = {"peak_rss_mib": memory.mib()}
    tracker.close()
    mismatch = f"{out_of_order} points out of step order" if out_of_order else None
    return Result(seconds, found, context.size, found, figures, mismatch)
