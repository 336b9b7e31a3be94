"""An MLflow database store read straight from its tables with SQL: no mlflow import.

``import mlflow`` (any of its modules runs the package's top level) costs ~2.5 s, nearly all
of a reading command on a small store. So on a database store (``mlflow+sqlite://``,
``mlflow+postgresql://``…) :class:`TableReader` answers the backend's reads with SQLAlchemy
Core queries on MLflow's own tables (``experiments``, ``runs``, ``metrics``,
``latest_metrics``, ``params``, ``tags``), the way MLflow's ``SqlAlchemyStore`` reads them;
writes still go through MLflow's client, imported on the first write.

Only a schema this module was checked against is read this way: the store's
``alembic_version`` must be one of :data:`VERIFIED_REVISIONS`. Any other revision (an older
or newer MLflow), a store MLflow has not created yet, or a client given by the caller is
read through MLflow's client instead (:func:`open_tables` returns None).
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

import sqlalchemy
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    case,
    exists,
    or_,
    select,
    true,
)

from trackplug import BackendError, MetricPoint
from trackplug.plugin import HistoryPage, redact_chain

from .capabilities import CAPABILITIES_BY_KIND
from .dbguard import DatabaseGuard
from .errors import not_as_given, unreachable
from .reads import SEARCH_PAGE, Experiment, MetricOrder, RunReads, TagFilter, canonical
from .urls import MLflowTarget

__all__ = ["VERIFIED_REVISIONS", "TableReader", "keyset_page", "open_tables"]

_log = logging.getLogger(__name__)

#: Alembic revisions of MLflow's schema whose tables this module reads (MLflow's head
#: revision per release, checked by tests/test_mlflow_tables.py against MLflow's client).
VERIFIED_REVISIONS = frozenset({"dc11669786a5"})  # MLflow 3.17

_meta = MetaData()
_experiments = Table(
    "experiments",
    _meta,
    Column("experiment_id", Integer),
    Column("name", String),
    Column("lifecycle_stage", String),
)
_runs = Table(
    "runs",
    _meta,
    Column("run_uuid", String),
    Column("name", String),
    Column("start_time", BigInteger),
    Column("lifecycle_stage", String),
    Column("experiment_id", Integer),
)
_metrics = Table(
    "metrics",
    _meta,
    Column("key", String),
    Column("value", Float(precision=53)),
    Column("timestamp", BigInteger),
    Column("step", BigInteger),
    Column("is_nan", Boolean),
    Column("run_uuid", String),
)
_latest = Table(
    "latest_metrics",
    _meta,
    Column("key", String),
    Column("value", Float(precision=53)),
    Column("is_nan", Boolean),
    Column("run_uuid", String),
)
_params = Table(
    "params", _meta, Column("key", String), Column("value", String), Column("run_uuid", String)
)
_tags = Table(
    "tags", _meta, Column("key", String), Column("value", String), Column("run_uuid", String)
)
_alembic = Table("alembic_version", _meta, Column("version_num", String))


class RunInfo(NamedTuple):
    run_id: str
    experiment_id: str
    run_name: str | None
    start_time: int | None
    lifecycle_stage: str


class RunData(NamedTuple):
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]


class Run(NamedTuple):
    """A run as MLflow's ``Run`` answers (``run.info``, ``run.data``)."""

    info: RunInfo
    data: RunData


def open_tables(target: MLflowTarget) -> TableReader | None:
    """A reader of the database store ``target`` names, or None when it is to be read
    through MLflow's client: not a database store, an SQLite file not there yet (MLflow
    creates it), or a schema revision not in :data:`VERIFIED_REVISIONS`. A database server
    that cannot be reached is a ``BackendError``, as with the client."""
    if target.kind != "database":
        return None
    uri = target.resolved_uri
    parts = urlsplit(uri)
    if parts.scheme.lower().startswith("sqlite"):
        path = unquote(parts.path[1:])
        if not path or path == ":memory:" or not Path(path).is_file():
            return None
    try:
        engine = sqlalchemy.create_engine(uri)
    except (ImportError, sqlalchemy.exc.ArgumentError):
        return None  # no such dialect or driver here: MLflow's client says what is missing
    except (ValueError, TypeError) as exc:  # a query option the driver cannot read
        raise not_as_given(target.url, exc, uri) from None
    try:
        connection = engine.connect()
    except sqlalchemy.exc.OperationalError as exc:
        engine.dispose()
        redact_chain(exc, uri)
        raise unreachable(target, "database store", uri, str(exc.orig)) from exc
    with connection:
        try:
            revision = connection.execute(select(_alembic.c.version_num)).scalar()
        except sqlalchemy.exc.DBAPIError:
            revision = None  # no MLflow schema yet: MLflow's client creates it
    if revision not in VERIFIED_REVISIONS:
        engine.dispose()
        _log.info("MLflow schema revision %s is read through MLflow's client", revision)
        return None
    return TableReader(engine, target, uri)


