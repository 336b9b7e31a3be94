"""Reads at scale (issue 19): a history of millions of points read whole, a page at a time,
as columns and by the raw driver, and PostgreSQL's small reads beside the same raw psycopg query.

Filling a store with 5,000,000 points takes longer than every read of it, and no read
changes it, so each backend's store of ``size`` points is built once per machine and kept
(a SQLite file in the temporary directory, a PostgreSQL schema ``trackplug_bench_reads_*``,
vacuumed and analyzed once), refused when its count is wrong. The raw references run the
rows of the statement trackplug runs (``trackplug_sql.schema.HISTORY``) on the same store:
``fetchall()`` of sqlite3's rows, and psycopg's binary rows on a plain autocommit connection.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import data
from ..probes import PeakMemory
from ..worker import Context, Result

if TYPE_CHECKING:
    from trackplug import Tracker

#: Points a history is filled with per write.
_FILL_BATCH = 100_000
#: Resources that ``best`` ranks in the small-read cases.
_RANKED = 1_000


def _url(context: Context, what: str) -> str:
    """The URL of this machine's kept store ``what`` (its size in the name)."""
    name = f"trackplug_bench_reads_{what}_{context.size}"
    if context.backend == "sqlite":
        return f"sqlite:///{Path(tempfile.gettempdir()) / name}.db"
    base = str(context.params["postgresql_url"])
    _ensure_schema(base, name)
    return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{name}"


def _ensure_schema(base: str, name: str) -> None:
    with _psycopg(base) as admin:
        admin.execute(f"CREATE SCHEMA IF NOT EXISTS {name}")


def _history_store(context: Context) -> str:
    """The kept store holding ``data.series(size)`` as one metric (filled if it does not)."""
    import trackplug

    url = _url(context, "history")
    with trackplug.connect(url) as tracker:
        if tracker.get_metric(data.RESOURCE, data.KEY) is not None:
            if _count(tracker) != context.size:
                raise RuntimeError(f"{url} holds a history of another size: remove it")
        else:
            points = data.series(context.size)
            for start in range(0, len(points), _FILL_BATCH):
                rows = points[start : start + _FILL_BATCH]
                tracker.log_points(
                    data.RESOURCE,
                    [trackplug.MetricPoint(data.KEY, v, s, 1_000 + s) for s, v in rows],
                )
    if context.backend == "postgresql":
        _settle(url)
    return url


def _settle(url: str) -> None:
    """Vacuum and analyze a PostgreSQL store once, as autovacuum would have after the fill
    (the test server runs without it): with the visibility map set, the index-only scans of
    trackplug and of the raw read alike fetch no heap page, and the raw statement gets the
    planner's statistics (without them it sorts the history; trackplug's does not)."""
    with _psycopg(url) as connection:
        (settled,) = connection.execute(
            "SELECT relallvisible > 0 FROM pg_class WHERE oid = 'trackplug_points'::regclass"
        ).fetchone()
        if not settled:
            connection.execute("VACUUM (ANALYZE) trackplug_points")


def _count(tracker: Tracker) -> int:
    return sum(1 for _ in tracker.iter_history(data.RESOURCE, data.KEY, page_size=100_000))


@contextmanager
def _cold(url: str) -> Iterator[Tracker]:
    import trackplug

    with trackplug.connect(url) as tracker:
        tracker.get_metric("absent", data.KEY)  # opens the connection, outside the timer
        yield tracker


def history(context: Context) -> Result:
    """``history()`` of the kept ``size``-point metric; peak memory above the store opened."""
    url = _history_store(context)
    with _cold(url) as tracker:
        memory = PeakMemory()
        start = time.perf_counter()
        read = tracker.history(data.RESOURCE, data.KEY)
        seconds = time.perf_counter() - start
        figures = {"peak_rss_mib": memory.mib()}
        ordered = all(a.step < b.step for a, b in pairwise(read))
    mismatch = None if ordered else "history is not ordered by step"
    return Result(seconds, len(read), context.size, len(read), figures, mismatch)


def iter_history(context: Context) -> Result:
    """``iter_history()`` (pages of 10,000) of the same metric, each point looked at once."""
    url = _history_store(context)
    with _cold(url) as tracker:
        memory = PeakMemory()
        start = time.perf_counter()
        found, last = 0, -1
        for point in tracker.iter_history(data.RESOURCE, data.KEY):
            found += point.step > last
            last = point.step
        seconds = time.perf_counter() - start
        figures = {"peak_rss_mib": memory.mib()}
    return Result(seconds, found, context.size, found, figures)


def history_columns(context: Context) -> Result:
    """``history_columns()`` (pages of 10,000) of the same metric: three arrays, no point
    object; peak memory above the store opened."""
    url = _history_store(context)
    with _cold(url) as tracker:
        memory = PeakMemory()
        start = time.perf_counter()
        steps, _, values = tracker.history_columns(data.RESOURCE, data.KEY)
        seconds = time.perf_counter() - start
        figures = {"peak_rss_mib": memory.mib()}
        ordered = all(a < b for a, b in pairwise(steps)) and len(values) == len(steps)
    mismatch = None if ordered else "columns are not ordered by step"
    return Result(seconds, len(steps), context.size, len(steps), figures, mismatch)


def frame(context: Context) -> Result:
    """``Tracker.frame()`` of the same metric (pandas imported outside the timer); peak
    memory above the store opened."""
    import pandas  # type: ignore[import-untyped]  # noqa: F401  # outside the timer

    url = _history_store(context)
    with _cold(url) as tracker:
        memory = PeakMemory()
        start = time.perf_counter()
        table = tracker.frame()
        seconds = time.perf_counter() - start
        figures = {"peak_rss_mib": memory.mib()}
        ordered = bool(table.step.is_monotonic_increasing)
    mismatch = None if ordered else "the frame is not ordered by step"
    return Result(seconds, len(table), context.size, len(table), figures, mismatch)


