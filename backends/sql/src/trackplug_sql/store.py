"""What the backend needs from a database: transactions, queries and a bulk insert.

Two stores implement it: :mod:`trackplug_sql.sqlite` on the standard library's ``sqlite3``
and :mod:`trackplug_sql.postgresql` on a SQLAlchemy engine (psycopg 3). Both run the same
statements (:mod:`trackplug_sql.schema`); only the DDL, the bulk insert and the way a
transaction starts differ.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from trackplug import BackendError, TrackplugError
from trackplug.plugin import redact_chain

from . import schema
from .schema import Migration, PointColumns

__all__ = [
    "HistoryColumns",
    "PointColumns",
    "Row",
    "Store",
    "Transaction",
    "backend_errors",
    "migrations_for",
]

Row = tuple[Any, ...]
Params = Mapping[str, object]
#: One series' history as columns, in history order: steps, timestamps, value bits.
HistoryColumns = tuple[Sequence[int], Sequence[int], Sequence[int]]


class Transaction(Protocol):
    """Statements inside one transaction; it commits when the ``with`` block ends."""

    def run(self, sql: str, params: Params) -> None: ...

    def run_many(self, sql: str, rows: Sequence[Params]) -> None: ...

    def query(self, sql: str, params: Params) -> list[Row]: ...

    def insert_points(self, columns: PointColumns) -> None:
        """Insert point rows, ignoring exact duplicates of stored ones."""


class Store(Protocol):
    #: The URL, password redacted.
    url: str
    #: Whether another store on the same URL sees the data (False for ``sqlite://``).
    persistent: bool

    def transaction(self) -> AbstractContextManager[Transaction]:
        """A write transaction: all or nothing, serialized against other writers."""

    def query(self, sql: str, params: Params) -> list[Row]: ...

    def history(self, resource: str, key: str) -> HistoryColumns:
        """Every point of one series (empty columns if there is none)."""

    def sync(self) -> None:
        """Make committed transactions durable (beyond a crash of this process)."""

    def close(self) -> None: ...


@contextmanager
def backend_errors(
    what: str, failures: tuple[type[Exception], ...], url: str = ""
) -> Iterator[None]:
    """The one rule for a store's failures: an exception of the database's ``failures``
    becomes a :class:`~trackplug.BackendError` saying ``what`` failed (the store and its
    URL, password redacted), with the driver's own exception as ``__cause__``. trackplug's
    errors, and anything that is no database failure, pass through unchanged. Every
    exception of the chain is scrubbed of ``url``'s password (:func:`redact_chain`)."""
    try:
        yield
    except TrackplugError as exc:
        redact_chain(exc, url)
        raise
    except failures as exc:
        redact_chain(exc, url)
        # SQLAlchemy wraps the driver's exception (``orig``); the driver's is the original,
        # the same type whichever path ran the statement, and its message has no SQL.
        orig = getattr(exc, "orig", None)
        cause = orig if isinstance(orig, Exception) else exc
        raise BackendError(f"{what}: {type(cause).__name__}: {str(cause).strip()}") from cause


def migrations_for(found: object, url: str) -> tuple[Migration, ...]:
    """What a store whose ``schema_version`` is ``found`` needs to be this version's (none:
    it is); a store written by a newer trackplug-sql, or by something else, is refused."""
    try:
        version = int(str(found))
    except ValueError:
        raise BackendError(
            f"{url} has a trackplug_meta table with schema_version {found!r}, which is not a "
            "trackplug-sql schema version"
        ) from None
    latest = schema.latest_version()
    if version > latest:
        raise BackendError(
            f"{url} holds trackplug-sql schema version {version}, written by a newer "
            f"trackplug-sql; this one reads versions up to {latest}: upgrade trackplug-sql"
        )
    return schema.pending(version)