class TableReader(RunReads):
    """The reads of an MLflow database store, as SQL on its tables (see the module)."""

    def __init__(self, engine: Any, target: MLflowTarget, uri: str) -> None:
        self.url = target.url
        self.capabilities = CAPABILITIES_BY_KIND["database"]
        self._engine = engine
        self._uri = uri  # with its password: scrubbed from every error
        postgresql = urlsplit(uri).scheme.lower().startswith("postgresql")
        self._guard = DatabaseGuard(engine, target.timeout) if postgresql else None

    @contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Database errors as ``BackendError``, password scrubbed; on PostgreSQL each wait
        bounded by the URL's ``?timeout=`` (:mod:`.dbguard`)."""
        what = f"MLflow at {self.url}: {action}"
        guarded = self._guard.bounded(what) if self._guard else nullcontext()
        try:
            with guarded:
                yield
        except sqlalchemy.exc.SQLAlchemyError as exc:
            detail = f"{type(exc).__name__}: {redact_chain(exc, self._uri)}"
            raise BackendError(f"{what} failed: {detail}") from exc

    def _rows(self, action: str, query: Any) -> Sequence[Any]:
        with self.errors(action), self._engine.connect() as connection:
            rows: Sequence[Any] = connection.execute(query).all()
        return rows

    def close(self) -> None:
        if self._guard is not None:
            self._guard.stop()
        self._engine.dispose()

    # -- experiments ----------------------------------------------------------------------

    def experiment(self, *, name: str | None = None, experiment_id: str | None = None) -> Any:
        query = select(
            _experiments.c.experiment_id, _experiments.c.name, _experiments.c.lifecycle_stage
        )
        if name is not None:
            query = query.where(_experiments.c.name == name)
        elif experiment_id is not None and experiment_id.isdigit():
            query = query.where(_experiments.c.experiment_id == int(experiment_id))
        else:  # MLflow's ids are numbers: no experiment has this one
            query = query.where(sqlalchemy.false())
        rows = self._rows(f"finding experiment {name or experiment_id!r}", query)
        if not rows:
            if name is not None:
                return None
            raise BackendError(
                f"MLflow at {self.url}: finding experiment id {experiment_id!r} failed "
                "(RESOURCE_DOES_NOT_EXIST): no experiment has that id"
            )
        found = rows[0]
        return Experiment(str(found.experiment_id), str(found.name), str(found.lifecycle_stage))

    def experiments(self, view_all: bool) -> dict[str, str]:
        query = select(_experiments.c.experiment_id, _experiments.c.name)
        if not view_all:
            query = query.where(_experiments.c.lifecycle_stage == "active")
        rows = self._rows("listing experiments", query.order_by(_experiments.c.experiment_id))
        return {str(row.experiment_id): str(row.name) for row in rows}

    # -- runs -----------------------------------------------------------------------------

    def get_run(self, run_id: str) -> Run:
        rows = self._rows(f"reading run {run_id}", _run_query().where(_runs.c.run_uuid == run_id))
        if not rows:
            raise BackendError(
                f"MLflow at {self.url}: reading run {run_id} failed (RESOURCE_DOES_NOT_EXIST): "
                "no run has that id"
            )
        return self._complete(rows)[0]

    def search(
        self,
        experiments: str | Sequence[str],
        tag: TagFilter | None = None,
        order: MetricOrder | None = None,
        page_size: int = SEARCH_PAGE,
        *,
        view_all: bool = False,
        since: int | None = None,
    ) -> Iterator[Run]:
        """One query for the runs in order, then their metrics, params and tags a page of
        runs at a time (no connection held between pages)."""
        ids = [experiments] if isinstance(experiments, str) else list(experiments)
        if not ids:
            return
        query = _run_query().where(_runs.c.experiment_id.in_([int(i) for i in ids]))
        if not view_all:
            query = query.where(_runs.c.lifecycle_stage == "active")
        if since is not None:
            query = query.where(_runs.c.start_time >= since)
        if tag is not None:
            held = [_tags.c.run_uuid == _runs.c.run_uuid, _tags.c.key == tag[0]]
            if tag[1] is not None:
                held.append(_tags.c.value == tag[1])
            query = query.where(exists(select(_tags.c.key).where(*held)))
        if order is not None:  # MLflow's own order_by of a metric (sqlalchemy_store)
            key, direction = order
            latest = _latest.alias("ordering")
            query = query.outerjoin(
                latest, and_(latest.c.run_uuid == _runs.c.run_uuid, latest.c.key == key)
            )
            placed = case((latest.c.is_nan == true(), 1), (latest.c.value.is_(None), 2), else_=0)
            value = latest.c.value.desc() if direction == "max" else latest.c.value.asc()
            query = query.order_by(placed, value, _runs.c.name)
        rows = self._rows(
            "searching runs", query.order_by(_runs.c.start_time.desc(), _runs.c.run_uuid)
        )
        for start in range(0, len(rows), page_size):
            yield from self._complete(rows[start : start + page_size])

    def _complete(self, rows: Sequence[Any]) -> list[Run]:
        """The runs of ``rows`` with their latest metrics, params and tags."""
        ids = [row.run_uuid for row in rows]
        metrics: dict[str, dict[str, float]] = defaultdict(dict)
        params: dict[str, dict[str, str]] = defaultdict(dict)
        tags: dict[str, dict[str, str]] = defaultdict(dict)
        action = f"reading {len(ids)} runs"
        latest = select(_latest.c.run_uuid, _latest.c.key, _latest.c.value, _latest.c.is_nan)
        for row in self._rows(action, latest.where(_latest.c.run_uuid.in_(ids))):
            metrics[row.run_uuid][row.key] = math.nan if row.is_nan else float(row.value)
        for table, found in ((_params, params), (_tags, tags)):
            query = select(table.c.run_uuid, table.c.key, table.c.value)
            for row in self._rows(action, query.where(table.c.run_uuid.in_(ids))):
                found[row.run_uuid][row.key] = row.value
        return [
            Run(
                RunInfo(
                    str(row.run_uuid),
                    str(row.experiment_id),
                    row.name,
                    row.start_time,
                    str(row.lifecycle_stage),
                ),
                RunData(metrics[row.run_uuid], params[row.run_uuid], tags[row.run_uuid]),
            )
            for row in rows
        ]

    # -- histories ------------------------------------------------------------------------

    def history(self, run_id: str, key: str) -> list[MetricPoint]:
        query = _history_query(run_id, key)
        rows = self._rows(f"reading the history of {key!r} in run {run_id}", query)
        return [_point(key, row) for row in rows]

    def history_page(self, run_id: str, key: str, cursor: str | None, limit: int) -> HistoryPage:
        action = f"reading a page of {key!r} in run {run_id}"
        with self.errors(action), self._engine.connect() as connection:
            return keyset_page(connection, run_id, key, cursor, limit)


