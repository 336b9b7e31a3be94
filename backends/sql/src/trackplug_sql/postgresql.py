"""PostgreSQL, through a SQLAlchemy engine on psycopg 3: the store a team shares.

SQLAlchemy parses the URL, pools connections and binds the ``:name`` parameters of the
shared statements in transactions (``text()``); the hot paths go to the psycopg cursor of the
same connection and transaction: a write's points are copied (COPY binary) straight into
the points table, and many series rows (or points with a duplicate) through a staging table
of the session moved by one statement (no per-row round trip, no array parameters dumped
as text). Reads of one statement run on autocommit psycopg connections the store holds
itself (:mod:`trackplug_sql.readers`: no SQLAlchemy on their path), a history and its pages
as three arrays.
psycopg's exceptions and SQLAlchemy's alike become a BackendError by the one rule of
:func:`~trackplug_sql.store.backend_errors`.
Imported only when a ``postgresql://`` URL is opened.
"""

from __future__ import annotations

import functools
import math
import re
import sys
import weakref
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from itertools import chain
from typing import Any, TypeVar

import psycopg
from sqlalchemy import URL, Connection, Engine, TextClause, create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError

from trackplug import BackendError, ValidationError, redact_url
from trackplug.plugin import Watchdog, cut_socket, timeout_of

