"""The SQL backend: the hooks of ``trackplug.spec`` over a :class:`~trackplug_sql.store.Store`.

Same structure and semantics as the in-memory reference (``trackplug._memory``); what differs
is where the points live. A write is one transaction: the series rows (each one's latest
point, moved forward only) are upserted, then every point is inserted, exact duplicates
ignored by the primary key. Reads of latest values never touch the points table.
"""

from __future__ import annotations

import functools
import json
import threading
import warnings
from array import array
from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from pathlib import Path
from typing import Any, Literal, NamedTuple

from trackplug import TrackplugWarning
from trackplug.plugin import (
    BackendError,
    BackendFactory,
    Batch,
    BatchColumns,
    Capabilities,
    ColumnsPage,
    HistoryPage,
    LocalStore,
    MetricPoint,
    ParamValue,
    PerfRecord,
    Resource,
    UrlForm,
    ValidationError,
    batch_columns,
    cursor_order,
    float_bits,
    gc_paused,
    hookimpl,
    order_cursor,
    param_text,
    raise_on_conflict,
    redact_url,
    scheme_of,
)

from . import rollup, schema
from .codec import (
    best_order,
    from_bits,
    from_orders,
    latest_indexes,
    period,
    to_bits,
    to_orders,
    value_column,
)
from .schema import PointColumns, SeriesRow, SpreadColumns
from .store import POSTGRESQL_SCHEMES, HistoryColumns, PointOrder, Row, Store, Transaction

__all__ = ["POSTGRESQL_SCHEMES", "SERIES_CACHE_LIMIT", "SQLBackend", "SQLFactory", "open_store"]

#: Series ids kept in memory per backend (~130 bytes each); past it the cache starts over,
#: as the facade's caches of valid keys and resources do.
SERIES_CACHE_LIMIT = 65_536
#: A write spreading its points over more series than this credits none of them towards
#: the rollup built at close (its series get a few points each; counting them would cost a
#: dict update per series, as much as a write of one point into each of 100,000 resources
#: can notice).
TRACKED_SERIES_PER_BATCH = 1_000
#: A write of one point (mostly) into each of more series than this finds their ids in the
#: database, not in Python (:func:`_spread`); it credits none of them towards the rollup
#: (:data:`TRACKED_SERIES_PER_BATCH`) and caches no id.
SPREAD_SERIES = TRACKED_SERIES_PER_BATCH

#: What a SQLite file and PostgreSQL keep: everything, persistently.
_PERSISTENT = Capabilities(persistent=True)
#: What an in-memory SQLite database keeps: everything, until ``close()``; no other
#: tracker sees it.
_IN_MEMORY = Capabilities(persistent=False)
FILE = UrlForm("sqlite:///FILE", _PERSISTENT)
IN_MEMORY = UrlForm("sqlite://", _IN_MEMORY, "in memory")
POSTGRESQL = UrlForm("postgresql://USER:PASSWORD@HOST:PORT/DATABASE", _PERSISTENT)


class SQLFactory(BackendFactory):
    """What trackplug-sql registers for ``sqlite`` and ``postgresql``."""

    def open(self, url: str, **options: Any) -> SQLBackend:
        return SQLBackend(url)

    def forms(self) -> list[UrlForm]:
        return [FILE, IN_MEMORY, POSTGRESQL]

    def form(self, url: str) -> UrlForm:
        if not _is_sqlite(url):
            return POSTGRESQL
        return IN_MEMORY if _sqlite_file(url) is None else FILE

    def local_store(self, url: str) -> LocalStore | None:
        if not _is_sqlite(url):
            return None
        path = _sqlite_file(url)
        return None if path is None else LocalStore("file", Path(path))


def _is_sqlite(url: str) -> bool:
    """By the scheme alone: a form's pattern (``HOST:PORT``) is no URL to parse."""
    return url.partition("://")[0].lower().partition("+")[0] == "sqlite"


def _sqlite_file(url: str) -> str | None:
    from .sqlite import sqlite_path  # sqlite3: imported when a SQLite URL is first asked about

    return sqlite_path(url)


