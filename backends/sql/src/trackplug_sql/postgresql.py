"""PostgreSQL, through a SQLAlchemy engine on psycopg 3: the store a team shares.

SQLAlchemy parses the URL, pools connections and binds the ``:name`` parameters of the
shared statements (``text()``); the two hot paths go to the psycopg cursor of the same
connection and transaction: a batch of points is ONE ``INSERT … SELECT FROM unnest(…)`` with
six array parameters (no per-row round trip), and a history is fetched as three arrays.
Both paths raise psycopg's exceptions, the rest SQLAlchemy's: every one of them becomes a
BackendError by the one rule of :func:`~trackplug_sql.store.backend_errors`.
Imported only when a ``postgresql://`` URL is opened.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg
from sqlalchemy import URL, Connection, TextClause, create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError

from trackplug import BackendError, ValidationError, redact_url
from trackplug.plugin import Watchdog, cut_socket, timeout_of

from . import rollup, schema
from .backend import POSTGRESQL_SCHEMES
from .schema import Migration, PointColumns
from .store import (
    HistoryColumns,
    Params,
    Row,
    Transaction,
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
_INSERT_POINTS = (
    f"INSERT INTO trackplug_points ({schema.POINT_COLUMNS}) "
    "SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], "
    "%s::bigint[], %s::float8[]) ON CONFLICT DO NOTHING"
)
_HISTORY_ARRAYS = """
    SELECT array_agg(step ORDER BY step, timestamp_ms, value_order),
           array_agg(timestamp_ms ORDER BY step, timestamp_ms, value_order),
           array_agg(value_bits ORDER BY step, timestamp_ms, value_order)
    FROM trackplug_points
    WHERE series = (SELECT id FROM trackplug_series WHERE resource = %s AND key = %s)
"""
# Every bucket's least and greatest points in one statement, when every point has the same
# step (no rollup applies): width_bucket numbers a point's bucket by the buckets' lower
# bounds after the first; DISTINCT ON keeps one row per bucket (of equal values, the first
# in history order, as the model does).
_SAMPLE_ONE_STEP = """
    WITH p AS (
        SELECT step, timestamp_ms, value_order, value_bits,
               width_bucket(timestamp_ms, %(starts)s::bigint[]) AS bucket
        FROM trackplug_points WHERE series = %(series)s AND step = %(step)s)
    (SELECT DISTINCT ON (bucket) step, timestamp_ms, value_order, value_bits
     FROM p ORDER BY bucket, value_order, step, timestamp_ms)
    UNION
    (SELECT DISTINCT ON (bucket) step, timestamp_ms, value_order, value_bits
     FROM p ORDER BY bucket, value_order DESC, step, timestamp_ms)
"""
# The rollup (rollup.py): each block's least and greatest points, from one sort of the
# points from the stale step on.
_BUILD_BLOCKS = """
    INSERT INTO trackplug_blocks
    SELECT least.series, least.block,
           least.step, least.timestamp_ms, least.value_order, least.value_bits,
           greatest.step, greatest.timestamp_ms, greatest.value_order, greatest.value_bits
    FROM (SELECT DISTINCT ON (block) * FROM (
            SELECT series, step >> :shift AS block, step, timestamp_ms, value_order, value_bits
            FROM trackplug_points WHERE series = :series AND step >= :from_step) AS p
          ORDER BY block, value_order, step, timestamp_ms) AS least
    JOIN (SELECT DISTINCT ON (block) * FROM (
            SELECT step >> :shift AS block, step, timestamp_ms, value_order, value_bits
            FROM trackplug_points WHERE series = :series AND step >= :from_step) AS p
          ORDER BY block, value_order DESC, step, timestamp_ms) AS greatest
    USING (block)
"""
#: Serializes a rebuild against the series' writers, which lock its row first (its upsert).
_LOCK_SERIES = "SELECT 1 FROM trackplug_series WHERE id = :series FOR UPDATE"
# Every bucket's least and greatest points: of the extremes of the blocks it covers whole and
# of its points outside them, one LATERAL pair per bucket.
_CANDIDATES = """
    SELECT {prefix}_step AS step, {prefix}_timestamp_ms AS timestamp_ms,
           {prefix}_value_order AS value_order, {prefix}_value_bits AS value_bits
    FROM trackplug_blocks
    WHERE series = %(series)s AND block BETWEEN b.blocks_low AND b.blocks_high
    UNION ALL
    SELECT step, timestamp_ms, value_order, value_bits FROM trackplug_points
    WHERE series = %(series)s AND step BETWEEN b.head_low AND b.head_high
    UNION ALL
    SELECT step, timestamp_ms, value_order, value_bits FROM trackplug_points
    WHERE series = %(series)s AND step BETWEEN b.tail_low AND b.tail_high
"""
_RANGES = ("blocks_low", "blocks_high", "head_low", "head_high", "tail_low", "tail_high")
_SAMPLE_ROLLUP = f"""
    SELECT e.step, e.timestamp_ms, e.value_order, e.value_bits
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
        with self._cursor() as cursor:
            row = cursor.execute(_HISTORY_ARRAYS, (resource, key)).fetchone()
        return ([], [], []) if row is None or row[0] is None else (row[0], row[1], row[2])

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


def _build_blocks(tx: Transaction, series: int, shift: int, from_step: int, last: int) -> None:
    tx.run(_BUILD_BLOCKS, {"series": series, "shift": shift, "from_step": from_step})


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
                    yield _Transaction(conn)
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

    def sync(self) -> None:
        """Nothing to do: a committed transaction is durable in PostgreSQL."""

    def close(self) -> None:
        self._watchdog.stop()
        with self._errors():
            self._engine.dispose()
