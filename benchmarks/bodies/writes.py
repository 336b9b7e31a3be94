"""Writes at scale (issue 19): PostgreSQL beside a raw COPY, and many series beside one."""

from __future__ import annotations

import struct
import time

from .. import data
from ..probes import status_kib
from ..worker import Context, Result
from .stores import store_url

#: The shape of trackplug's points table (schema version 4): the same columns and key.
_POINTS = """CREATE TABLE points (
    series BIGINT NOT NULL, step BIGINT NOT NULL, timestamp_ms BIGINT NOT NULL,
    value_order BIGINT NOT NULL,
    PRIMARY KEY (series, step, timestamp_ms, value_order))"""
_COPY = "COPY points (series, step, timestamp_ms, value_order) FROM STDIN (FORMAT BINARY)"
_INT64_MAX = (1 << 63) - 1


def _bits(value: float) -> int:
    (bits,) = struct.unpack("<q", struct.pack("<d", value))
    return int(bits)


def postgresql_copy_binary(context: Context) -> Result:
    """The physical limit on PostgreSQL: the same points as rows of a table of the points
    table's shape, built before the timer; one psycopg ``COPY … (FORMAT BINARY)`` in one
    transaction, committed."""
    import psycopg

    now = int(time.time() * 1000)
    rows = []
    for step, value in data.series(context.size):
        bits = _bits(value)  # data.series values are in [0, 1): the order is the bits
        rows.append((1, step, now, bits))
    with store_url(context) as url, psycopg.connect(url) as connection:
        connection.execute(_POINTS)
        connection.commit()
        start = time.perf_counter()
        with connection.cursor() as cursor, cursor.copy(_COPY) as copy:
            copy.set_types(["int8", "int8", "int8", "int8"])
            for row in rows:
                copy.write_row(row)
        connection.commit()
        seconds = time.perf_counter() - start
        found = connection.execute("SELECT count(*) FROM points").fetchone()
    return Result(seconds, len(rows), len(rows), found[0] if found else 0)


def many_series(context: Context) -> Result:
    """One ``log_metric`` call into each of ``size`` resources (a new series each), then
    ``flush``: the rate beside one series of as many points (``log_metric_loop``)."""
    import trackplug

    resources = [f"run-{index:07d}" for index in range(context.size)]
    with store_url(context) as url:
        tracker = trackplug.connect(url)
        log, key = tracker.log_metric, data.KEY
        start = time.perf_counter()
        for step, resource in enumerate(resources):
            log(resource, key, 0.5, step=step)
        tracker.flush()
        seconds = time.perf_counter() - start
        checked = resources[:: max(1, context.size // 100)]  # read back a hundred of them
        found = sum(len(tracker.history(resource, key)) for resource in checked)
        tracker.close()
    return Result(seconds, len(resources), len(checked), found)


def series_memory(context: Context) -> Result:
    """Resident memory per series: one point into each of ``size`` resources, flushed at
    every quarter; the figure is the RSS growth per series over the last three quarters
    (the first pays for what is fixed: imports, connections, the store's page cache)."""
    import trackplug

    quarter = context.size // 4
    with store_url(context) as url:
        tracker = trackplug.connect(url)
        log, key = tracker.log_metric, data.KEY
        rss = []
        start = time.perf_counter()
        for part in range(4):
            for index in range(part * quarter, (part + 1) * quarter):
                log(f"run-{index:07d}", key, 0.5, step=0)
            tracker.flush()
            rss.append(status_kib("VmRSS"))
        seconds = time.perf_counter() - start
        found = len(tracker.resources())
        tracker.close()
    per_series = (rss[-1] - rss[0]) * 1024 / (3 * quarter)
    return Result(seconds, 4 * quarter, 4 * quarter, found, {"bytes_per_series": per_series})