class _Points(NamedTuple):
    """A write's points as columns; point ``i`` belongs to the series ``(rids[i],
    keys[i])``. ``cycle``: the period of the series (a dict per step of one resource:
    :func:`codec.period`), None if it has none or was not looked for."""

    rids: Sequence[str]
    keys: Sequence[str]
    values: Sequence[float]
    steps: Sequence[int]
    stamps: Sequence[int]
    bits: list[int]
    orders: list[int]
    cycle: int | None


def open_store(url: str) -> Store:
    """The store for ``sqlite://…`` or ``postgresql://…``; each imports its driver here."""
    base = scheme_of(url).partition("+")[0]
    if base == "sqlite":
        from .sqlite import SQLiteStore, sqlite_path

        return SQLiteStore(redact_url(url), sqlite_path(url))
    if base in POSTGRESQL_SCHEMES:
        from .postgresql import PostgreSQLStore

        return PostgreSQLStore(url)
    raise ValidationError(
        f"trackplug-sql serves sqlite:// and postgresql:// (postgres://) URLs, not {base}://"
    )


class SQLBackend:
    """Metrics in SQLite or PostgreSQL; ``SQLBackend(url)`` opens (and if needed creates)
    the store. What it keeps is its URL's form's (:class:`SQLFactory`)."""

    def __init__(self, url: str) -> None:
        self._capabilities = SQLFactory().capabilities(url)
        self._store = open_store(url)
        self.url = self._store.url
        # (resource id, key) -> series id. Ids never change once committed.
        self._series: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()  # guards _series and _written
        # series id -> points this backend wrote into it (estimated: a batch's points
        # shared equally among its series); close() builds the big ones' rollups.
        self._written: dict[int, int] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"SQLBackend({self.url!r})"

    # -- writes ---------------------------------------------------------------------------

    @hookimpl
    def log_metric(self, batch: Batch) -> None:
        self._log(batch_columns(batch), None)

    @hookimpl
    def log_metrics(
        self, resource: Resource, points: Sequence[MetricPoint], perf: PerfRecord | None
    ) -> None:
        columns = batch_columns({resource: points})
        self._log(columns, (resource, perf) if perf is not None else None)

    @hookimpl
    def copy_metrics(self, source: Resource, target: Resource) -> None:
        params = {"source": source.id, "target": target.id}
        with self._store.transaction() as tx:
            tx.run(schema.COPY_SERIES, params)
            tx.run(schema.COPY_POINTS, params)
            tx.run(schema.COPY_PERF, params)
            tx.run(rollup.DROP_TARGET, params)

    def _log(self, batch: BatchColumns, perf: tuple[Resource, PerfRecord] | None) -> None:
        # The collector paused for the whole write: it builds a few tuples per point and
        # per series, all freed by their counts, and each collection they set off walks
        # them in vain (0.3-0.5 s of a batch of one point into each of 100,000 resources).
        with gc_paused():
            points = _columns(batch)
            if points is None and perf is None:
                return
            with self._store.transaction() as tx:
                found = self._write_points(tx, points) if points is not None else {}
                if perf is not None:
                    resource, record = perf
                    tx.run(schema.SET_PERF, _perf_params(resource.id, record))
        with self._lock:  # only now: ids of a rolled-back transaction must not be kept
            if len(self._series) + len(found) > SERIES_CACHE_LIMIT:
                self._series.clear()  # bounded memory; the ids are looked up again
            self._series.update(found)

    def _write_points(self, tx: Transaction, points: _Points) -> dict[tuple[str, str], int]:
        """Upsert each series' latest point, then insert the points; returns the series
        ids this transaction learned (none from a write spread over many series)."""
        if _spread_over_resources(points.rids) and tx.write_spread(_spread_columns(points)):
            return {}
        series = _series_of(points)
        last = latest_indexes(series, points.steps, points.stamps, points.orders)
        if _spread(len(last), len(series)) and tx.write_spread(_spread_columns(points)):
            return {}
        latest = sorted(last.items())  # in (resource, key) order: one lock order for all
        moved = tx.upsert_series(_series_rows(points, latest))
        known, found = self._series_ids(tx, [pair for pair, _ in latest], moved)
        cycle = points.cycle
        if len(known) == 1:  # one series: no lookup per point
            ids = [*known.values()] * len(series)
        elif cycle is not None:  # a dict per step: a lookup per key, not per point
            ids = list(map(known.__getitem__, series[:cycle])) * (len(series) // cycle)
        else:
            ids = list(map(known.__getitem__, series))
        columns = PointColumns(ids, points.steps, points.stamps, points.orders)
        tx.insert_points(columns)
        tx.mark_stale(known.values(), min(columns.step))
        self._count_written(known.values(), len(ids))
        return found

    def _count_written(self, series: Iterable[int], points: int) -> None:
        """Credit each of a write's ``series`` with its share of the write's ``points``: exact
        for one series and for a dict per step (the same keys each step); only the series
        that pass :data:`rollup.BUILD_AT_CLOSE` matter (:meth:`close`)."""
        ids = list(series)
        if len(ids) > TRACKED_SERIES_PER_BATCH:
            return
        share = points // len(ids)
        with self._lock:
            written = self._written
            for sid in ids:
                written[sid] = written.get(sid, 0) + share
            if len(written) > SERIES_CACHE_LIMIT:  # bounded memory: forget the small ones
                self._written = {s: n for s, n in written.items() if n >= rollup.BUILD_AT_CLOSE}

    def _series_ids(
        self, tx: Transaction, series: list[tuple[str, str]], moved: list[Row]
    ) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
        """The id of each of ``series``: those the upsert created or ``moved`` forward, the
        cached ones, and the rest by one statement of the store (PostgreSQL); returns them
        and those this transaction learned."""
        # Keyed by the batch's own pairs: their strings are the facade's (cached resources
        # and keys), not copies read from the database (the cache costs half as much).
        own = {pair: pair for pair in series}
        found = {own[rid, key]: sid for rid, key, sid in moved}
        unmoved = [pair for pair in series if pair not in found]
        if not unmoved:  # the usual case: every series was created or moved forward
            return found, found
        with self._lock:
            cached = self._series
            known = {pair: cached[pair] for pair in unmoved if pair in cached}
        known.update(found)
        missing = [pair for pair in unmoved if pair not in known]
        if missing:
            looked_up = {own[rid, key]: sid for rid, key, sid in tx.series_ids(missing)}
            known.update(looked_up)
            found.update(looked_up)
        return known, found

    # -- reads ----------------------------------------------------------------------------

    @hookimpl
    def history(self, resource: Resource, key: str) -> list[MetricPoint]:
        # The collector paused for the whole read: a collection between two pages would
        # walk every point built so far; the points are the caller's: kept.
        with gc_paused(kept=True):
            return self._store.history(resource.id, key, functools.partial(_points_of, key))

    @hookimpl
    def history_page(
        self, resource: Resource, key: str, cursor: str | None, limit: int
    ) -> HistoryPage:
        """Keyset paging: a series' points are unique by their order (the primary key), so
        the next page starts right after the last point's order; one row more than asked
        for says whether a page follows."""
        after = None if cursor is None else cursor_order(cursor)[0]
        return self._page(resource, key, after, limit)

    @hookimpl
    def history_page_after(
        self, resource: Resource, key: str, after: tuple[int, int, int], limit: int
    ) -> HistoryPage:
        """The same keyset range, starting right after ``after``: a live reader's seek."""
        return self._page(resource, key, after, limit)

    def _page(
        self, resource: Resource, key: str, after: PointOrder | None, limit: int
    ) -> HistoryPage:
        columns, more = self._page_columns(resource, key, after, limit)
        points = _points_of(key, *columns)
        return HistoryPage(points, order_cursor(points) if more else None)

    @hookimpl
    def history_columns_page(
        self, resource: Resource, key: str, cursor: str | None, limit: int
    ) -> ColumnsPage:
        """``history_page``'s keyset page (and cursor) as columns: the steps and timestamps
        as read, the values decoded from their orders in bulk; no point built."""
        after = None if cursor is None else cursor_order(cursor)[0]
        (steps, stamps, orders), more = self._page_columns(resource, key, after, limit)
        values = value_column(orders)
        # The cursor of the page's last point, the one point object of a page.
        last = [MetricPoint(key, values[-1], steps[-1], stamps[-1])] if more else []
        next_cursor = order_cursor(last) if last else None
        return ColumnsPage(array("q", steps), array("q", stamps), values, next_cursor)

    def _page_columns(
        self, resource: Resource, key: str, after: PointOrder | None, limit: int
    ) -> tuple[HistoryColumns, bool]:
        """Up to ``limit`` points after ``after`` as columns, and whether any follow them
        (one row more than asked for says so)."""
        steps, stamps, orders = self._store.history_page(resource.id, key, after, limit + 1)
        return (steps[:limit], stamps[:limit], orders[:limit]), len(steps) > limit

    @hookimpl
    def history_sampled(self, resource: Resource, key: str, max_points: int) -> list[MetricPoint]:
        return _points_of(key, *self._store.history_sampled(resource.id, key, max_points))

    @hookimpl
    def get_metric(self, resource: Resource, key: str) -> float | None:
        rows = self._store.query(schema.GET_METRIC, {"resource": resource.id, "key": key})
        return from_bits([rows[0][0]])[0] if rows else None

    @hookimpl
    def latest(self, resource: Resource) -> dict[str, float]:
        rows = self._store.query(schema.LATEST, {"resource": resource.id})
        return dict(zip([key for key, _ in rows], from_bits([b for _, b in rows]), strict=True))

    @hookimpl
    def resources(self) -> list[str]:
        return [rid for (rid,) in self._store.query(schema.RESOURCES, {})]

    @hookimpl
    def get_perf(self, resource: Resource) -> PerfRecord | None:
        rows = self._store.query(schema.GET_PERF, {"resource": resource.id})
        return PerfRecord(rows[0][0], from_bits([rows[0][1]])[0]) if rows else None

    @hookimpl
    def best(self, key: str, order: Literal["max", "min"], limit: int) -> list[tuple[str, float]]:
        rows = self._store.query(schema.BEST[order], {"key": key, "limit": limit})
        values = from_bits([bits for _, bits in rows])
        return [(rid, value) for (rid, _), value in zip(rows, values, strict=True)]

    # -- params and tags ------------------------------------------------------------------

    @hookimpl
    def log_params(self, resource: Resource, params: Mapping[str, ParamValue]) -> None:
        """Insert the params not held yet, then compare every one with what is held, in
        the transaction: a conflict rolls all of them back (two writers included)."""
        rows = [
            {"resource": resource.id, "key": k, "value": param_text(v)} for k, v in params.items()
        ]
        if not rows:
            return
        with self._store.transaction() as tx:
            tx.run_many(schema.INSERT_PARAM, rows)
            held = _decoded(tx.query(schema.GET_PARAMS, {"resource": resource.id}))
            raise_on_conflict(resource, held, params, self.capabilities())

    @hookimpl
    def get_params(self, resource: Resource) -> dict[str, ParamValue]:
        return _decoded(self._store.query(schema.GET_PARAMS, {"resource": resource.id}))

    @hookimpl
    def set_tags(self, resource: Resource, tags: Mapping[str, str]) -> None:
        rows = [{"resource": resource.id, "key": k, "value": v} for k, v in sorted(tags.items())]
        if not rows:
            return
        with self._store.transaction() as tx:
            tx.run_many(schema.SET_TAG, rows)

    @hookimpl
    def get_tags(self, resource: Resource) -> dict[str, str]:
        return dict(self._store.query(schema.GET_TAGS, {"resource": resource.id}))

    @hookimpl
    def tagged(self, key: str, value: str | None) -> list[str]:
        if value is None:
            rows = self._store.query(schema.TAGGED, {"key": key})
        else:
            rows = self._store.query(schema.TAGGED_VALUE, {"key": key, "value": value})
        return [rid for (rid,) in rows]

    # -- lifecycle ------------------------------------------------------------------------

    @hookimpl
    def capabilities(self) -> Capabilities:
        assert self._capabilities is not None  # every form of SQLFactory declares them
        return self._capabilities

    @hookimpl
    def flush(self) -> None:
        """Every write is committed when its hook returns; this makes it safe from power
        loss too (SQLite runs with ``synchronous=NORMAL``)."""
        self._store.sync()

    @hookimpl
    def close(self) -> None:
        """Builds the sampling rollup of each series this backend wrote in bulk
        (:meth:`_build_rollups`), then closes the store."""
        if not self._closed:
            self._closed = True
            try:
                self._build_rollups()
            finally:
                self._store.close()

    def _build_rollups(self) -> None:
        """The rollup (:mod:`trackplug_sql.rollup`) of every series this backend wrote at
        least :data:`rollup.BUILD_AT_CLOSE` points into, built or brought up to date in a
        persistent store: the first chart after a bulk load then reads blocks instead of
        building them (~0.5 s per 1,000,000 points, paid here instead, after the writes)."""
        if not self._store.persistent:
            return  # nobody reads it after close
        with self._lock:
            bulk = [sid for sid, count in self._written.items() if count >= rollup.BUILD_AT_CLOSE]
            self._written = {}
        for series in sorted(bulk):
            try:
                self._store.build_rollup(series)
            except BackendError as exc:  # the points are committed: only the build is lost
                warnings.warn(
                    f"{self.url}: the sampling rollup of a series written in bulk was not "
                    f"built at close; its first sampled read will build it ({exc})",
                    TrackplugWarning,
                    stacklevel=3,
                )
                return  # the store failed: the others would too


def _points_of(
    key: str, steps: Sequence[int], stamps: Sequence[int], orders: Sequence[int]
) -> list[MetricPoint]:
    """A series' points from its columns (a history, or a sample of it)."""
    with gc_paused():
        # tuple.__new__ in C, not MetricPoint._make (a Python call per point: 1.5x slower)
        rows = zip(repeat(key), from_orders(orders), steps, stamps)
        return list(map(tuple.__new__, repeat(MetricPoint), rows))


def _columns(batch: BatchColumns) -> _Points | None:
    """A write's columns as the write takes them (None: there is no point), with each
    point's value bits and order (the collector paused by the caller)."""
    rids, keys, values, steps, stamps = batch
    if not keys:
        return None
    bits = to_bits(values)
    # One resource (the usual batch): its series are its keys, whose period is found on the
    # strings; a dict per step then needs a pair per key, not per point (4.6 ms of 100,000).
    cycle = period(keys) if rids[0] == rids[-1] and rids.count(rids[0]) == len(rids) else None
    return _Points(rids, keys, values, steps, stamps, bits, to_orders(bits), cycle)


def _series_of(points: _Points) -> list[tuple[str, str]]:
    """Each point's series, a ``(resource id, key)`` pair: a pair per key, not per point,
    for a dict per step."""
    rids, keys, cycle = points.rids, points.keys, points.cycle
    if cycle is not None:
        return list(zip(rids[:cycle], keys[:cycle], strict=True)) * (len(keys) // cycle)
    return list(zip(rids, keys, strict=True))


def _spread(series: int, points: int) -> bool:
    """Whether a write of ``points`` into ``series`` series goes the spread way
    (``Transaction.write_spread``): many series of one point each, mostly (a run's first
    point into each of many resources). There a series' id is all its Python would be
    for, and the database finds it faster (docs/performance.md, "Series rows by SQL")."""
    return series > SPREAD_SERIES and points < 2 * series


def _spread_over_resources(rids: Sequence[str]) -> bool:
    """Whether a write goes the spread way (:func:`_spread`) by its resources alone: it
    has at least as many series as resources, so enough distinct resources decide it
    without a pair per point or a search for each series' latest point (a set of the ids,
    whose hashes are cached: ~3 ms of 100,000 points against ~30 ms). One resource (its
    first and last point the same resource) is not looked at."""
    points = len(rids)
    if points <= SPREAD_SERIES or rids[0] == rids[-1]:
        return False
    return _spread(len(set(rids)), points)


def _spread_columns(points: _Points) -> SpreadColumns:
    """The points as a spread write takes them (no copy: the columns themselves)."""
    return SpreadColumns(
        points.rids, points.keys, points.steps, points.stamps, points.orders, points.values
    )


def _series_rows(points: _Points, latest: list[tuple[tuple[str, str], int]]) -> list[SeriesRow]:
    """Each series' row as the upserts take it: its latest point."""
    _, _, values, steps, stamps, bits, orders, _ = points
    return [
        (rid, key, steps[i], stamps[i], orders[i], bits[i], best_order(orders[i]), values[i])
        for (rid, key), i in latest
    ]


def _decoded(rows: list[Any]) -> dict[str, ParamValue]:
    """Params as stored (JSON text) -> their values; the store's text is trackplug's own."""
    return {key: json.loads(text) for key, text in rows}


def _perf_params(rid: str, perf: PerfRecord) -> dict[str, object]:
    return {
        "resource": rid,
        "metric": perf.metric,
        "value_bits": float_bits(perf.value),
        "value": perf.value,
    }
