"""PostgreSQL, through a SQLAlchemy engine on psycopg 3: the store a team shares.

SQLAlchemy parses the URL, pools connections and binds the ``:name`` parameters of the
shared statements (``text()``); the hot paths go to the psycopg cursor of the same
connection and transaction: a write's series rows and points are copied (COPY binary) into
staging tables of the session and moved by one statement each (no per-row round trip, no
array parameters dumped as text), and a history is fetched as three arrays. These paths
raise psycopg's exceptions, the rest SQLAlchemy's: every one of them becomes a BackendError
by the one rule of :func:`~trackplug_sql.store.backend_errors`.
Imported only when a ``postgresql://`` URL is opened.
"""

from __future__ import annotations

import functools
import math
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from itertools import chain
from typing import Any

import psycopg
from sqlalchemy import URL, Connection, TextClause, create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError

from trackplug import BackendError, ValidationError, redact_url
from trackplug.plugin import Watchdog, cut_socket, timeout_of

from . import schema
from .backend import POSTGRESQL_SCHEMES
from .schema import Migration, PointColumns, SeriesRow
from .store import (
    HistoryColumns,
    Params,
    Row,
    backend_errors,
    migrations_for,
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
# A write's series rows and points go through staging tables of the session: COPY (binary)
# fills them, then one INSERT … SELECT each moves them into the store's tables. They are
# created once per connection and emptied by every commit.
_STAGED_SERIES = "pg_temp.trackplug_staged_series"
_STAGED_POINTS = "pg_temp.trackplug_staged_points"
_CREATE_STAGING = (
    'CREATE TEMP TABLE IF NOT EXISTS trackplug_staged_series (resource TEXT COLLATE "C", '
    'key TEXT COLLATE "C", step BIGINT, timestamp_ms BIGINT, value_order BIGINT, '
    "value_bits BIGINT, best_order BIGINT, value DOUBLE PRECISION) ON COMMIT DELETE ROWS; "
    "CREATE TEMP TABLE IF NOT EXISTS trackplug_staged_points (series BIGINT, step BIGINT, "
    "timestamp_ms BIGINT, value_order BIGINT, value_bits BIGINT, value DOUBLE PRECISION) "
    "ON COMMIT DELETE ROWS"
)
_SERIES_TYPES = ("text", "text", "int8", "int8", "int8", "int8", "int8", "float8")
_POINT_TYPES = ("int8", "int8", "int8", "int8", "int8", "float8")
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


_MOVE_STAGED_POINTS = (
    f"INSERT INTO trackplug_points ({schema.POINT_COLUMNS}) "
    f"SELECT {schema.POINT_COLUMNS} FROM {_STAGED_POINTS}"
)
# Usually every point is new: a plain INSERT (under a savepoint) checks the key once per
# row; ON CONFLICT's speculative insertion checks it twice (2.3x the time). The first
# duplicate, in the store or in the batch, rolls back to the savepoint, and the same rows
# go in again with exact duplicates ignored by the primary key: the same rule either way.
_MOVE_NEW = f"SAVEPOINT trackplug_move; {_MOVE_STAGED_POINTS}"
_MOVE_SKIPPING_DUPLICATES = (
    f"ROLLBACK TO SAVEPOINT trackplug_move; {_MOVE_STAGED_POINTS} ON CONFLICT DO NOTHING"
)
# Binary arrays (%b): psycopg dumps a text array in text format with one regex per item.
_SERIES_IDS = (
    "SELECT s.resource, s.key, s.id FROM unnest(%b::text[], %b::text[]) AS wanted (resource, key) "
    'JOIN trackplug_series AS s ON s.resource = wanted.resource COLLATE "C" '
    'AND s.key = wanted.key COLLATE "C"'
)
_HISTORY_ARRAYS = """
    SELECT array_agg(step ORDER BY step, timestamp_ms, value_order),
           array_agg(timestamp_ms ORDER BY step, timestamp_ms, value_order),
           array_agg(value_bits ORDER BY step, timestamp_ms, value_order)
    FROM trackplug_points
    WHERE series = (SELECT id FROM trackplug_series WHERE resource = %s AND key = %s)
"""
# Every bucket's least and greatest points in one statement: width_bucket numbers a point's
# bucket by the buckets' lower bounds after the first; DISTINCT ON keeps one row per bucket
# (of equal values, the first in history order, as the model and SQLite's MIN do).
_SAMPLE = {
    column: f"""
    WITH p AS (
        SELECT step, timestamp_ms, value_order, value_bits,
               width_bucket({column}, %(starts)s::bigint[]) AS bucket
        FROM trackplug_points WHERE series = %(series)s {extra})
    (SELECT DISTINCT ON (bucket) step, timestamp_ms, value_order, value_bits
     FROM p ORDER BY bucket, value_order, step, timestamp_ms)
    UNION
    (SELECT DISTINCT ON (bucket) step, timestamp_ms, value_order, value_bits
     FROM p ORDER BY bucket, value_order DESC, step, timestamp_ms)
    """
    for column, extra in (("step", ""), ("timestamp_ms", "AND step = %(step)s"))
}
_TABLE_EXISTS = "SELECT to_regclass('trackplug_meta') IS NOT NULL"
#: What fails when the database does: SQLAlchemy's errors (connecting, pooling, and the
#: statements it runs) and psycopg's (the two paths on its cursor).
_FAILURES = (SQLAlchemyError, psycopg.Error)


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


def _driver(conn: Connection) -> psycopg.Connection[Any]:
    """The psycopg connection under a SQLAlchemy one."""
    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)  # a pooled connection is never detached
    return driver