from . import rollup, schema
from .readers import Reader, Readers
from .schema import Migration, PointColumns, SeriesRow, SpreadColumns
from .store import (
    POSTGRESQL_SCHEMES,
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

__all__ = ["DEFAULT_TIMEOUT", "PostgreSQLStore", "engine_url"]

DRIVER = "postgresql+psycopg"
#: Seconds any operation may wait for the server (``?timeout=`` in the URL): opening a
#: connection, and each transaction or read from its first statement to its commit.
DEFAULT_TIMEOUT = 30.0
TIMEOUT_PARAM = "timeout"
# Any constant: concurrent first connections take this lock to create the tables once
# (CREATE TABLE IF NOT EXISTS alone races in PostgreSQL).
_SCHEMA_LOCK = 0x7472_6B70  # "trkp"
# Many series rows, and a batch of points with a duplicate, go through staging tables of the
# session: COPY (binary) fills them, then one INSERT … SELECT moves them into the store's
# tables. They are created on a connection's first such write and emptied by every commit.
_STAGED_SERIES = "pg_temp.trackplug_staged_series"
_STAGED_POINTS = "pg_temp.trackplug_staged_points"
_CREATE_STAGING = (
    'CREATE TEMP TABLE IF NOT EXISTS trackplug_staged_series (resource TEXT COLLATE "C", '
    'key TEXT COLLATE "C", step BIGINT, timestamp_ms BIGINT, value_order BIGINT, '
    "value_bits BIGINT, best_order BIGINT, value DOUBLE PRECISION) ON COMMIT DELETE ROWS; "
    "CREATE TEMP TABLE IF NOT EXISTS trackplug_staged_points (series BIGINT, step BIGINT, "
    "timestamp_ms BIGINT, value_order BIGINT) ON COMMIT DELETE ROWS"
)
_SERIES_TYPES = ("text", "text", "int8", "int8", "int8", "int8", "int8", "float8")
_POINT_TYPES = ("int8",) * len(PointColumns._fields)
# In (resource, key) order: one lock order for every writer.
_UPSERT_STAGED_SERIES = (
    schema.upsert_series(
        f"SELECT {schema.SERIES_COLUMNS} FROM {_STAGED_SERIES} ORDER BY resource, key"
    )
    + schema.RETURNING_SERIES
)
#: Up to this many series rows go in as one VALUES statement: one round trip, where COPY
#: takes three (most writes touch a few series: one per key logged).
_SERIES_IN_VALUES = 500
_upsert_series_values = functools.lru_cache(maxsize=16)(
    functools.partial(schema.upsert_series_values, placeholder="%s")
)


# Usually every point of a batch is new: COPY goes straight into the points table, under a
# savepoint (COPY writes a WAL record per heap page rather than per row; the former staging
# + plain INSERT … SELECT cost the server 1.5x the CPU: 200 vs 130 ms per 50,000 rows). The first
# duplicate, in the store or in the batch, fails the COPY with a unique violation; the
# transaction rolls back to the savepoint and the same rows go in through the staging table
# with exact duplicates ignored by the primary key: the same rule either way. Writers of one
# series never race here: each locks the series' row first (its upsert) until it commits.
_POINTS_COPY = f"COPY trackplug_points ({schema.POINT_COLUMNS}) FROM STDIN (FORMAT BINARY)"
_SAVEPOINT = "SAVEPOINT trackplug_points"
_ROLLBACK_TO_SAVEPOINT = "ROLLBACK TO SAVEPOINT trackplug_points"
_MOVE_SKIPPING_DUPLICATES = (
    f"INSERT INTO trackplug_points ({schema.POINT_COLUMNS}) "
    f"SELECT {schema.POINT_COLUMNS} FROM {_STAGED_POINTS} ON CONFLICT DO NOTHING"
)
# Binary arrays (%b): psycopg dumps a text array in text format with one regex per item.
_SERIES_IDS = (
    "SELECT s.resource, s.key, s.id FROM unnest(%b::text[], %b::text[]) AS wanted (resource, key) "
    'JOIN trackplug_series AS s ON s.resource = wanted.resource COLLATE "C" '
    'AND s.key = wanted.key COLLATE "C"'
)
# rollup.MARK_STALE for every series of a batch in one statement: a statement per series
# (executemany) made a write of 1 point into each of 100,000 resources 1.6x slower.
_MARK_STALE = (
    "UPDATE trackplug_rollups SET stale_from = %(step)s WHERE series = ANY(%(series)s::bigint[]) "
    "AND (stale_from IS NULL OR stale_from > %(step)s)"
)
# A history as three columns of packed big-endian int8s (int8send), aggregated over the
# ordered rows: the client unpacks each column in C (array.array), with no per-element
# parsing, and the values' orders become floats without an int each (codec.from_orders;
# 1.3x faster than three binary array_agg). Aggregated over the subquery, not with
# string_agg(… ORDER BY …), which PostgreSQL 15 would sort once per column, spilling past
# work_mem, whatever index gives the order: the subquery's rows come in order from an
# index-only scan of the primary key and nothing between them and the aggregate reorders them.
_PACKED = (
    "SELECT string_agg(int8send(step), ''), string_agg(int8send(timestamp_ms), ''), "
    "string_agg(int8send(value_order), '') FROM ({}) AS h"
)
# Every bucket's least and greatest points in one statement, when every point has the same
# step (no rollup applies): width_bucket numbers a point's bucket by the buckets' lower
# bounds after the first; DISTINCT ON keeps one row per bucket (of equal values, the first
# in history order, as the model does).
_SAMPLE_ONE_STEP = """
    WITH p AS (
        SELECT step, timestamp_ms, value_order,
               width_bucket(timestamp_ms, %(starts)s::bigint[]) AS bucket
        FROM trackplug_points WHERE series = %(series)s AND step = %(step)s)
    (SELECT DISTINCT ON (bucket) step, timestamp_ms, value_order
     FROM p ORDER BY bucket, value_order, step, timestamp_ms)
    UNION
    (SELECT DISTINCT ON (bucket) step, timestamp_ms, value_order
     FROM p ORDER BY bucket, value_order DESC, step, timestamp_ms)
"""
# The rollup (rollup.py): each block's least and greatest points in one pass over the
# points from the stale step on (a hash aggregate): the least point is the lexicographic
# min of (value_order, step, timestamp_ms), i.e. ties by history order; the greatest the
# min of the same with ~value_order (bitwise NOT: reverses the order, never overflows).
# Two DISTINCT ON sorts of every point took 6x as long (2.76 s vs 0.44 s for 1,000,000
# points, load 10). The extremes' bits are rebuilt from their orders (schema.value_bits).
_BUILD_BLOCKS = f"""
    INSERT INTO trackplug_blocks
    SELECT :series, block, lo[2], lo[3], lo[1], {schema.value_bits("lo[1]")},
           hi[2], hi[3], ~hi[1], {schema.value_bits("~hi[1]")}
    FROM (SELECT step >> :shift AS block,
                 min(ARRAY[value_order, step, timestamp_ms]) AS lo,
                 min(ARRAY[~value_order, step, timestamp_ms]) AS hi
          FROM trackplug_points WHERE series = :series AND step >= :from_step
          GROUP BY 1) AS b
"""
#: Serializes a rebuild against the series' writers, which lock its row first (its upsert).
_LOCK_SERIES = "SELECT 1 FROM trackplug_series WHERE id = :series FOR UPDATE"
# Every bucket's least and greatest points: of the extremes of the blocks it covers whole and
# of its points outside them, one LATERAL pair per bucket.
_CANDIDATES = """
    SELECT {prefix}_step AS step, {prefix}_timestamp_ms AS timestamp_ms,
           {prefix}_value_order AS value_order
    FROM trackplug_blocks
    WHERE series = %(series)s AND block BETWEEN b.blocks_low AND b.blocks_high
    UNION ALL
    SELECT step, timestamp_ms, value_order FROM trackplug_points
    WHERE series = %(series)s AND step BETWEEN b.head_low AND b.head_high
    UNION ALL
    SELECT step, timestamp_ms, value_order FROM trackplug_points
    WHERE series = %(series)s AND step BETWEEN b.tail_low AND b.tail_high
"""
_RANGES = ("blocks_low", "blocks_high", "head_low", "head_high", "tail_low", "tail_high")
_SAMPLE_ROLLUP = f"""
    SELECT e.step, e.timestamp_ms, e.value_order
    FROM unnest({", ".join(f"%({name})s::bigint[]" for name in _RANGES)})
        AS b({", ".join(_RANGES)})
    CROSS JOIN LATERAL (
        (SELECT * FROM ({_CANDIDATES.format(prefix="min")}) AS c
         ORDER BY value_order, step, timestamp_ms LIMIT 1)
        UNION ALL
        (SELECT * FROM ({_CANDIDATES.format(prefix="max")}) AS c
         ORDER BY value_order DESC, step, timestamp_ms LIMIT 1)) AS e
"""
_SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
_TABLE_EXISTS = "SELECT to_regclass('trackplug_meta') IS NOT NULL"
#: What fails when the database does: SQLAlchemy's errors (connecting, pooling, and the
#: statements it runs) and psycopg's (the two paths on its cursor).
_FAILURES = (SQLAlchemyError, psycopg.Error)
T = TypeVar("T")
_Point = TypeVar("_Point")


def engine_url(url: str) -> str:
    """``postgresql://`` and ``postgresql+psycopg://`` URLs (or ``postgres``…, as libpq
    accepts), as SQLAlchemy's psycopg 3 dialect spells them (another driver is refused:
    its options would not apply; SQLAlchemy itself refuses ``postgres://``)."""
    scheme = url.partition("://")[0].lower()
    base, _, driver = scheme.partition("+")
    if base not in POSTGRESQL_SCHEMES or driver not in ("", "psycopg"):
        raise ValidationError(
            f"{redact_url(url)!r}: trackplug-sql reaches PostgreSQL through psycopg 3; "
            f"use postgresql:// or {DRIVER}://"
        )
    return DRIVER + url[len(scheme) :]


def bounded_url(url: str) -> tuple[URL, float]:
    """The engine URL without trackplug's ``timeout`` parameter, and that timeout (seconds,
    default :data:`DEFAULT_TIMEOUT`). libpq's own bounds default to it unless the URL sets
    them: ``connect_timeout`` (whole seconds) for opening a connection, ``tcp_user_timeout``
    (ms) for a peer that stops acknowledging what is sent."""
    parsed = make_url(engine_url(url))
    given = parsed.query.get(TIMEOUT_PARAM, ())
    timeout = timeout_of(url, [given] if isinstance(given, str) else given, DEFAULT_TIMEOUT)
    defaults = {
        "connect_timeout": str(max(1, math.ceil(timeout))),
        "tcp_user_timeout": str(math.ceil(timeout * 1000)),
    }
    missing = {name: value for name, value in defaults.items() if name not in parsed.query}
    return parsed.difference_update_query([TIMEOUT_PARAM]).update_query_dict(missing), timeout


@functools.cache
def _text(sql: str) -> TextClause:
    return text(sql)


@functools.cache
def _psycopg_sql(sql: str) -> str:
    """A shared statement (``:name`` parameters) in psycopg's spelling (``%(name)s``)."""
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql.replace("%", "%%"))


