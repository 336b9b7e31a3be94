"""PostgreSQL, through a SQLAlchemy engine on psycopg 3: the store a team shares.

SQLAlchemy parses the URL, pools connections and binds the ``:name`` parameters of the
shared statements in transactions (``text()``); the bulk insert goes to the psycopg cursor of
the same connection and transaction: a batch of points is ONE ``INSERT … SELECT FROM
unnest(…)`` with six array parameters (no per-row round trip). Reads of one statement run on
autocommit connections of their own pool, on psycopg's cursor (a history and its pages as
three arrays). psycopg's exceptions and SQLAlchemy's alike become a BackendError by the one
rule of :func:`~trackplug_sql.store.backend_errors`.
Imported only when a ``postgresql://`` URL is opened.
"""

from __future__ import annotations

import functools
import math
import re
import sys
from array import array
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg
from sqlalchemy import URL, Connection, Engine, TextClause, create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError

from trackplug import BackendError, ValidationError, redact_url
from trackplug.plugin import Watchdog, cut_socket, timeout_of

from . import schema
from .backend import POSTGRESQL_SCHEMES
from .schema import Migration, PointColumns
from .store import (
    HistoryColumns,
    Params,
    PointOrder,
    Row,
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
_INSERT_POINTS = (
    f"INSERT INTO trackplug_points ({schema.POINT_COLUMNS}) "
    "SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], "
    "%s::bigint[], %s::float8[]) ON CONFLICT DO NOTHING"
)
# A history as three columns of packed big-endian int8s (int8send), aggregated over the
# ordered rows: the client unpacks each column in C (array.array), with no per-element
# parsing, and the values' bits become floats without an int each (1.3x faster than three
# binary array_agg). Aggregated over the subquery, not with string_agg(… ORDER BY …), which
# PostgreSQL 15 would sort once per column, spilling past work_mem, whatever index gives the
# order: the subquery's rows come in order from an index-only scan of the primary key and
# nothing between them and the aggregate reorders them.
_PACKED = (
    "SELECT string_agg(int8send(step), ''), string_agg(int8send(timestamp_ms), ''), "
    "string_agg(int8send(value_bits), '') FROM ({}) AS h"
)
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


@functools.cache
def _psycopg_sql(sql: str) -> str:
    """A shared statement (``:name`` parameters) in psycopg's spelling (``%(name)s``)."""
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql.replace("%", "%%"))


_HISTORY_PACKED = _psycopg_sql(_PACKED.format(schema.HISTORY))
_PAGE_PACKED = {
    after: _psycopg_sql(_PACKED.format(sql)) for after, sql in schema.HISTORY_PAGE.items()
}


def _driver(conn: Connection) -> psycopg.Connection[Any]:
    """The psycopg connection under a SQLAlchemy one."""
    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)  # a pooled connection is never detached
    return driver


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
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

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

    def insert_points(self, columns: PointColumns) -> None:
        with self._cursor() as cursor:
            cursor.execute(_INSERT_POINTS, [list(column) for column in columns])

    def history(self, resource: str, key: str) -> HistoryColumns:
        return _columns(_driver(self._conn), _HISTORY_PACKED, {"resource": resource, "key": key})

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
            self._engine = create_engine(target, pool_pre_ping=False)
            # Reads of one statement need no transaction: BEGIN and COMMIT were two of
            # their three round trips. Their own pool, of autocommit connections.
            self._reader = create_engine(target, pool_pre_ping=False, isolation_level="AUTOCOMMIT")
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
        with self._bounded(self._engine) as conn, conn.begin():
            yield _Transaction(conn)

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

    @contextmanager
    def _read(self) -> Iterator[psycopg.Connection[Any]]:
        """The psycopg connection of one autocommit read: bounded, its errors translated."""
        with self._errors(), self._bounded(self._reader) as conn:
            yield _driver(conn)

    @contextmanager
    def _connect(self, engine: Engine) -> Iterator[Connection]:
        """A pooled connection; libpq's ``connect_timeout`` expiring is the same timeout."""
        try:
            conn = engine.connect()
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
        """On psycopg's cursor: SQLAlchemy's ``text()`` costs more than the round trip."""
        with self._read() as conn:
            return conn.execute(_psycopg_sql(sql), params).fetchall()

    def history(self, resource: str, key: str) -> HistoryColumns:
        """Fetched as three arrays instead of one Python row per point."""
        with self._read() as conn:
            return _columns(conn, _HISTORY_PACKED, {"resource": resource, "key": key})

    def history_page(
        self, resource: str, key: str, after: PointOrder | None, limit: int
    ) -> HistoryColumns:
        params = page_params(resource, key, after, limit)
        with self._read() as conn:
            return _columns(conn, _PAGE_PACKED[after is not None], params)

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
            self._reader.dispose()