def _run_query() -> Any:
    return select(
        _runs.c.run_uuid,
        _runs.c.experiment_id,
        _runs.c.name,
        _runs.c.start_time,
        _runs.c.lifecycle_stage,
    )


def _history_query(run_id: str, key: str) -> Any:
    """``key``'s rows in the contract's order: ``step``, ``timestamp``, then the value with
    NaN (stored as ``value=0, is_nan=1``) first."""
    columns = (_metrics.c.step, _metrics.c.timestamp, _metrics.c.is_nan, _metrics.c.value)
    return (
        select(*columns)
        .where(_metrics.c.run_uuid == run_id, _metrics.c.key == key)
        .order_by(_metrics.c.step, _metrics.c.timestamp, _metrics.c.is_nan.desc(), _metrics.c.value)
    )


def _point(key: str, row: Any) -> MetricPoint:
    step, stamp, nan, value = row
    return MetricPoint(key, math.nan if nan else canonical(float(value)), int(step), int(stamp))


def keyset_page(
    connection: Any, run_id: str, key: str, cursor: str | None, limit: int
) -> HistoryPage:
    """One page of MLflow's ``metrics`` table in the contract's order, after ``cursor``.
    MLflow keeps one row per (step, timestamp, value, is_nan) of a key (its primary key), so
    the last row read is the whole cursor: ``step:timestamp:is_nan:value``."""
    metric = _metrics.c
    query = _history_query(run_id, key)
    if cursor is not None:
        step_s, time_s, nan_s, value_s = cursor.split(":", 3)
        step, stamp, nan, value = int(step_s), int(time_s), bool(int(nan_s)), float(value_s)
        query = query.where(
            or_(
                metric.step > step,
                and_(metric.step == step, metric.timestamp > stamp),
                and_(
                    metric.step == step,
                    metric.timestamp == stamp,
                    # NaN ranks first, and is one row at most (stored as value 0)
                    metric.is_nan.is_(False),
                    true() if nan else metric.value > value,
                ),
            )
        )
    rows = connection.execute(query.limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    points = [_point(key, row) for row in rows]
    if not more:
        return HistoryPage(points, None)
    step, stamp, nan, value = rows[-1]
    return HistoryPage(points, f"{step}:{stamp}:{int(bool(nan))}:{float(value)!r}")
