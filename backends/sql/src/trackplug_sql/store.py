"""What the backend needs from a database: transactions, queries and a bulk insert.

Two stores implement it: :mod:`trackplug_sql.sqlite` on the standard library's ``sqlite3``
and :mod:`trackplug_sql.postgresql` on a SQLAlchemy engine (psycopg 3). Both run the same
statements (:mod:`trackplug_sql.schema`); only the DDL, the bulk insert and the way a
transaction starts differ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple, Protocol, TypeVar

from trackplug import BackendError, TrackplugError
from trackplug.plugin import redact_chain, sample_buckets, sample_edges

from . import schema
from .schema import Migration, PointColumns, SeriesRow, SpreadColumns

__all__ = [
    "POSTGRESQL_SCHEMES",
    "BuildPoints",
    "HistoryColumns",
    "PointColumns",
    "PointOrder",
    "Row",
    "SamplePlan",
    "Store",
    "Transaction",
    "backend_errors",
    "migrations_for",
    "page_params",
    "sample_plan",
    "sampled_columns",
]

#: The schemes of a PostgreSQL URL: libpq accepts ``postgres://`` as well as
#: ``postgresql://`` (each also with ``+psycopg``); this is the one place that says so.
POSTGRESQL_SCHEMES = ("postgresql", "postgres")

Row = tuple[Any, ...]
Params = Mapping[str, object]
#: One series' history as columns, in history order: steps, timestamps, value orders
#: (``value_order``: the points table's only copy of a value since schema version 4).
HistoryColumns = tuple[Sequence[int], Sequence[int], Sequence[int]]
_Point = TypeVar("_Point")
#: What a history's reader makes of a run of its points, given as columns
#: ``(steps, timestamps, value orders)``: the points (``trackplug.MetricPoint``, say).
BuildPoints = Callable[[Sequence[int], Sequence[int], Sequence[int]], list[_Point]]
#: A point's place in its history: ``(step, timestamp_ms, value_order)``, unique per series.
PointOrder = tuple[int, int, int]


class Transaction(Protocol):
    """Statements inside one transaction; it commits when the ``with`` block ends."""

    def run(self, sql: str, params: Params) -> None: ...

    def run_many(self, sql: str, rows: Sequence[Params]) -> None: ...

    def query(self, sql: str, params: Params) -> list[Row]: ...

    def upsert_series(self, rows: Sequence[SeriesRow]) -> list[Row]:
        """:func:`schema.upsert_series` of every row, in order, by as few statements as
        the database allows (PostgreSQL: one); returns ``(resource, key, id)`` of the
        series it created or moved forward (none where the database cannot say)."""

    def write_spread(self, columns: SpreadColumns) -> bool:
        """Write points spread over many series (:class:`~schema.SpreadColumns`): every
        series created or moved forward to its latest point, every point inserted (exact
        duplicates ignored), the rollups of these series marked stale, with the series ids
        found by the database alone; False (and nothing written) where the store writes
        them the ids' way instead (:meth:`upsert_series`, :meth:`insert_points`)."""

    def series_ids(self, series: Sequence[tuple[str, str]]) -> list[Row]:
        """``(resource, key, id)`` of each of these series that is stored, found by as few
        statements as the database allows (PostgreSQL: one)."""

    def insert_points(self, columns: PointColumns) -> None:
        """Insert point rows, ignoring exact duplicates of stored ones."""

    def mark_stale(self, series: Iterable[int], step: int) -> None:
        """:data:`rollup.MARK_STALE` for each of these series (one without a rollup is left
        alone), by as few statements as the database allows (PostgreSQL: one)."""