# The LIMIT out of the planner's sight, for the ordered plan whatever the table's statistics:
# on a table never analyzed (freshly filled, or autovacuum off) PostgreSQL guesses a series
# at a few thousand rows and, given a LIMIT above its guess (or none), reads the whole rest
# of the series by a bitmap scan and sorts it: a page in the middle of 5M points took 6 s
# instead of 23 ms, the first pages of an iter_history each read the whole series, and a
# history sorted on disk. A LIMIT it cannot evaluate (a scalar subquery; NULL is no limit)
# makes it plan for 10% of the rows, and the index-only scan in key order, which stops
# early and needs no sort, wins; with statistics it is the plan chosen anyway.
_HISTORY_PACKED = _psycopg_sql(
    _PACKED.format(schema.history_statement(after=False, limit=" LIMIT (SELECT NULL::bigint)"))
)
_PAGE_PACKED = {
    after: _psycopg_sql(
        _PACKED.format(schema.history_statement(after, " LIMIT (SELECT CAST(:limit AS bigint))"))
    )
    for after in (False, True)
}


def _driver(conn: Connection) -> psycopg.Connection[Any]:
    """The psycopg connection under a SQLAlchemy one."""
    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)  # a pooled connection is never detached
    return driver


def _rows(reader: Reader, sql: str, params: Params) -> list[Row]:
    return reader.rows(sql, params)


