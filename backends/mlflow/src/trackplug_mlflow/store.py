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

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from operator import attrgetter
from typing import Any
from urllib.parse import urlsplit

from mlflow.entities import Metric, Param, Run, RunTag
from mlflow.tracking import MlflowClient

from trackplug import BackendError, Capabilities, MetricPoint
from trackplug.plugin import HistoryPage, page_of, point_order, redact_chain

from . import bounds
from .capabilities import CAPABILITIES_BY_KIND
from .dbguard import DatabaseGuard, engine_of
from .errors import not_as_given, translate_errors, unreachable
from .paging import Stream, server_page
from .reads import SEARCH_PAGE, Experiment, MetricOrder, RunReads, TagFilter, canonical
from .urls import MLflowTarget, store_kind

__all__ = ["MAX_ENTITIES_PER_BATCH", "RunStore"]

#: MLflow's limit for one ``log_batch`` call: 1,000 metrics, params and tags together.
MAX_ENTITIES_PER_BATCH = 1000
#: ... of which at most 100 params and 100 tags.
MAX_PARAMS_TAGS_PER_BATCH = 100
#: Database dialects whose drivers take ``connect_timeout`` (seconds).
_TIMEOUT_ARG = ("postgresql", "mysql")


class RunStore(RunReads):
    """An :class:`~mlflow.tracking.MlflowClient` on one tracking URI, as trackplug needs it:
    its writes, and its reads where :mod:`.tables` does not read the store itself."""

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
            try:
                self.client: Any = client or MlflowClient(tracking_uri=target.tracking_uri)
            except (ValueError, TypeError) as exc:  # a query option the driver cannot read
                raise not_as_given(self.url, exc, *self._secrets) from None
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
            raise unreachable(
                self.target, "tracking server", tracking_uri, str(exc.message)
            ) from exc

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
            raise unreachable(self.target, "database store", uri, str(exc.orig)) from exc

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

    def experiment(self, *, name: str | None = None, experiment_id: str | None = None) -> Any:
        with self.errors(f"finding experiment {name or experiment_id!r}"):
            if name is not None:
                found = self.client.get_experiment_by_name(name)
            else:
                found = self.client.get_experiment(experiment_id)
        if found is None:
            return None
        return Experiment(str(found.experiment_id), str(found.name), str(found.lifecycle_stage))

    def experiments(self, view_all: bool) -> dict[str, str]:
        from mlflow.entities import ViewType

        view = ViewType.ALL if view_all else ViewType.ACTIVE_ONLY
        found: dict[str, str] = {}
        token = None
        while True:
            with self.errors("listing experiments"):
                page = self.client.search_experiments(
                    view_type=view, max_results=SEARCH_PAGE, page_token=token
                )
            found.update((str(e.experiment_id), str(e.name)) for e in page)
            token = page.token
            if not token:
                return found

    def get_run(self, run_id: str) -> Any:
        with self.errors(f"reading run {run_id}"):
            return self.client.get_run(run_id)

    def history(self, run_id: str, key: str) -> list[MetricPoint]:
        with self.errors(f"reading the history of {key!r} in run {run_id}"):
            metrics = self.client.get_metric_history(run_id, key)
        points = [
            MetricPoint(key, canonical(float(m.value)), int(m.step), int(m.timestamp))
            for m in metrics
        ]
        return sorted(points, key=point_order)

    def history_page(self, run_id: str, key: str, cursor: str | None, limit: int) -> HistoryPage:
        """MLflow's own paged ``get_metric_history`` (``max_results`` / ``page_token``)
        orders by ``(timestamp, step, value)`` and pages by OFFSET: not the contract's
        ``(step, timestamp, value)``, so its pages cannot be handed on. A database store is
        read with one keyset query a page instead (:func:`.tables.keyset_page`); a
        server's pages are put in order in bounded memory (:mod:`.paging`). A file store's
        page is cut from the whole history: MLflow's ``FileStore`` reads a metric's whole
        file into a list for any request, its own pages included."""
        store: Any = getattr(getattr(self.client, "_tracking_client", None), "store", None)
        if _is_server(store):
            return server_page(self._server_stream(store, run_id, key), cursor, limit)
        if _is_database(store):
            from .tables import keyset_page  # SQLAlchemy: there with MLflow's database stores

            action = f"reading a page of {key!r} in run {run_id}"
            with self.errors(action), store.engine.connect() as connection:
                return keyset_page(connection, run_id, key, cursor, limit)
        return page_of(self.history(run_id, key), cursor, limit)

    def _server_stream(self, store: Any, run_id: str, key: str) -> Stream:
        """A tracking server's points of ``key`` from an offset on, one MLflow page (of the
        size asked for) at a time."""
        from mlflow.utils.search_utils import SearchUtils

        def stream(offset: int, size: int) -> Iterator[MetricPoint]:
            token = SearchUtils.create_page_token(offset).decode() if offset else None  # type: ignore[no-untyped-call]
            while True:
                with self.errors(f"reading a page of {key!r} in run {run_id}"):
                    page = store.get_metric_history(run_id, key, max_results=size, page_token=token)
                for m in page:
                    yield MetricPoint(key, canonical(float(m.value)), int(m.step), int(m.timestamp))
                token = page.token
                if not token:
                    return

        return stream

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
        """``search_runs``, page by page: a value a filter string cannot quote is matched
        by the caller (the filter asks for the tag alone then)."""
        from mlflow.entities import ViewType

        ids = [experiments] if isinstance(experiments, str) else list(experiments)
        if not ids:
            return
        conditions = [] if tag is None else [_tag_filter(*tag)]
        if since is not None:
            conditions.append(f"attributes.start_time >= {int(since)}")
        filter_string = " and ".join(conditions)
        order_by = []
        if order is not None:
            key, direction = order
            order_by = [f"metrics.`{key}` {'DESC' if direction == 'max' else 'ASC'}"]
            order_by.append("attributes.run_name ASC")
        view = ViewType.ALL if view_all else ViewType.ACTIVE_ONLY
        token = None
        while True:
            with self.errors("searching runs"):
                page = self.client.search_runs(
                    ids,
                    filter_string=filter_string,
                    run_view_type=view,
                    order_by=order_by,
                    max_results=page_size,
                    page_token=token,
                )
            yield from page
            token = page.token
            if not token:
                return
            page_size = SEARCH_PAGE


def _tag_filter(key: str, value: str | None) -> str:
    quotable = value is not None and not ({"'", "\\"} & set(value))
    return f"tags.`{key}` " + (f"= '{value}'" if quotable else "LIKE '%'")


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


def _is_server(store: Any) -> bool:
    from mlflow.store.tracking.rest_store import RestStore

    return isinstance(store, RestStore)


def _is_database(store: Any) -> bool:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    return isinstance(store, SqlAlchemyStore)