def export(context: Context) -> Result:
    """``trackplug export -f FORMAT -o FILE`` of the same store (the command in process,
    its imports outside the timer); peak memory above the imports, the file's size."""
    from click.testing import CliRunner

    from trackplug.cli import cli

    if context.params["format"] == "parquet":
        import pyarrow.parquet  # type: ignore[import-untyped]  # noqa: F401  # outside the timer
    url = _history_store(context)
    out = Path(tempfile.gettempdir()) / f"trackplug_bench_export.{context.params['format']}"
    memory = PeakMemory()
    start = time.perf_counter()
    args = ["export", url, "-f", context.params["format"], "-o", str(out)]
    result = CliRunner().invoke(cli, args)
    seconds = time.perf_counter() - start
    if result.exit_code != 0:
        raise RuntimeError(f"export failed: {result.output}") from result.exception
    figures = {"peak_rss_mib": memory.mib(), "file_mib": out.stat().st_size / 2**20}
    out.unlink()
    found = context.size if f"Wrote {context.size:,} rows" in result.stderr else 0
    return Result(seconds, context.size, context.size, found, figures)


def raw_history(context: Context) -> Result:
    """The same rows by the raw driver: sqlite3 ``fetchall()``; psycopg binary rows."""
    from trackplug_sql import schema

    url = _history_store(context)
    params = {"resource": data.RESOURCE, "key": data.KEY}
    if context.backend == "sqlite":
        import sqlite3

        connection = sqlite3.connect(url.removeprefix("sqlite:///"))
        memory = PeakMemory()
        start = time.perf_counter()
        rows = connection.execute(schema.HISTORY, params).fetchall()
        seconds = time.perf_counter() - start
        connection.close()
    else:
        with _psycopg(url) as connection:
            statement = schema.HISTORY.replace(":resource", "%(resource)s")
            statement = statement.replace(":key", "%(key)s")
            memory = PeakMemory()
            start = time.perf_counter()
            rows = connection.execute(statement, params, binary=True).fetchall()
            seconds = time.perf_counter() - start
    figures = {"peak_rss_mib": memory.mib()}
    return Result(seconds, len(rows), context.size, len(rows), figures)


@contextmanager
def _psycopg(url: str) -> Iterator[Any]:
    """A plain psycopg connection (autocommit: one round trip a query) to the kept store."""
    import psycopg
    from sqlalchemy import make_url

    conninfo = make_url(url).difference_update_query(["timeout"])  # trackplug's, not libpq's
    with psycopg.connect(conninfo.render_as_string(False), autocommit=True) as connection:
        yield connection


# -- small reads on PostgreSQL ----------------------------------------------------------------

#: Each small read: trackplug's call, and the statement (psycopg spelling) and parameters of
#: the same read.
_SMALL: dict[str, tuple[Callable[[Tracker], object], str, dict[str, object]]] = {
    "get_metric": (
        lambda t: t.get_metric(data.resource_id(7), data.KEY),
        "SELECT value_bits FROM trackplug_series WHERE resource = %(resource)s AND key = %(key)s",
        {"resource": data.resource_id(7), "key": data.KEY},
    ),
    "latest": (
        lambda t: t.latest(data.resource_id(7)),
        "SELECT key, value_bits FROM trackplug_series WHERE resource = %(resource)s ORDER BY key",
        {"resource": data.resource_id(7)},
    ),
    "best": (
        lambda t: t.best(data.RANK_KEY, order="max", limit=1),
        "SELECT resource, value_bits FROM trackplug_series WHERE key = %(key)s AND "
        "best_order IS NOT NULL ORDER BY best_order DESC, resource LIMIT %(limit)s",
        {"key": data.RANK_KEY, "limit": 1},
    ),
}


def _ranked_store(context: Context) -> str:
    """The kept store of ``_RANKED`` resources, each with an f1 and a loss."""
    import trackplug

    url = _url(context, "ranked")
    with trackplug.connect(url) as tracker:
        if len(tracker.resources()) != _RANKED:
            for resource, f1, loss in data.ranked(_RANKED):
                tracker.log_metrics(resource, {data.RANK_KEY: f1, data.KEY: loss})
    return url


def small_read(context: Context) -> Result:
    """``size`` calls of one small read (``params["read"]``), seconds per call."""
    call, _, _ = _SMALL[context.params["read"]]
    url = _ranked_store(context)
    with _cold(url) as tracker:
        for _ in range(20):  # warm: the statement prepared, the pool filled
            call(tracker)
        start = time.perf_counter()
        for _ in range(context.size):
            call(tracker)
        seconds = (time.perf_counter() - start) / context.size
        found = len(tracker.resources())
    return Result(seconds, 0, _RANKED, found)


def raw_small_read(context: Context) -> Result:
    """The same statement on a plain psycopg connection, ``size`` times, per call."""
    _, statement, params = _SMALL[context.params["read"]]
    url = _ranked_store(context)
    with _psycopg(url) as connection:
        for _ in range(20):
            connection.execute(statement, params).fetchall()
        start = time.perf_counter()
        for _ in range(context.size):
            connection.execute(statement, params).fetchall()
        seconds = (time.perf_counter() - start) / context.size
        (found,) = connection.execute(
            "SELECT count(DISTINCT resource) FROM trackplug_series"
        ).fetchone()
    return Result(seconds, 0, _RANKED, found)