class _Transaction:
    def __init__(self, conn: Connection, staged: weakref.WeakSet[psycopg.Connection[Any]]) -> None:
        self._conn = conn
        self._staged = staged
        #: Whether this transaction created the staging tables (kept once it commits).
        self.created_staging = False

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

    def _copy(self, table: str, types: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """COPY binary of ``rows`` into a staging table (created first on a new connection)."""
        with self._cursor() as cursor:
            if not self.created_staging and _driver(self._conn) not in self._staged:
                cursor.execute(_CREATE_STAGING)
                self.created_staging = True
            with cursor.copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)

    def upsert_series(self, rows: Sequence[SeriesRow]) -> list[Row]:
        """One statement: of VALUES for a few rows, else from rows staged by COPY (one
        statement per row, as for a write of one point into each of 100,000 resources,
        would cost more than the rest of the write)."""
        if len(rows) <= _SERIES_IN_VALUES:
            with self._cursor() as cursor:
                sql = _upsert_series_values(len(rows))
                return cursor.execute(sql, list(chain.from_iterable(rows))).fetchall()
        self._copy(_STAGED_SERIES, _SERIES_TYPES, rows)
        with self._cursor() as cursor:
            return cursor.execute(_UPSERT_STAGED_SERIES).fetchall()

    def series_ids(self, series: Sequence[tuple[str, str]]) -> list[Row]:
        """One statement, however many series."""
        rids, keys = zip(*series, strict=True)
        with self._cursor() as cursor:
            return cursor.execute(_SERIES_IDS, (list(rids), list(keys))).fetchall()

    def insert_points(self, columns: PointColumns) -> None:
        """Staged, then one INSERT … SELECT: PostgreSQL runs ``INSERT … SELECT FROM
        unnest(…)`` row by row and psycopg dumps array parameters as text (3x slower)."""
        self._copy(_STAGED_POINTS, _POINT_TYPES, zip(*columns, strict=True))
        with self._cursor() as cursor:
            try:
                cursor.execute(_MOVE_NEW)
            except psycopg.errors.UniqueViolation:
                cursor.execute(_MOVE_SKIPPING_DUPLICATES)

    def history(self, resource: str, key: str) -> HistoryColumns:
        with self._cursor() as cursor:
            row = cursor.execute(_HISTORY_ARRAYS, (resource, key)).fetchone()
        return ([], [], []) if row is None or row[0] is None else (row[0], row[1], row[2])

    def history_sampled(self, resource: str, key: str, max_points: int) -> HistoryColumns:
        found = self.query(schema.SERIES_ID, {"resource": resource, "key": key})
        if not found:
            return ([], [], [])
        series = found[0][0]
        plan = sample_plan(self.query, series, max_points)
        if plan is None:
            return self.history(resource, key)
        starts = [low for low, _ in plan.buckets[1:]]
        params = {"series": series, "starts": starts, "step": plan.first[0]}
        with self._cursor() as cursor:
            rows = cursor.execute(_SAMPLE[plan.column], params).fetchall()
        return sampled_columns([plan.first, plan.last, *rows])


class PostgreSQLStore:
    """A connection pool; each transaction or read checks out one connection."""

    persistent = True

    def __init__(self, url: str) -> None:
        self.url = redact_url(url)
        self._given_url = url  # its password is scrubbed from every error
        with backend_errors(f"cannot open PostgreSQL store {self.url}", _FAILURES, url):
            target, timeout = bounded_url(url)
            self._watchdog = Watchdog(timeout, "trackplug-sql watchdog")
            #: The pooled connections whose session has the staging table.
            self._staged: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()
            self._engine = create_engine(target, pool_pre_ping=False)
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
        return backend_errors(f"PostgreSQL store {self.url}", _FAILURES, self._given_url)

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
        with (
            self._connect() as conn,
            self._watchdog.watch(functools.partial(cut_socket, _driver(conn).fileno())) as watch,
        ):
            try:
                with conn.begin():
                    tx = _Transaction(conn, self._staged)
                    yield tx
                if tx.created_staging:  # committed: the session keeps the table
                    self._staged.add(_driver(conn))
            except Exception as exc:
                if not watch.fired:
                    raise
                conn.invalidate()
                raise self._timed_out() from getattr(exc, "orig", None) or exc
            if watch.fired:  # it finished as it was cut: never reuse the connection
                conn.invalidate()

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        """A pooled connection; libpq's ``connect_timeout`` expiring is the same timeout."""
        try:
            conn = self._engine.connect()
        except SQLAlchemyError as exc:
            if isinstance(exc.orig, psycopg.errors.ConnectionTimeout):  # type: ignore[attr-defined]
                raise self._timed_out() from exc.orig  # type: ignore[attr-defined]
            raise
        with conn:
            yield conn

    def _timed_out(self) -> BackendError:
        return BackendError(
            f"PostgreSQL store {self.url} did not answer within {self._watchdog.timeout:g} s "
            f"(the server is stopped, overloaded or unreachable; set the bound with "
            f"?{TIMEOUT_PARAM}=<seconds>)"
        )

    def query(self, sql: str, params: Params) -> list[Row]:
        with self.transaction() as tx:
            return tx.query(sql, params)

    def history(self, resource: str, key: str) -> HistoryColumns:
        """Fetched as three arrays instead of one Python row per point."""
        with self.transaction() as tx:
            return tx.history(resource, key)

    def history_sampled(self, resource: str, key: str, max_points: int) -> HistoryColumns:
        """In one transaction (a snapshot, while a run may be logging)."""
        with self.transaction() as tx:
            return tx.history_sampled(resource, key, max_points)

    def sync(self) -> None:
        """Nothing to do: a committed transaction is durable in PostgreSQL."""

    def close(self) -> None:
        self._watchdog.stop()
        with self._errors():
            self._engine.dispose()