class Store(Protocol):
    #: The URL, password redacted.
    url: str
    #: Whether another store on the same URL sees the data (False for ``sqlite://``).
    persistent: bool

    def transaction(self) -> AbstractContextManager[Transaction]:
        """A write transaction: all or nothing, serialized against other writers."""

    def query(self, sql: str, params: Params) -> list[Row]: ...

    def history(self, resource: str, key: str, build: BuildPoints[_Point]) -> list[_Point]:
        """Every point of one series in history order (none if there is none): ``build``
        makes them of its columns, in the calling thread, one run of the history at a
        time (the whole history, or on SQLite each page while the next one is read);
        its results are concatenated. All of it is read in one snapshot."""

    def history_page(
        self, resource: str, key: str, after: PointOrder | None, limit: int
    ) -> HistoryColumns:
        """Up to ``limit`` points of one series in history order: its first ones, or those
        after the point order ``after`` (keyset paging: one range of the primary key)."""

    def history_sampled(self, resource: str, key: str, max_points: int) -> HistoryColumns:
        """``trackplug._model.sample_points`` of one series, computed in the database."""

    def build_rollup(self, series: int) -> bool:
        """Build the sampling rollup of ``series`` or bring it up to date, as its next
        sampled read would (:func:`trackplug_sql.rollup.build_ahead`), in a transaction of
        its own; returns whether it built any block."""

    def sync(self) -> None:
        """Make committed transactions durable (beyond a crash of this process)."""

    def close(self) -> None: ...


class backend_errors:  # lower case: used as a function: ``with backend_errors(...)``
    """The one rule for a store's failures: an exception of the database's ``failures``
    becomes a :class:`~trackplug.BackendError` saying ``what`` failed (the store and its
    URL, password redacted), with the driver's own exception as ``__cause__``. trackplug's
    errors, and anything that is no database failure, pass through unchanged. Every
    exception of the chain is scrubbed of ``url``'s password (:func:`redact_chain`).
    A class, not a generator: it wraps every read, and its no-error path costs nothing."""

    __slots__ = ("_failures", "_url", "_what")

    def __init__(self, what: str, failures: tuple[type[Exception], ...], url: str = "") -> None:
        self._what = what
        self._failures = failures
        self._url = url

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        if isinstance(exc, TrackplugError):
            redact_chain(exc, self._url)
        elif isinstance(exc, self._failures):
            redact_chain(exc, self._url)
            # SQLAlchemy wraps the driver's exception (``orig``); the driver's is the
            # original, the same type whichever path ran the statement, and its message
            # has no SQL.
            orig = getattr(exc, "orig", None)
            cause = orig if isinstance(orig, Exception) else exc
            message = f"{self._what}: {type(cause).__name__}: {str(cause).strip()}"
            raise BackendError(message) from cause


class SamplePlan(NamedTuple):
    """How a series too long for ``max_points`` is sampled: its first and last rows
    ``(step, timestamp_ms, value_order)``, the column its buckets split
    (``step``, or ``timestamp_ms`` when every point has the same step) and the buckets as
    inclusive ``(low, high)`` ranges of it."""

    first: Row
    last: Row
    column: str
    buckets: list[tuple[int, int]]


def sample_plan(
    query: Callable[[str, Params], list[Row]], series: int, max_points: int
) -> SamplePlan | None:
    """The plan of a sample of ``series`` (None: it has at most ``max_points`` points, the
    sample is its history), by the shared statements, run through ``query`` inside the
    caller's read transaction."""
    (count,) = query(schema.COUNT_UP_TO, {"series": series, "limit": max_points + 1})[0]
    if count <= max_points:
        return None
    first = query(schema.SAMPLE_ENDS["first"], {"series": series})[0]
    last = query(schema.SAMPLE_ENDS["last"], {"series": series})[0]
    column, at = ("step", 0) if first[0] != last[0] else ("timestamp_ms", 1)
    low, high = first[at], last[at]
    starts = [low, *sample_edges(low, high, sample_buckets(max_points))]
    ends = [start - 1 for start in starts[1:]] + [high]
    return SamplePlan(tuple(first), tuple(last), column, list(zip(starts, ends, strict=True)))


def page_params(resource: str, key: str, after: PointOrder | None, limit: int) -> Params:
    """The parameters of ``schema.HISTORY_PAGE[after is not None]``."""
    params: dict[str, object] = {"resource": resource, "key": key, "limit": limit}
    if after is not None:
        params["step"], params["timestamp_ms"], params["value_order"] = after
    return params


def sampled_columns(rows: Iterable[Row]) -> HistoryColumns:
    """Sampled rows ``(step, timestamp_ms, value_order)``, duplicates dropped, as history
    columns in history order."""
    ordered = sorted(set(rows))
    return ([r[0] for r in ordered], [r[1] for r in ordered], [r[2] for r in ordered])


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
