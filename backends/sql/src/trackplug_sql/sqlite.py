"""SQLite, on the standard library's ``sqlite3``: the embedded default.

Why not through SQLAlchemy: importing SQLAlchemy takes longer (~0.45 s on the reference
machine) than the whole budget of a fresh process that connects and writes one point
(0.3 s), and SQLite needs nothing from it: the same statements run here directly.

Tuning: WAL (readers never wait for the writer), ``synchronous=NORMAL`` (a commit is safe
from a crash of the process; :meth:`SQLiteStore.sync` makes it safe from power loss too), a
busy timeout, and ``BEGIN IMMEDIATE`` so concurrent writers queue for the lock at the start
of a transaction instead of failing with "database is locked" when they try to upgrade.
Opening a store is retried while SQLite answers "busy" without waiting (:func:`_retry_busy`).
"""

from __future__ import annotations

import functools
import json
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar
from urllib.parse import unquote, urlsplit

from trackplug import BackendError, ValidationError

from . import rollup, schema
from .checkpointer import Checkpointer, checkpoint
from .codec import period
from .schema import Migration, PointColumns, SeriesRow, SpreadColumns
from .store import (
    BuildPoints,
    HistoryColumns,
    Params,
    PointOrder,
    Row,
    Transaction,
    backend_errors,
    migrations_for,
    page_params,
    sample_plan,
    sampled_columns,
)

__all__ = ["SQLiteStore", "sqlite_path"]

#: Seconds a writer waits for another process's transaction before giving up; opening a
#: store retries for as long (:func:`_retry_busy`).
BUSY_TIMEOUT = 60.0
#: What sqlite3 raises when the database fails; each becomes a BackendError.
_FAILURES = (sqlite3.Error,)
#: Rows per multi-row INSERT (fewer if the SQLite build allows fewer parameters).
CHUNK_ROWS = 500
_ROW = f"({', '.join(['?'] * len(PointColumns._fields))})"
#: Points per page of a history read whole that is longer than this (:func:`_read_ahead`).
#: Each page's fetch hands the GIL over twice (its thread starts, its step ends while this
#: thread builds points): on a loaded machine each handover can wait for the scheduler,
#: so pages are long; the first page's fetch, which nothing runs beside, is ~30 ms.
READ_AHEAD_PAGE = 131_072

_T = TypeVar("_T")
_Point = TypeVar("_Point")


@functools.lru_cache(maxsize=16)
def _insert_points(rows: int) -> str:
    values = ", ".join([_ROW] * rows)
    return (
        f"INSERT INTO trackplug_points ({schema.POINT_COLUMNS}) VALUES {values} "
        "ON CONFLICT DO NOTHING"
    )


