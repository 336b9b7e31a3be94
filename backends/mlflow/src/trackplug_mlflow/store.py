"""The MLflow side of both trackers: batched writes, exact reads, errors translated.

Importing this module imports mlflow (~2.5 s); the package's ``__init__`` never does.

What MLflow 3 answers and what trackplug's contract asks differ in one place this module
fixes on the client: MLflow's *latest* value of a metric (``run.data.metrics``, and the order
of ``search_runs(order_by=...)``) breaks ties of ``(step, timestamp)`` by value with NaN
counted as 0.0 (its stores keep NaN as ``value=0, is_nan=1``), while the contract ranks NaN
below every number. MLflow can therefore report NaN where the contract's latest is a number
<= 0 logged at the same step and timestamp, never the other way round, so whenever MLflow
reports NaN the latest value is recomputed from the history.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from operator import attrgetter
from typing import Any
from urllib.parse import urlsplit

from mlflow.entities import Metric, Param, Run, RunTag
from mlflow.tracking import MlflowClient

from trackplug import BackendError, Capabilities, MetricPoint, redact_url
from trackplug.plugin import HistoryPage, page_of, point_order, redact_chain

from . import bounds
from .capabilities import CAPABILITIES_BY_KIND
from .dbguard import DatabaseGuard, engine_of
from .errors import translate_errors
from .urls import MLflowTarget, store_kind

__all__ = ["MAX_ENTITIES_PER_BATCH", "RunStore"]

#: MLflow's limit for one ``log_batch`` call: 1,000 metrics, params and tags together.
MAX_ENTITIES_PER_BATCH = 1000
#: ... of which at most 100 params and 100 tags.
MAX_PARAMS_TAGS_PER_BATCH = 100
#: Database dialects whose drivers take ``connect_timeout`` (seconds).
_TIMEOUT_ARG = ("postgresql", "mysql")
#: Runs per ``search_runs`` page when every run must be seen (MLflow allows up to 50,000).
SEARCH_PAGE = 1000


class RunStore:
    """An :class:`~mlflow.tracking.MlflowClient` on one tracking URI, as trackplug needs it."""

    def __init__(
        self, target: MLflowTarget, client: Any = None, *, probe_timeout: float | None = None
    ) -> None:
        bounds.install()
        self.target = target
        self.url = target.url
        # A given client is already on its store: the one it names, not MLflow's default.
        uri = target.tracking_uri or (str(client.tracking_uri) if client else target.resolved_uri)
        self._uri = uri  # with its password: scrubbed from every error (translate_errors)
        given = [str(client.tracking_uri)] if client is not None else []
        self._secrets = (uri, *given)
        kind, scheme = store_kind(uri), urlsplit(uri).scheme.lower()
        probe_timeout = target.timeout if probe_timeout is None else probe_timeout
        if client is None and scheme in ("http", "https"):
            self._probe(uri, probe_timeout)
        elif client is None and kind == "database" and not scheme.startswith("sqlite"):
            self._probe_database(uri, probe_timeout)
        self._guard: DatabaseGuard | None = None
        with self.errors("opening the tracking store"):
            self.client: Any = client or MlflowClient(tracking_uri=target.tracking_uri)
        if kind == "database" and scheme.partition("+")[0] == "postgresql":
            engine = engine_of(self.client)
            if engine is not None:  # MLflow's SQLAlchemy store, as every MLflow 1 to 3 has
                self._guard = DatabaseGuard(engine, self.target.timeout)
        #: What this store keeps; :meth:`log` sends each value as it will read back.
        self.capabilities: Capabilities = CAPABILITIES_BY_KIND[kind]

    @contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """MLflow's exceptions as :class:`~trackplug.BackendError`, password scrubbed, and
        every wait for the store bounded by the URL's ``?timeout=``: each request to a
        tracking server (:mod:`.bounds`), each call into a PostgreSQL database store
        (:mod:`.dbguard`)."""
        timeout = self.target.timeout
        guarded = self._guard.bounded(f"MLflow at {self.url}: {action}") if self._guard else None
        with (
            translate_errors(self.url, action, self._secrets, timeout),
            bounds.bounded(timeout),
            guarded or nullcontext(),
        ):
            yield

    def close(self) -> None:
        """Stop watching the database store (the engine is MLflow's, shared: left open)."""
        if self._guard is not None:
            self._guard.stop()

    def _probe(self, tracking_uri: str, timeout: float) -> None:
        """Fail fast, naming the URL, when a tracking server cannot be reached at all.

        MLflow retries a refused connection for minutes by default
        (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``); this one request does not retry. Any HTTP
        answer counts as reachable: authentication and the rest are MLflow's to report.
        """
        from mlflow.exceptions import MlflowException
        from mlflow.utils.credentials import get_default_host_creds
        from mlflow.utils.rest_utils import http_request

        try:
            http_request(  # type: ignore[no-untyped-call]
                get_default_host_creds(tracking_uri),  # type: ignore[no-untyped-call]
                "/health",
                "GET",
                max_retries=0,
                backoff_factor=0,
                timeout=timeout,
                raise_on_status=False,
            )
        except MlflowException as exc:
            redact_chain(exc, tracking_uri)
            raise self._unreachable("tracking server", tracking_uri, str(exc.message)) from exc

    def _probe_database(self, uri: str, timeout: float) -> None:
        """Fail fast, naming the URL, when a database server cannot be reached: MLflow's
        engine retries a refused connection for about 100 s before it says so."""
        import sqlalchemy
        from sqlalchemy.pool import NullPool

        dialect = urlsplit(uri).scheme.lower().partition("+")[0]
        options = {"connect_timeout": max(1, round(timeout))} if dialect in _TIMEOUT_ARG else {}
        try:
            engine = sqlalchemy.create_engine(uri, poolclass=NullPool, connect_args=options)
        except (ImportError, sqlalchemy.exc.ArgumentError) as exc:  # no such dialect or driver
            redact_chain(exc, uri)
            raise BackendError(
                f"MLflow at {self.url}: SQLAlchemy cannot reach a {dialect} database from "
                f"here (is its driver installed?): {type(exc).__name__}: {exc}"
            ) from exc
        try:
            engine.connect().close()
        except sqlalchemy.exc.OperationalError as exc:
            redact_chain(exc, uri)
            raise self._unreachable("database store", uri, str(exc.orig)) from exc

    def _unreachable(self, what: str, uri: str, detail: str) -> BackendError:
        where = self.url
        if not self.target.tracking_uri:  # mlflow://: say where MLflow pointed us
            where = f"{redact_url(uri)} (from MLFLOW_TRACKING_URI, {self.url})"
        return BackendError(
            f"the MLflow {what} at {where} cannot be reached (is it running, and is the "
            f"address right?): {' '.join(detail.split())}"
        )

    # -- writes ---------------------------------------------------------------------------

    def log(self, run_id: str, points: Sequence[MetricPoint], tags: Mapping[str, str] = {}) -> None:
        """Log ``points`` and set ``tags`` in as few ``log_batch`` calls as MLflow's limit
        allows; the tags go with the last call, after every point is in.

        The points go out grouped by key (stable, so each key keeps its order): MLflow
        reads and updates each key's latest value once per call, so a call of few keys
        costs less (~13% for 100 keys per step, benchmarks/). The order of a write
        within one batch means nothing to the contract."""
        stored = self.capabilities.stored
        metrics = [Metric(p.key, stored(p.value), p.timestamp, p.step) for p in _by_key(points)]
        run_tags = [RunTag(key, value) for key, value in tags.items()]
        with self.errors(f"logging {len(metrics)} metrics to run {run_id}"):
            for chunk, chunk_tags in _chunks(metrics, run_tags):
                self.client.log_batch(run_id, metrics=chunk, tags=chunk_tags)

    def log_params_tags(
        self, run_id: str, params: Mapping[str, str] = {}, tags: Mapping[str, str] = {}
    ) -> None:
        """Log params and set tags, 100 of each per ``log_batch`` call (MLflow's limit)."""
        run_params = [Param(key, value) for key, value in params.items()]
        run_tags = [RunTag(key, value) for key, value in tags.items()]
        size = MAX_PARAMS_TAGS_PER_BATCH
        with self.errors(
            f"logging {len(run_params)} params and {len(run_tags)} tags to run {run_id}"
        ):
            for i in range(0, max(len(run_params), len(run_tags)), size):
                self.client.log_batch(
                    run_id, params=run_params[i : i + size], tags=run_tags[i : i + size]
                )

    def terminate(self, run_id: str, status: str = "FINISHED", end_time: int | None = None) -> None:
        """``MlflowClient.set_terminated`` without its "🏃 View run … / 🧪 View experiment …"
        lines, which it writes to stdout for every run on a tracking server (trackplug's
        CLI keeps stdout for data) after one more ``get_run`` request to build them. Raw:
        the caller translates errors."""
        from mlflow.entities import RunStatus

        store = getattr(getattr(self.client, "_tracking_client", None), "store", None)
        if store is None:  # a client of another kind than MLflow's own: its own way
            self.client.set_terminated(run_id, status=status, end_time=end_time)
            return
        store.update_run_info(
            run_id,
            run_status=RunStatus.from_string(status),
            end_time=end_time or int(time.time() * 1000),
            run_name=None,
        )

    # -- reads ----------------------------------------------------------------------------

    def get_run(self, run_id: str) -> Any:
        with self.errors(f"reading run {run_id}"):
            return self.client.get_run(run_id)

    def history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every point of ``key`` in the run, in the contract's order."""
        with self.errors(f"reading the history of {key!r} in run {run_id}"):
            metrics = self.client.get_metric_history(run_id, key)
        points = [
            MetricPoint(key, _canonical(float(m.value)), int(m.step), int(m.timestamp))
            for m in metrics
        ]
        return sorted(points, key=point_order)

    def history_page(self, run_id: str, key: str, cursor: str | None, limit: int) -> HistoryPage:
        """Up to ``limit`` points of ``key`` after ``cursor``, in the contract's order.

        MLflow's own paged ``get_metric_history`` (``max_results`` / ``page_token``) orders
        by ``(timestamp, step, value)`` and pages by OFFSET: not the contract's
        ``(step, timestamp, value)``, so its pages cannot be handed on. A database store is
        read with one keyset query a page instead; a server's or file store's page is cut
        from the whole history (MLflow's pages of 25,000, sorted here)."""
        store = getattr(getattr(self.client, "_tracking_client", None), "store", None)
        if _is_database(store):
            with self.errors(f"reading a page of {key!r} in run {run_id}"):
                return _keyset_page(store, run_id, key, cursor, limit)
        return page_of(self.history(run_id, key), cursor, limit)

    def latest_value(self, run_id: str, key: str, reported: float) -> float | None:
        """The contract's latest value of ``key``, given the one MLflow reported."""
        if not math.isnan(reported):
            return reported
        points = self.history(run_id, key)  # MLflow ranks NaN as 0.0: decide exactly
        return max(points, key=point_order).value if points else None

    def latest(self, run: Run, keys: Sequence[str] | None = None) -> dict[str, float]:
        """``{key: latest value}`` of a run (only ``keys`` if given), sorted by key."""
        reported: dict[str, float] = run.data.metrics
        chosen = sorted(reported) if keys is None else sorted(k for k in keys if k in reported)
        result = {}
        for key in chosen:
            value = self.latest_value(run.info.run_id, key, _canonical(float(reported[key])))
            if value is not None:
                result[key] = value
        return result

    def search(
        self,
        experiments: str | Sequence[str],
        filter_string: str,
        order_by: Sequence[str] = (),
        page_size: int = SEARCH_PAGE,
        *,
        view_all: bool = False,
    ) -> Iterator[Run]:
        """Every run matching in ``experiments`` (an id or several), page by page, in
        ``order_by`` order; deleted runs too when ``view_all``."""
        from mlflow.entities import ViewType

        ids = [experiments] if isinstance(experiments, str) else list(experiments)
        if not ids:
            return
        view = ViewType.ALL if view_all else ViewType.ACTIVE_ONLY
        token = None
        while True:
            with self.errors("searching runs"):
                page = self.client.search_runs(
                    ids,
                    filter_string=filter_string,
                    run_view_type=view,
                    order_by=list(order_by),
                    max_results=page_size,
                    page_token=token,
                )
            yield from page
            token = page.token
            if not token:
                return
            page_size = SEARCH_PAGE


def _by_key(points: Sequence[MetricPoint]) -> Sequence[MetricPoint]:
    if len(points) <= MAX_ENTITIES_PER_BATCH:
        return points  # one call either way
    return sorted(points, key=attrgetter("key"))


def _chunks(metrics: list[Any], tags: list[Any]) -> list[tuple[list[Any], list[Any]]]:
    """As few ``log_batch`` calls as the limit allows, the tags in the last one (after
    every point is in, so a failure leaves no performance record behind)."""
    last = max(0, MAX_ENTITIES_PER_BATCH - len(tags))
    head, tail = (metrics[: len(metrics) - last], metrics[len(metrics) - last :])
    if not tags:
        head, tail = metrics, []
    chunks: list[tuple[list[Any], list[Any]]] = [
        (head[i : i + MAX_ENTITIES_PER_BATCH], [])
        for i in range(0, len(head), MAX_ENTITIES_PER_BATCH)
    ]
    if tags:
        chunks.append((tail, tags))
    return chunks


def _canonical(value: float) -> float:
    """One NaN, as the facade stores it."""
    return math.nan if math.isnan(value) else value


def _is_database(store: Any) -> bool:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    return isinstance(store, SqlAlchemyStore)


def _keyset_page(store: Any, run_id: str, key: str, cursor: str | None, limit: int) -> HistoryPage:
    """One page of MLflow's ``metrics`` table in the contract's order: ``step``,
    ``timestamp``, then the value with NaN (stored as ``value=0, is_nan=1``) first. MLflow
    keeps one row per (step, timestamp, value, is_nan) of a key (its primary key), so the
    last row read is the whole cursor: ``step:timestamp:is_nan:value``."""
    from mlflow.store.tracking.dbmodels.models import SqlMetric
    from sqlalchemy import and_, or_, true

    metric: Any = SqlMetric  # SQLAlchemy's column operators, untyped in MLflow's models
    columns = (SqlMetric.step, SqlMetric.timestamp, SqlMetric.is_nan, SqlMetric.value)
    with store.ManagedSessionMaker() as session:
        query = session.query(*columns).filter(SqlMetric.run_uuid == run_id, SqlMetric.key == key)
        if cursor is not None:
            step_s, time_s, nan_s, value_s = cursor.split(":", 3)
            step, stamp, nan, value = int(step_s), int(time_s), bool(int(nan_s)), float(value_s)
            query = query.filter(
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
        order = (SqlMetric.step, SqlMetric.timestamp, SqlMetric.is_nan.desc(), SqlMetric.value)
        rows = query.order_by(*order).limit(limit + 1).all()
    more = len(rows) > limit
    rows = rows[:limit]
    points = [
        MetricPoint(key, math.nan if nan else float(value), int(step), int(stamp))
        for step, stamp, nan, value in rows
    ]
    if not more:
        return HistoryPage(points, None)
    step, stamp, nan, value = rows[-1]
    return HistoryPage(points, f"{step}:{stamp}:{int(bool(nan))}:{float(value)!r}")
