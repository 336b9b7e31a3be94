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
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg
from sqlalchemy import Connection, TextClause, create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError

from trackplug import ValidationError, redact_url

from . import schema
from .schema import Migration, PointColumns
from .store import HistoryColumns, Params, Row, backend_errors, migrations_for

__all__ = ["PostgreSQLStore", "engine_url"]

DRIVER = "postgresql+psycopg"
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
_TABLE_EXISTS = "SELECT to_regclass('trackplug_meta') IS NOT NULL"
#: What fails when the database does: SQLAlchemy's errors (connecting, pooling, and the
#: statements it runs) and psycopg's (the two paths on its cursor).
_FAILURES = (SQLAlchemyError, psycopg.Error)


def engine_url(url: str) -> str:
    """``postgresql://`` and ``postgresql+psycopg://`` URLs, as SQLAlchemy's psycopg 3
    dialect spells them (another driver is refused: its options would not apply)."""
    scheme = url.partition("://")[0].lower()
    if scheme not in ("postgresql", DRIVER):
        raise ValidationError(
            f"{redact_url(url)!r}: trackplug-sql reaches PostgreSQL through psycopg 3; "
            f"use postgresql:// or {DRIVER}://"
        )
    return DRIVER + url[len(scheme) :]


@functools.cache
def _text(sql: str) -> TextClause:
    return text(sql)


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
        driver = self._conn.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)  # a pooled connection is never detached
        cursor: psycopg.Cursor[Any] = driver.cursor()
        return cursor

    def insert_points(self, columns: PointColumns) -> None:
        with self._cursor() as cursor:
            cursor.execute(_INSERT_POINTS, [list(column) for column in columns])

    def history(self, resource: str, key: str) -> HistoryColumns:
        with self._cursor() as cursor:
            row = cursor.execute(_HISTORY_ARRAYS, (resource, key)).fetchone()
        return ([], [], []) if row is None or row[0] is None else (row[0], row[1], row[2])


class PostgreSQLStore:
    """A connection pool; each transaction or read checks out one connection."""

    persistent = True

    def __init__(self, url: str) -> None:
        self.url = redact_url(url)
        self._given_url = url  # its password is scrubbed from every error
        with backend_errors(f"cannot open PostgreSQL store {self.url}", _FAILURES, url):
            self._engine = create_engine(make_url(engine_url(url)), pool_pre_ping=False)
            try:
                self._open_schema()
            except BaseException:
                self._engine.dispose()
                raise

    def __repr__(self) -> str:
        return f"PostgreSQLStore({self.url!r})"

    def _open_schema(self) -> None:
        """Create version 1's tables in a new database, then run the migrations it needs,
        in one transaction, under a lock other openers wait for. On the engine directly:
        its failures are the open's (``cannot open …``)."""
        with self._engine.begin() as conn:
            tx = _Transaction(conn)
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
        with self._errors(), self._engine.begin() as conn:
            yield _Transaction(conn)

    def query(self, sql: str, params: Params) -> list[Row]:
        with self.transaction() as tx:
            return tx.query(sql, params)

    def history(self, resource: str, key: str) -> HistoryColumns:
        """Fetched as three arrays instead of one Python row per point."""
        with self.transaction() as tx:
            return tx.history(resource, key)

    def sync(self) -> None:
        """Nothing to do: a committed transaction is durable in PostgreSQL."""

    def close(self) -> None:
        with self._errors():
            self._engine.dispose()