#: Whether this SQLite has RETURNING (3.35): then an upsert returns the ids it touched.
_RETURNING = sqlite3.sqlite_version_info >= (3, 35)
_UPSERT_ONE_SERIES = schema.upsert_series("VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
_upsert_series = functools.lru_cache(maxsize=16)(
    functools.partial(schema.upsert_series_values, placeholder="?")
)


#: The greatest series id: SQLite gives each row inserted without one the greatest + 1
#: (while it is below 2**63 - 1), so rows that all created series got consecutive ids.
_TOP_SERIES_ID = "SELECT coalesce(max(id), 0) FROM trackplug_series"
#: The points of the series an upsert of a spread write created, all greater than the
#: greatest id before it (``?``): a series created by a row holds that row's point, so no
#: parameter is bound twice.
_INSERT_CREATED = (
    f"INSERT INTO trackplug_points ({schema.POINT_COLUMNS}) "
    "SELECT id, step, timestamp_ms, value_order FROM trackplug_series WHERE id > ? "
    "ON CONFLICT DO NOTHING"
)
_upsert_spread = functools.lru_cache(maxsize=4)(
    functools.partial(schema.upsert_spread, placeholder="?")
)
_insert_spread = functools.lru_cache(maxsize=4)(
    functools.partial(schema.insert_spread, placeholder="?")
)
_mark_spread_stale = functools.lru_cache(maxsize=4)(
    functools.partial(schema.mark_spread_stale, placeholder="?")
)


@functools.lru_cache(maxsize=16)
def _series_ids(pairs: int) -> str:
    """The ids of ``pairs`` series, by a join on the series' unique index (a row-value
    ``IN (VALUES …)`` would scan the table)."""
    values = ", ".join(["(?, ?)"] * pairs)
    return (
        f"SELECT s.resource, s.key, s.id FROM (VALUES {values}) AS wanted "
        "JOIN trackplug_series AS s ON s.resource = wanted.column1 AND s.key = wanted.column2"
    )


@functools.lru_cache(maxsize=16)
def _mark_stale(series: int) -> str:
    """:data:`rollup.MARK_STALE` for ``series`` series at once: the step is ``?1``."""
    ids = ", ".join(["?"] * series)
    return (
        "UPDATE trackplug_rollups SET stale_from = ?1 "
        f"WHERE series IN ({ids}) AND (stale_from IS NULL OR stale_from > ?1)"
    )


# A history as three JSON arrays, and their length, in one row: sqlite3 builds a Python
# tuple per fetched row (~1.5 µs each), json.loads parses integers in C. The aggregates see
# the subquery's rows in its ORDER BY order: SQLite keeps a subquery's ORDER BY under an
# aggregate on purpose (rule 16 of its query flattener, for order-sensitive aggregates such
# as group_concat). The whole row is built in one step of the statement.
_JSON_ARRAYS = """
    SELECT json_group_array(step), json_group_array(timestamp_ms), json_group_array(value_order),
           count(*)
    FROM ({})
"""
_HISTORY_JSON = _JSON_ARRAYS.format(schema.HISTORY)
_PAGE_JSON = {after: _JSON_ARRAYS.format(sql) for after, sql in schema.HISTORY_PAGE.items()}
# A bucket's least and greatest points when every point has the same step (no rollup
# applies), or this SQLite has no JSON functions: SQLite returns the other columns of the
# row that MIN or MAX picked (its "bare columns" rule), and the range is a seek in the
# primary key, so a sample reads each point once per extreme. An empty bucket gives NULLs.
_IN_BUCKET = {
    "step": "step BETWEEN :low AND :high",
    "timestamp_ms": "step = :step AND timestamp_ms BETWEEN :low AND :high",
}
_BUCKET_EXTREME = {
    (extreme, column): f"SELECT step, timestamp_ms, {extreme}(value_order) "
    f"FROM trackplug_points WHERE series = :series AND {where}"
    for extreme in ("MIN", "MAX")
    for column, where in _IN_BUCKET.items()
}
# The rollup (rollup.py): each block's least and greatest points, built in one statement
# (by the same bare-column rule). The blocks that hold points are found by skipping from
# one to the next in the primary key; the end of the top block may overflow into a REAL,
# which still compares right. A point leaves its correlated subquery as one JSON array
# (the CTE is MATERIALIZED: else each json_extract would run the subquery again). A block
# keeps its extremes' bits too, rebuilt from their orders (schema.VALUE_BITS, evaluated on
# the row MIN or MAX picked).
_BLOCK_END = "(n << :shift) + :span"
_BLOCK_POINT = (
    f"(SELECT json_array(step, timestamp_ms, {{extreme}}(value_order), {schema.VALUE_BITS}) "
    f"FROM trackplug_points WHERE series = :series AND step BETWEEN n << :shift AND {_BLOCK_END})"
)
_BUILD_BLOCKS = f"""
    INSERT INTO trackplug_blocks
    WITH RECURSIVE blocks(n) AS (
        SELECT (SELECT step FROM trackplug_points WHERE series = :series AND step >= :from_step
                ORDER BY step LIMIT 1) >> :shift
        UNION ALL
        SELECT (SELECT step FROM trackplug_points WHERE series = :series AND step > {_BLOCK_END}
                ORDER BY step LIMIT 1) >> :shift
        FROM blocks WHERE n < :last_block),
    extremes AS MATERIALIZED (
        SELECT n, {_BLOCK_POINT.format(extreme="MIN")} AS least,
               {_BLOCK_POINT.format(extreme="MAX")} AS greatest
        FROM blocks WHERE n IS NOT NULL)
    SELECT :series, n, {
    ", ".join(f"json_extract({side}, '$[{i}]')" for side in ("least", "greatest") for i in range(4))
}
    FROM extremes
"""
# A bucket's candidates, each an index range read in history order: the least and the
# greatest of the extremes of the blocks it covers whole, of its points before them and of
# its points after them (NULLs where a range is empty). Python picks the bucket's two.


def _candidate(extreme: str, ranges: str) -> str:
    """The least (MIN) or greatest (MAX) point of a range of blocks or of steps."""
    if ranges == "blocks":
        pre = extreme.lower() + "_"
        return (
            f"SELECT {pre}step, {pre}timestamp_ms, {extreme}({pre}value_order) "
            "FROM trackplug_blocks WHERE series = :series "
            "AND block BETWEEN :blocks_low AND :blocks_high"
        )
    return (
        f"SELECT step, timestamp_ms, {extreme}(value_order) FROM trackplug_points "
        f"WHERE series = :series AND step BETWEEN :{ranges}_low AND :{ranges}_high"
    )


_ROLLUP_CANDIDATES = " UNION ALL ".join(
    _candidate(extreme, ranges)
    for ranges in ("blocks", "head", "tail")
    for extreme in ("MIN", "MAX")
)
_TABLE_EXISTS = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'trackplug_meta'"
_TABLES = "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name"
#: Tables every MLflow database store has (the tracking schema's own).
_MLFLOW_TABLES = {"experiments", "runs", "metrics", "alembic_version"}


def sqlite_path(url: str) -> str | None:
    """The file of ``sqlite:///path`` (relative) or ``sqlite:////abs/path``; None for the
    in-memory ``sqlite://`` and ``sqlite:///:memory:`` (SQLAlchemy's spelling)."""
    parts = urlsplit(url)
    if parts.scheme not in ("sqlite", "sqlite+pysqlite"):
        raise ValidationError(f"{url!r} is not a sqlite:// URL")
    if parts.netloc or parts.query or parts.fragment:
        raise ValidationError(
            f"{url!r} is not a SQLite URL: use sqlite:///relative/path.db, "
            "sqlite:////absolute/path.db or sqlite:// (in memory), without host or query"
        )
    path = unquote(parts.path[1:])
    return None if path in ("", ":memory:") else path


def _has_json(db: sqlite3.Connection) -> bool:
    """Whether this SQLite has the JSON functions (built in since 3.38, optional before)."""
    try:
        db.execute("SELECT json_array(1)")
    except sqlite3.OperationalError:
        return False
    return True


def _busy(exc: sqlite3.Error) -> bool:
    """SQLITE_BUSY, or one of its extended codes (BUSY_RECOVERY, BUSY_SNAPSHOT…)."""
    return exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY


def _retry_busy(open_db: Callable[[], sqlite3.Connection]) -> sqlite3.Connection:
    """``open_db()``, tried again with backoff while it fails with SQLITE_BUSY, for at most
    :data:`BUSY_TIMEOUT` seconds; then its last error is raised.

    SQLite skips the busy handler where waiting could deadlock: ``PRAGMA journal_mode=WAL``
    on a new file fails at once with "database is locked" while another connection holds
    the write lock (say a process creating the tables). Every step of opening is
    idempotent, so the whole sequence is tried again on a fresh connection.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT
    delay = 0.001
    while True:
        try:
            return open_db()
        except sqlite3.OperationalError as exc:
            remaining = deadline - time.monotonic()
            if not _busy(exc) or remaining <= 0:
                raise
            # Jitter: processes that collided once should not retry in lockstep.
            time.sleep(min(remaining, random.uniform(delay / 2, delay)))
            delay = min(2 * delay, 0.1)


@contextmanager
def _immediate(db: sqlite3.Connection) -> Iterator[None]:
    """A write transaction, rolled back on any error (an aborted statement alone would
    leave the transaction open, and what ran before it in place)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


@contextmanager
def _snapshot(db: sqlite3.Connection) -> Iterator[None]:
    """A read transaction: every statement in it sees the same committed state."""
    db.execute("BEGIN")
    try:
        yield
    finally:
        if db.in_transaction:  # SQLite ends it itself on some errors (a full disk…)
            db.execute("COMMIT")


def _build_blocks(tx: Transaction, series: int, shift: int, from_step: int, last: int) -> None:
    params = {"series": series, "shift": shift, "span": (1 << shift) - 1}
    tx.run(_BUILD_BLOCKS, {**params, "from_step": from_step, "last_block": last})


class _Transaction:
    def __init__(self, db: sqlite3.Connection, chunk: int) -> None:
        self._db = db
        self._chunk = chunk

    def run(self, sql: str, params: Params) -> None:
        self._db.execute(sql, params)

    def run_many(self, sql: str, rows: Sequence[Params]) -> None:
        self._db.executemany(sql, rows)

    def query(self, sql: str, params: Params) -> list[Row]:
        return self._db.execute(sql, params).fetchall()

    def mark_stale(self, series: Iterable[int], step: int) -> None:
        """Chunks of series per statement: one statement per series (``executemany``) was
        0.15 s of a write of one point into each of 100,000 resources."""
        ids = list(series)
        per_statement = 6 * self._chunk - 1  # within the build's limit, with the step
        for start in range(0, len(ids), per_statement):
            part = ids[start : start + per_statement]
            self._db.execute(_mark_stale(len(part)), [step, *part])

    def upsert_series(self, rows: Sequence[SeriesRow]) -> list[Row]:
        """Multi-row upserts returning the ids they touch (one statement per row, and none
        returned, on a SQLite without RETURNING)."""
        if not _RETURNING:
            self._db.executemany(_UPSERT_ONE_SERIES, rows)
            return []
        per_statement = 6 * self._chunk // 8  # 8 parameters a row
        touched: list[Row] = []
        for start in range(0, len(rows), per_statement):
            part = rows[start : start + per_statement]
            values = list(chain.from_iterable(part))
            touched += self._db.execute(_upsert_series(len(part)), values).fetchall()
        return touched

    def write_spread(self, columns: SpreadColumns) -> bool:
        """Each chunk of points upserted into the series by the same parameters, each new
        series' id found by the database; no id travels to Python and back (a new series:
        4.5 -> 2.3 µs). A run of chunks whose every row created its series (the usual
        case: a run's first point into each of many resources) takes its points from those
        series' rows, in one statement once the run ends: a statement hands the GIL over
        twice, and the caller's thread may keep it for a switch interval each time. The
        parameters are one flat list, filled a column at a time in C, each chunk a slice."""
        mark = bool(self._db.execute(schema.ANY_ROLLUP).fetchall())
        width = len(columns)
        flat = _interleaved(columns, len(columns.resource))
        per_statement = width * self._chunk  # 6 parameters a row: within the build's limit
        top, rowid = self._top_id()
        run = _Run(start=0, after_id=top)  # chunks that each created all their series
        for start in range(0, len(flat), per_statement):
            part = flat[start : start + per_statement]
            rows = len(part) // width
            # The connection's last inserted rowid, which an update leaves as it was: each
            # series created got top + 1, top + 2...; every row created one iff it moved
            # to top + rows (another table's row may have left it anywhere).
            last = self._db.execute(_upsert_spread(rows), part).lastrowid
            if last != rowid and last == top + rows:
                top = rowid = last
            else:  # a series stored or twice: its upsert may have moved the run's rows
                self._insert_run(flat, run, start)
                self._db.execute(_insert_spread(rows), part)
                top, rowid = self._top_id()
                run = _Run(start + len(part), top)
            if mark:
                self._db.execute(_mark_spread_stale(rows), part)
        if run.after_id < top:  # nothing moved the run's series since: each row is its point
            self._db.execute(_INSERT_CREATED, (run.after_id,))
        return True

    def _insert_run(self, flat: list[Any], run: _Run, end: int) -> None:
        """The points of a run of created series (``flat[run.start:end]``, ids from
        ``run.after_id + 1`` in row order) by their parameters: a later upsert may have
        moved a series of the run forward, so its row may no longer be its point."""
        if end > run.start:
            width = len(SpreadColumns._fields)
            rows = flat[run.start : end]
            ids = list(range(run.after_id + 1, run.after_id + 1 + len(rows) // width))
            self.insert_points(PointColumns(ids, rows[2::width], rows[3::width], rows[4::width]))

    def _top_id(self) -> tuple[int, int | None]:
        """The greatest series id, and the connection's last inserted rowid."""
        cursor = self._db.execute(_TOP_SERIES_ID)
        (top,) = cursor.fetchone()
        return int(top), cursor.lastrowid

    def series_ids(self, series: Sequence[tuple[str, str]]) -> list[Row]:
        per_statement = 3 * self._chunk  # 6 * chunk parameters: within the build's limit
        found: list[Row] = []
        for start in range(0, len(series), per_statement):
            pairs = series[start : start + per_statement]
            found += self._db.execute(_series_ids(len(pairs)), list(chain.from_iterable(pairs)))
        return found

    def insert_points(self, columns: PointColumns) -> None:
        """Multi-row INSERTs of ``chunk`` rows, not ``executemany``: sqlite3 releases the GIL
        around every statement step, so one step per row makes the background flusher wait
        for the GIL once per row while the caller's thread keeps logging (a convoy: batches
        then pile up to the facade's ``max_buffer``). One step per 500 rows lets SQLite's
        work run beside the caller's. Parameters are positional: sqlite3 binds them in C."""
        flat = _in_index_order(columns)
        width = len(columns) * self._chunk
        for start in range(0, len(flat), width):
            part = flat[start : start + width]
            self._db.execute(_insert_points(len(part) // len(columns)), part)


class _Run(NamedTuple):
    """Chunks of a spread write that each created all their series: their parameters
    start at ``start`` of the flat list, their series' ids follow ``after_id``."""

    start: int
    after_id: int


def _in_index_order(columns: PointColumns) -> list[int]:
    """The rows' parameters as one flat list, each series' rows together in their order:
    each series' rows then go in as one run of appends, not one B-tree descent per row
    hopping between series (100 keys a step: 1.4x the rate). A batch of a dict per step
    (its series repeat with a period) is reordered by slicing its columns, filled into the
    list a column at a time by slice assignment, in C (a tuple per row, sorted and chained,
    cost 4x as much on 100,000 rows of 100 series); any other by a stable sort of its rows
    (sorting a permutation and applying it to each column was 1.2x slower when the series
    ids come shuffled: many resources logged in an order other than their ids')."""
    series = columns.series
    cycle = period(series)
    if cycle is None and len(set(series)) > 1:
        rows = sorted(zip(*columns, strict=True), key=itemgetter(0))  # stable
        return list(chain.from_iterable(rows))
    ordered: Sequence[Iterable[int]] = columns  # one series: in its order already
    if cycle is not None and cycle > 1:
        strides = _strides(cycle)
        ordered = [chain.from_iterable(map(column.__getitem__, strides)) for column in columns]
    return _interleaved(ordered, len(series))


def _interleaved(columns: Sequence[Iterable[Any]], rows: int) -> list[Any]:
    """``rows`` rows of ``columns`` as one flat list of parameters, row after row, filled
    a column at a time by slice assignment, in C (no tuple per row)."""
    width = len(columns)
    flat: list[Any] = [None] * (width * rows)
    for offset, column in enumerate(columns):
        flat[offset::width] = column
    return flat


def _strides(cycle: int) -> list[slice]:
    """The slices that take each of ``cycle`` interleaved sequences out of their weave."""
    return [slice(start, None, cycle) for start in range(cycle)]


def _series_params(resource: str, key: str) -> Params:
    return {"resource": resource, "key": key}


def _columns(rows: list[Row]) -> HistoryColumns:
    """History rows as columns (SQLite without the JSON functions)."""
    return tuple(zip(*rows, strict=True)) if rows else ([], [], [])  # type: ignore[return-value]


def _parsed(row: Row) -> HistoryColumns:
    """A row of :data:`_JSON_ARRAYS` as columns."""
    steps, stamps, orders, _ = row
    return (json.loads(steps), json.loads(stamps), json.loads(orders))


def _read_ahead(
    fetch: Callable[[PointOrder | None, int], Row], build: BuildPoints[_Point], limit: int
) -> list[_Point]:
    """A history fetched ``limit`` points a page (a row of :data:`_JSON_ARRAYS`), each
    page's points parsed and built in this thread while the next page is fetched in
    another: sqlite3 lets go of the GIL while SQLite steps, and SQLite builds a whole page
    in one step, so its work runs beside Python's (for a million points, ~220 ms of SQLite
    beside ~350 ms of Python). A history of at most ``limit`` points is one fetch and no
    thread. The caller holds the store's lock and a read transaction; a fetch starts when
    the one before it has ended, and this thread leaves the connection alone meanwhile, so
    one thread at a time uses it."""
    page = fetch(None, limit)
    points: list[_Point] = []
    while True:
        after = _after_page(page, limit)
        ahead = None if after is None else _Ahead(functools.partial(fetch, after, limit))
        try:
            points += build(*_parsed(page))
        finally:
            if ahead is not None:
                ahead.wait()  # also when build failed: no thread is left on the connection
        if ahead is None:
            return points
        page = ahead.result()


def _after_page(page: Row, limit: int) -> PointOrder | None:
    """Where the page after ``page`` starts: right after its last point, read off the ends
    of its arrays (none parsed yet); None when it is not full (the history ends in it)."""
    *arrays, count = page
    if count < limit:
        return None
    step, stamp, order = (_last(array) for array in arrays)
    return step, stamp, order


def _last(array: str) -> int:
    """The last integer of a JSON array of integers that is not empty."""
    return int(array[max(array.rfind(","), 0) + 1 : -1])


class _Ahead(Generic[_T]):
    """``call()`` run at once in a thread of its own; :meth:`result` waits for it, then
    returns what it returned or raises what it raised, in the caller's thread (where a
    driver's error meets the store's error mapping)."""

    def __init__(self, call: Callable[[], _T]) -> None:
        self._value: _T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(call,), name="trackplug-sqlite-read-ahead", daemon=True
        )
        self._thread.start()

    def _run(self, call: Callable[[], _T]) -> None:
        try:
            self._value = call()
        except BaseException as exc:  # handed to the caller's thread by result()
            self._error = exc

    def wait(self) -> None:
        self._thread.join()

    def result(self) -> _T:
        self.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]  # call() returned it


class SQLiteStore:
    """One connection shared by the tracker's threads under a lock (the facade writes
    from one thread at a time anyway); other processes coordinate through SQLite's locks."""

    def __init__(self, url: str, path: str | None) -> None:
        self.url = url
        self.persistent = path is not None
        self._lock = threading.Lock()
        where = f"file {str(Path(path).resolve())!r}" if path else "memory"
        with backend_errors(f"cannot open SQLite database {url} ({where})", _FAILURES):
            self._db = _retry_busy(lambda: self._connect(path))
        # WAL checkpoints off the writer's commits (a file's alone: memory has no log)
        self._checkpointer = Checkpointer(path, self._db, BUSY_TIMEOUT) if path else None

    def __repr__(self) -> str:
        return f"SQLiteStore({self.url!r})"

    def _connect(self, path: str | None) -> sqlite3.Connection:
        db = sqlite3.connect(
            path or ":memory:",
            timeout=BUSY_TIMEOUT,
            isolation_level=None,  # we issue BEGIN and COMMIT ourselves
            check_same_thread=False,  # guarded by self._lock
        )
        try:
            self._refuse_foreign(db)  # before anything below can change the file
            if path is not None and db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode=WAL")  # persistent: set once per file
            db.execute("PRAGMA synchronous=NORMAL")
            self._json = _has_json(db)
            self._chunk = min(CHUNK_ROWS, db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // 6)
            self._open_schema(db)
        except BaseException:
            db.close()
            raise
        return db

    def _refuse_foreign(self, db: sqlite3.Connection) -> None:
        """Refuse a database that holds anything but trackplug's tables (an MLflow store
        opened as ``sqlite://`` by a slip, say), before a byte of it changes: no tables
        added, no switch to WAL. Reading the schema changes nothing."""
        tables = [name for (name,) in db.execute(_TABLES)]
        if not tables or "trackplug_meta" in tables:
            return
        shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
        hint = (
            f"; it looks like an MLflow store: open it with mlflow+{self.url}"
            if set(tables) >= _MLFLOW_TABLES
            else ""
        )
        raise BackendError(
            f"{self.url} is a SQLite database that is not a trackplug store (its tables: "
            f"{shown}); trackplug does not change a database it did not create{hint}"
        )

    def _open_schema(self, db: sqlite3.Connection) -> None:
        """Create version 1's tables in a new database, then run the migrations it needs,
        all in one transaction (one writer at a time: another process may be doing it)."""
        if db.execute(_TABLE_EXISTS).fetchall() and not self._migrations(db):
            return  # the usual case: nothing to write
        with _immediate(db):
            if not db.execute(_TABLE_EXISTS).fetchall():
                for ddl in schema.SQLITE_DDL:
                    db.execute(ddl)
                db.execute(schema.SET_VERSION)
            for migration in self._migrations(db):  # again: another process may have run them
                for statement in migration.sqlite:
                    db.execute(statement)
                db.execute(schema.UPGRADE_VERSION, {"version": str(migration.version)})

    def _migrations(self, db: sqlite3.Connection) -> tuple[Migration, ...]:
        found = db.execute(schema.GET_VERSION).fetchall()
        return migrations_for(found[0][0] if found else None, self.url)

    def _errors(self) -> AbstractContextManager[None]:
        return backend_errors(f"SQLite store {self.url}", _FAILURES)

    @contextmanager
    def transaction(self) -> Iterator[_Transaction]:
        with self._errors(), self._lock:
            with _immediate(self._db):
                yield _Transaction(self._db, self._chunk)
            if self._checkpointer is not None:
                self._checkpointer.committed()

    def query(self, sql: str, params: Params) -> list[Row]:
        with self._errors(), self._lock:
            return self._db.execute(sql, params).fetchall()

    def history(self, resource: str, key: str, build: BuildPoints[_Point]) -> list[_Point]:
        """With the JSON functions, pages read ahead in one read transaction
        (:func:`_read_ahead`), under the lock: the flusher's write waits for the read."""
        if not self._json:
            return build(*_columns(self.query(schema.HISTORY, _series_params(resource, key))))
        fetch = functools.partial(self._json_page, resource, key)
        with self._errors(), self._lock, _snapshot(self._db):
            return _read_ahead(fetch, build, READ_AHEAD_PAGE)

    def history_page(
        self, resource: str, key: str, after: PointOrder | None, limit: int
    ) -> HistoryColumns:
        if not self._json:
            params = page_params(resource, key, after, limit)
            return _columns(self.query(schema.HISTORY_PAGE[after is not None], params))
        with self._errors(), self._lock:
            row = self._json_page(resource, key, after, limit)
        return _parsed(row)

    def _json_page(self, resource: str, key: str, after: PointOrder | None, limit: int) -> Row:
        """A row of :data:`_JSON_ARRAYS`: up to ``limit`` points after ``after``. Unlocked:
        the caller holds the lock."""
        params = page_params(resource, key, after, limit)
        row: Row = self._db.execute(_PAGE_JSON[after is not None], params).fetchone()
        return row

    def _history(
        self, query: Callable[[str, Params], list[Row]], resource: str, key: str
    ) -> HistoryColumns:
        if not self._json:
            return _columns(query(schema.HISTORY, _series_params(resource, key)))
        (row,) = query(_HISTORY_JSON, _series_params(resource, key))
        return _parsed(row)

    def history_sampled(self, resource: str, key: str, max_points: int) -> HistoryColumns:
        """A read transaction (a snapshot, while a run may be logging); when the series'
        rollup is stale, a write transaction that rebuilds it, then reads."""
        with self._errors(), self._lock:
            tx = _Transaction(self._db, self._chunk)
            with _snapshot(self._db):
                sample = self._sampled(tx, resource, key, max_points, refresh=False)
            if sample is None:
                with _immediate(self._db):
                    sample = self._sampled(tx, resource, key, max_points, refresh=True)
            assert sample is not None  # refresh=True always samples
            return sample

    def _sampled(
        self, tx: _Transaction, resource: str, key: str, max_points: int, refresh: bool
    ) -> HistoryColumns | None:
        """The sample; None when the rollup it needs is stale and ``refresh`` is False."""
        found = tx.query(schema.SERIES_ID, {"resource": resource, "key": key})
        if not found:
            return ([], [], [])
        series = found[0][0]
        plan = sample_plan(tx.query, series, max_points)
        if plan is None:
            return self._history(tx.query, resource, key)
        rows: list[Row] = [plan.first, plan.last]
        if plan.column == "step" and self._json:
            shift = rollup.fresh_shift(tx.query, series)
            if shift is None:
                if not refresh:
                    return None
                shift = rollup.refresh(tx, series, plan, _build_blocks)
            for low, high in plan.buckets:
                ranges = rollup.bucket_ranges(low, high, shift)
                found = tx.query(_ROLLUP_CANDIDATES, {"series": series, **ranges.params()})
                rows.extend(rollup.extremes(found[0::2], found[1::2]))
            return sampled_columns(rows)
        for low, high in plan.buckets:
            params = {"series": series, "low": low, "high": high, "step": plan.first[0]}
            for extreme in ("MIN", "MAX"):
                (row,) = tx.query(_BUCKET_EXTREME[extreme, plan.column], params)
                if row[2] is not None:
                    rows.append(row)
        return sampled_columns(rows)

    def build_rollup(self, series: int) -> bool:
        """:func:`rollup.build_ahead` in a write transaction (nothing without the JSON
        functions: the sample then reads the points)."""
        if not self._json:
            return False
        with self.transaction() as tx:
            return rollup.build_ahead(tx, series, _build_blocks)

    def sync(self) -> None:
        """A passive checkpoint fsyncs the WAL (then copies it into the database file)
        without waiting for readers or writers of other processes; after the background
        checkpoint running, if any (one at a time: a second would return at once, busy)."""
        if self._checkpointer is not None:
            with self._errors(), self._lock, self._checkpointer.lock:
                checkpoint(self._db)

    def close(self) -> None:
        with self._errors(), self._lock:
            if self._checkpointer is not None:
                self._checkpointer.close()
            self._db.close()