def _packed(reader: Reader, sql: str, params: Params) -> HistoryColumns:
    """:func:`_columns` on a cursor of its own: the reader's would keep the packed history
    (large) until its next read."""
    return _columns(reader.connection, sql, params)


def _columns(conn: psycopg.Connection[Any], sql: str, params: Params) -> HistoryColumns:
    """History columns fetched packed (one of the :data:`_PACKED` statements), as arrays."""
    row = conn.execute(sql, params, binary=True).fetchone()
    if row is None or row[0] is None:
        return ([], [], [])
    return (_unpacked(row[0]), _unpacked(row[1]), _unpacked(row[2]))


def _unpacked(packed: bytes) -> array[int]:
    """int8send's big-endian int8s as an ``array("q")``."""
    column = array("q", packed)
    if sys.byteorder == "little":
        column.byteswap()
    return column


class _Transaction:
    """A write's statements share round trips where they can: after each one the flusher
    thread waits for the GIL again, up to the switch interval (5 ms) while the caller's
    thread logs (a 1-point write beside a busy thread took 22-53 ms, 2-4 ms alone). The
    savepoint of :meth:`insert_points` goes with the series upsert, the rollups marked
    stale with the COMMIT: five round trips, not seven."""

    def __init__(self, conn: Connection, staged: weakref.WeakSet[psycopg.Connection[Any]]) -> None:
        self._conn = conn
        self._staged = staged
        #: Whether this transaction created the staging tables (kept once it commits).
        self.created_staging = False
        #: Whether the savepoint :meth:`insert_points` rolls back to is set.
        self._savepoint_set = False
        #: The statement sent with the COMMIT (:meth:`commit`) and its parameters.
        self._at_commit: tuple[str, Params] | None = None

    def run(self, sql: str, params: Params) -> None:
        self._conn.execute(_text(sql), dict(params))

    def run_many(self, sql: str, rows: Sequence[Params]) -> None:
        self._conn.execute(_text(sql), [dict(row) for row in rows])

    def query(self, sql: str, params: Params) -> list[Row]:
        return [tuple(row) for row in self._conn.execute(_text(sql), dict(params))]

    def _cursor(self) -> psycopg.Cursor[Any]:
        """A psycopg cursor on this transaction's connection."""
        cursor: psycopg.Cursor[Any] = _driver(self._conn).cursor()
        return cursor

    def _then(self, sql: str, params: Sequence[Any] | Params, then: str) -> list[Row]:
        """``sql`` and the statement ``then`` as one query (one round trip), the rows of
        ``sql``: bound by the client, as a query of several statements takes no server-side
        parameters."""
        with psycopg.ClientCursor(_driver(self._conn)) as cursor:
            cursor.execute(f"{sql}; {then}", params)
            return cursor.fetchall() if cursor.description else []

    def _stage(self, table: str, types: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """COPY binary of ``rows`` into a staging table (created first on a new connection)."""
        with self._cursor() as cursor:
            if not self.created_staging and _driver(self._conn) not in self._staged:
                cursor.execute(_CREATE_STAGING)
                self.created_staging = True
            _copy(cursor, f"COPY {table} FROM STDIN (FORMAT BINARY)", types, rows)

    def upsert_series(self, rows: Sequence[SeriesRow]) -> list[Row]:
        """One statement: of VALUES for a few rows, else from rows staged by COPY (one
        statement per row, as for a write of one point into each of 100,000 resources,
        would cost more than the rest of the write); with the savepoint of the points
        that follow them (nothing between the two writes)."""
        self._savepoint_set = True
        if len(rows) <= _SERIES_IN_VALUES:
            values = list(chain.from_iterable(rows))
            return self._then(_upsert_series_values(len(rows)), values, _SAVEPOINT)
        self._stage(_STAGED_SERIES, _SERIES_TYPES, rows)
        return self._then(_UPSERT_STAGED_SERIES, (), _SAVEPOINT)

    def write_spread(self, columns: SpreadColumns) -> bool:
        return False  # the ids' way: series staged by COPY, points by COPY (one round each)

    def series_ids(self, series: Sequence[tuple[str, str]]) -> list[Row]:
        """One statement, however many series."""
        rids, keys = zip(*series, strict=True)
        with self._cursor() as cursor:
            return cursor.execute(_SERIES_IDS, (list(rids), list(keys))).fetchall()

    def insert_points(self, columns: PointColumns) -> None:
        """COPY straight into the points table; on a duplicate, staged and moved with
        duplicates ignored (:data:`_POINTS_COPY`). PostgreSQL runs ``INSERT … SELECT FROM
        unnest(…)`` row by row and psycopg dumps array parameters as text (3x slower)."""
        with self._cursor() as cursor:
            if not self._savepoint_set:
                cursor.execute(_SAVEPOINT)
            self._savepoint_set = False  # this COPY uses it
            try:
                _copy(cursor, _POINTS_COPY, _POINT_TYPES, zip(*columns, strict=True))
                return
            except psycopg.errors.UniqueViolation:
                cursor.execute(_ROLLBACK_TO_SAVEPOINT)
        self._stage(_STAGED_POINTS, _POINT_TYPES, zip(*columns, strict=True))
        with self._cursor() as cursor:
            cursor.execute(_MOVE_SKIPPING_DUPLICATES)

    def mark_stale(self, series: Iterable[int], step: int) -> None:
        """Sent with the COMMIT (:meth:`commit`): a write's last statement, and nothing in
        a transaction reads the rollups after marking them."""
        assert self._at_commit is None  # one write of points per transaction
        self._at_commit = (_MARK_STALE, {"series": list(series), "step": step})

    def commit(self) -> None:
        """The statement waiting for the COMMIT, and the COMMIT, in one round trip; the
        ``with conn.begin()`` block ending then finds no transaction to commit (psycopg
        commits an idle connection as a no-op). Without one, that block commits."""
        if self._at_commit is not None:
            sql, params = self._at_commit
            self._then(sql, params, "COMMIT")

    def history(self, resource: str, key: str) -> HistoryColumns:
        return _columns(_driver(self._conn), _HISTORY_PACKED, {"resource": resource, "key": key})

    def history_sampled(
        self, resource: str, key: str, max_points: int, refresh: bool
    ) -> HistoryColumns | None:
        """The sample; None when the rollup it needs is stale and ``refresh`` is False."""
        found = self.query(schema.SERIES_ID, {"resource": resource, "key": key})
        if not found:
            return ([], [], [])
        series = found[0][0]
        plan = sample_plan(self.query, series, max_points)
        if plan is None:
            return self.history(resource, key)
        if plan.column == "timestamp_ms":
            starts = [low for low, _ in plan.buckets[1:]]
            params = {"series": series, "starts": starts, "step": plan.first[0]}
            return sampled_columns([plan.first, plan.last, *self._fetch(_SAMPLE_ONE_STEP, params)])
        shift = rollup.fresh_shift(self.query, series)
        if shift is None:
            if not refresh:
                return None
            shift = rollup.refresh(self, series, plan, _build_blocks, _LOCK_SERIES)
        buckets = [rollup.bucket_ranges(low, high, shift).params() for low, high in plan.buckets]
        columns = {name: [bucket[name] for bucket in buckets] for name in buckets[0]}
        rows = self._fetch(_SAMPLE_ROLLUP, {"series": series, **columns})
        return sampled_columns([plan.first, plan.last, *rows])

    def _fetch(self, sql: str, params: Params) -> list[Row]:
        with self._cursor() as cursor:
            return cursor.execute(sql, params).fetchall()


def _copy(
    cursor: psycopg.Cursor[Any], sql: str, types: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """One ``COPY … FROM STDIN (FORMAT BINARY)`` of ``rows``, each of ``types``."""
    with cursor.copy(sql) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


def _build_blocks(tx: Transaction, series: int, shift: int, from_step: int, last: int) -> None:
    tx.run(_BUILD_BLOCKS, {"series": series, "shift": shift, "from_step": from_step})


class PostgreSQLStore:
    """A connection pool for transactions (each checks out one connection), and the
    connections of one-statement reads (:class:`~trackplug_sql.readers.Readers`)."""

    persistent = True

    def __init__(self, url: str) -> None:
        self.url = redact_url(url)
        self._given_url = url  # its password is scrubbed from every error
        # One rule object for every operation (it keeps no state between uses).
        self._error_rule = backend_errors(f"PostgreSQL store {self.url}", _FAILURES, url)
        with backend_errors(f"cannot open PostgreSQL store {self.url}", _FAILURES, url):
            target, timeout = bounded_url(url)
            self._watchdog = Watchdog(timeout, "trackplug-sql watchdog")
            #: The pooled connections whose session has the staging table.
            self._staged: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()
            self._engine = create_engine(target, pool_pre_ping=False)
            # Reads of one statement need no transaction (BEGIN and COMMIT were two of their
            # three round trips): autocommit connections, opened as the engine opens its own.
            args, kwargs = self._engine.dialect.create_connect_args(target)
            self._readers = Readers(
                functools.partial(self._open_reader, *args, autocommit=True, **kwargs),
                f"PostgreSQL store {self.url}",
                wait=timeout,  # as long as any operation may wait for the server
            )
            try:
                self._open_schema()
            except BaseException:
                self.close()
                raise

    def __repr__(self) -> str:
        return f"PostgreSQLStore({self.url!r})"

    def _open_schema(self) -> None:
        """Create version 1's tables in a new database, then run the migrations it needs,
        in one transaction, under a lock other openers wait for. Outside
        :meth:`transaction`: its failures are the open's (``cannot open …``)."""
        with self._bounded_transaction() as tx:
            if tx.query(_TABLE_EXISTS, {})[0][0] and not self._migrations(tx):
                return  # the usual case: nothing to write
            tx.run("SELECT pg_advisory_xact_lock(:lock)", {"lock": _SCHEMA_LOCK})
            # READ COMMITTED: from here each statement sees what the lock's last holder did.
            if not tx.query(_TABLE_EXISTS, {})[0][0]:
                for ddl in schema.POSTGRESQL_DDL:
                    tx.run(ddl, {})
                tx.run(schema.SET_VERSION, {})
            for migration in self._migrations(tx):
                for statement in migration.postgresql:
                    tx.run(statement, {})
                tx.run(schema.UPGRADE_VERSION, {"version": str(migration.version)})

    def _migrations(self, tx: _Transaction) -> tuple[Migration, ...]:
        found = tx.query(schema.GET_VERSION, {})
        return migrations_for(found[0][0] if found else None, self.url)

    def _errors(self) -> AbstractContextManager[None]:
        return self._error_rule

    @contextmanager
    def transaction(self) -> Iterator[_Transaction]:
        """Also the reads' and the fast paths': whatever fails in here (the server refused,
        went away, timed out, a statement failed) is translated once, here."""
        with self._errors(), self._bounded_transaction() as tx:
            yield tx

    @contextmanager
    def _bounded_transaction(self) -> Iterator[_Transaction]:
        """A transaction on a pooled connection, from its first statement to its commit
        bounded by the watchdog (opening the connection is bounded by ``connect_timeout``)."""
        with self._bounded(self._engine) as conn:
            with conn.begin():
                tx = _Transaction(conn, self._staged)
                yield tx
                tx.commit()
            if tx.created_staging:  # committed: the session keeps the table
                self._staged.add(_driver(conn))

    @contextmanager
    def _bounded(self, engine: Engine) -> Iterator[Connection]:
        """A pooled connection of ``engine``, bounded by the watchdog until the block ends;
        a connection that was cut, or that psycopg found broken, is never reused."""
        with (
            self._connect(engine) as conn,
            self._watchdog.watch(functools.partial(cut_socket, _driver(conn).fileno())) as watch,
        ):
            try:
                yield conn
            except Exception as exc:
                if not watch.fired:
                    if _driver(conn).broken:  # on psycopg's own path SQLAlchemy cannot see it
                        conn.invalidate()
                    raise
                conn.invalidate()
                raise self._timed_out() from getattr(exc, "orig", None) or exc
            if watch.fired:  # it finished as it was cut: never reuse the connection
                conn.invalidate()

    def _reading(self, read: Callable[[Reader, str, Params], T], sql: str, params: Params) -> T:
        """``read(reader, sql, params)`` on an idle reader: bounded by the watchdog, its
        errors translated; the reader is given back (after the watch, which could still cut
        its connection) unless the watchdog cut it or it is unsound. Plain ``with`` blocks
        and ``try``: a read is too short for generator context managers (~1-5 µs each)."""
        with self._errors():
            reader = self._readers.take()
            cut = False
            try:
                with self._watchdog.watch(reader.cut) as watch:
                    try:
                        return read(reader, sql, params)
                    except Exception as exc:
                        if watch.fired:
                            raise self._timed_out() from exc
                        raise
                    finally:
                        cut = watch.fired  # asked within the watch: it forgets on leaving
            finally:
                self._readers.give_back(reader, cut)

    @contextmanager
    def _connect(self, engine: Engine) -> Iterator[Connection]:
        """A pooled connection of ``engine``."""
        with self._opening():
            conn = engine.connect()
        with conn:
            yield conn

    def _open_reader(self, *args: Any, **kwargs: Any) -> psycopg.Connection[Any]:
        with self._opening():
            return psycopg.Connection.connect(*args, **kwargs)

    @contextmanager
    def _opening(self) -> Iterator[None]:
        """Opening a connection: libpq's ``connect_timeout`` expiring is the same timeout
        (from psycopg, or wrapped by SQLAlchemy)."""
        try:
            yield
        except (SQLAlchemyError, psycopg.errors.ConnectionTimeout) as exc:
            cause = getattr(exc, "orig", exc)
            if isinstance(cause, psycopg.errors.ConnectionTimeout):
                raise self._timed_out() from cause
            raise

    def _timed_out(self) -> BackendError:
        return BackendError(
            f"PostgreSQL store {self.url} did not answer within {self._watchdog.timeout:g} s "
            f"(the server is stopped, overloaded or unreachable; set the bound with "
            f"?{TIMEOUT_PARAM}=<seconds>)"
        )

    def query(self, sql: str, params: Params) -> list[Row]:
        """Prepared on a reader (:meth:`~trackplug_sql.readers.Reader.rows`): SQLAlchemy's
        ``text()``, and psycopg's cursor, cost more than the round trip."""
        return self._reading(_rows, sql, params)

    def history(self, resource: str, key: str, build: BuildPoints[_Point]) -> list[_Point]:
        """Fetched as three arrays instead of one Python row per point, in one statement."""
        params = {"resource": resource, "key": key}
        return build(*self._reading(_packed, _HISTORY_PACKED, params))

    def history_page(
        self, resource: str, key: str, after: PointOrder | None, limit: int
    ) -> HistoryColumns:
        params = page_params(resource, key, after, limit)
        return self._reading(_packed, _PAGE_PACKED[after is not None], params)

    def history_sampled(self, resource: str, key: str, max_points: int) -> HistoryColumns:
        """A repeatable-read transaction (a snapshot, while a run may be logging); when the
        series' rollup is stale, a transaction that rebuilds it under the series' lock,
        then reads."""
        with self.transaction() as tx:
            tx.run(_SNAPSHOT, {})
            sample = tx.history_sampled(resource, key, max_points, refresh=False)
        if sample is None:
            with self.transaction() as tx:
                sample = tx.history_sampled(resource, key, max_points, refresh=True)
        assert sample is not None  # refresh=True always samples
        return sample

    def build_rollup(self, series: int) -> bool:
        """:func:`rollup.build_ahead` in a transaction, under the series' lock."""
        with self.transaction() as tx:
            return rollup.build_ahead(tx, series, _build_blocks, _LOCK_SERIES)

    def sync(self) -> None:
        """Nothing to do: a committed transaction is durable in PostgreSQL."""

    def close(self) -> None:
        self._watchdog.stop()
        with self._errors():
            self._engine.dispose()
            self._readers.close()
