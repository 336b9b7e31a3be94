"""``MLflowBackend``: one MLflow run per trackplug resource, in one experiment.

A resource's run has the run name = the resource id and two tags: ``trackplug.resource``
(the id) and ``trackplug.resource_key`` (its SHA-256, which search filters can match without
quoting). Metrics are ordinary MLflow metrics of that run; the performance record is the
pair of tags ``performance_metric`` / ``performance_metric_value``. Runs are created on the
first write and marked FINISHED when the backend closes. Params are MLflow params (text) and
tags MLflow tags; a trackplug run's status and end (the tags ``trackplug.run.status`` and
``.end``) also become the MLflow run's own status and end time, so MLflow's UI shows them.

With ``?runs=all`` every run of the store is a resource, trackplug's and MLflow's own
alike, by the rule of :mod:`.native`.

Reads of a database store whose schema :mod:`.tables` knows are SQL on MLflow's tables,
without importing mlflow; every write, and every read of another store, goes through
MLflow's client (:class:`.store.RunStore`), built on the first write or at open.

Two writers that create the same resource at once both find every run carrying its tag
right after creating theirs; both then use the earliest (start time, run id) and the other
writer deletes its own, so they converge on one run.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from trackplug.plugin import (
    RUN_END_TAG,
    RUN_STATUS_TAG,
    BackendError,
    Batch,
    Capabilities,
    HistoryPage,
    MetricPoint,
    ParamValue,
    PerfRecord,
    Resource,
    ValidationError,
    hookimpl,
    raise_on_conflict,
    rank,
)

from .native import RunIndex
from .reads import SEARCH_PAGE, MetricOrder, RunReads
from .urls import MLflowTarget, parse_url

if TYPE_CHECKING:
    from .store import RunStore

__all__ = ["MLflowBackend"]

RESOURCE_TAG = "trackplug.resource"  # also native.RESOURCE_TAG
RESOURCE_KEY_TAG = "trackplug.resource_key"
ENV_EXPERIMENT_NAME = "MLFLOW_EXPERIMENT_NAME"
ENV_EXPERIMENT_ID = "MLFLOW_EXPERIMENT_ID"
DEFAULT_EXPERIMENT_ID = "0"
PERF_METRIC_TAG = "performance_metric"
PERF_VALUE_TAG = "performance_metric_value"
#: Tags of trackplug's own bookkeeping in a run, not the user's.
_OWN_TAGS = frozenset({RESOURCE_TAG, RESOURCE_KEY_TAG, PERF_METRIC_TAG, PERF_VALUE_TAG})
#: Runs of trackplug resources.
TRACKPLUG_RUNS = (RESOURCE_KEY_TAG, None)
#: MLflow's tags that ``?runs=all`` does not report: the run name is the resource's id.
_NAME_TAG = "mlflow.runName"
#: A nested run's parent: MLflow's tag holds its run id, which means nothing in another
#: store; trackplug's names the parent's resource, so a copy can point at the parent's copy.
MLFLOW_PARENT_TAG = "mlflow.parentRunId"
PARENT_TAG = "trackplug.parent"


def resource_key(resource_id: str) -> str:
    """The tag value that finds a resource's run (hex: safe inside a filter string)."""
    return hashlib.sha256(resource_id.encode()).hexdigest()


class MLflowBackend:
    """trackplug's hooks on an MLflow tracking store; ``url`` as in :mod:`.urls`.

    :param experiment: the experiment's name (same as ``?experiment=``); created if missing.
    :param client: an existing ``MlflowClient`` to use instead of building one (reads then
        go through it too, not through :mod:`.tables`).
    :param probe_timeout: seconds to wait for a tracking server or database server to
        answer at open (default: the URL's ``?timeout=``, 30 s unless given).
    """

    def __init__(
        self,
        url: str = "mlflow://",
        *,
        experiment: str | None = None,
        client: Any = None,
        probe_timeout: float | None = None,
    ) -> None:
        self.target: MLflowTarget = parse_url(url, experiment)
        self.url = self.target.url
        self._client = client
        self._probe_timeout = probe_timeout
        self._writer: RunStore | None = None
        self._writer_lock = threading.Lock()
        self._lock = threading.Lock()
        #: Where reads go: MLflow's tables when they can be read directly, else the client.
        self._reads: RunReads = self._tables() or self._store
        every = self.target.every_experiment
        #: The experiment written to and read ("" with ``?runs=all`` and no experiment).
        self.experiment_id = "" if every else self._experiment_id()
        #: Every run of the store as a resource (``?runs=all``), else None: trackplug's runs.
        self._index = (
            RunIndex(
                self._reads,
                self._create_experiment,
                None if every else self.experiment_id,
                self.target.deleted,
            )
            if self.target.runs == "all"
            else None
        )
        self._runs: dict[Resource, str] = {}
        self._created: list[str] = []

    def __repr__(self) -> str:
        return f"MLflowBackend({self.url!r}, experiment_id={self.experiment_id!r})"

    @property
    def client(self) -> Any:
        """The ``MlflowClient`` this backend writes with (built, importing mlflow, on first use)."""
        return self._store.client

    @property
    def _store(self) -> RunStore:
        """MLflow's client on the store: every write goes through it."""
        with self._writer_lock:
            if self._writer is None:
                from .store import RunStore

                self._writer = RunStore(
                    self.target, self._client, probe_timeout=self._probe_timeout
                )
            return self._writer

    def _tables(self) -> RunReads | None:
        """A reader of the database store's tables (:mod:`.tables`), when it can be one."""
        if self._client is not None or self.target.kind != "database":
            return None
        from .tables import open_tables

        return open_tables(self.target)

    def _create_experiment(self, name: str) -> str:
        with self._store.errors(f"creating experiment {name!r}"):
            return str(self.client.create_experiment(name))

    def _experiment_id(self) -> str:
        """The URL's experiment, else ``$MLFLOW_EXPERIMENT_NAME``, else
        ``$MLFLOW_EXPERIMENT_ID``, else MLflow's ``Default`` ("0"); a name is created if
        missing, as MLflow does."""
        name = self.target.experiment or os.environ.get(ENV_EXPERIMENT_NAME) or None
        if name is None:
            experiment_id = os.environ.get(ENV_EXPERIMENT_ID) or DEFAULT_EXPERIMENT_ID
            found = self._reads.experiment(experiment_id=experiment_id)
            return self._usable(found, f"id {experiment_id!r}")
        found = self._reads.experiment(name=name)
        if found is None:
            return self._create_experiment(name)
        return self._usable(found, repr(name))

    def _usable(self, experiment: Any, described: str) -> str:
        if experiment.lifecycle_stage == "deleted":
            raise BackendError(
                f"MLflow at {self.url}: experiment {described} is deleted; restore it "
                "(MlflowClient().restore_experiment) or choose another with ?experiment="
            )
        return str(experiment.experiment_id)

    # -- runs -----------------------------------------------------------------------------

    def _run_id(self, resource: Resource) -> str | None:
        """The run of ``resource``: cached, else found by its tag; None if it has none."""
        if self._index is not None:
            return self._index.run_id(resource.id)
        run_id = self._runs.get(resource)
        if run_id is None:
            run_id = self._find(self.experiment_id, resource.id)
            if run_id is not None:
                with self._lock:
                    self._runs[resource] = run_id
        return run_id

    def _ensure_run(self, resource: Resource) -> str:
        """The run of ``resource``, created on its first write."""
        run_id = self._run_id(resource)
        if run_id is None:
            run_id = self._create(resource)
            with self._lock:
                self._runs[resource] = run_id
        return run_id

    def _find(self, experiment_id: str, local_id: str) -> str | None:
        """The run tagged with ``local_id`` in the experiment (the earliest of several)."""
        tag = (RESOURCE_KEY_TAG, resource_key(local_id))
        runs = list(self._reads.search(experiment_id, tag, page_size=50))
        if not runs:
            return None
        first = min(runs, key=lambda r: (r.info.start_time or 0, r.info.run_id))
        return str(first.info.run_id)

    def _create(self, resource: Resource) -> str:
        experiment_id, local_id = self._place(resource)
        tags = {RESOURCE_TAG: local_id, RESOURCE_KEY_TAG: resource_key(local_id)}
        with self._store.errors(f"creating the run of resource {resource.id!r}"):
            run = self.client.create_run(experiment_id, run_name=local_id, tags=tags)
        run_id = str(run.info.run_id)
        chosen = self._find(experiment_id, local_id) or run_id
        if self._index is not None:
            self._index.remember(resource.id, chosen)
        with self._store.errors(f"finishing the run of resource {resource.id!r}"):
            if chosen != run_id:  # another writer created it first: use theirs
                self.client.delete_run(run_id)
            else:
                self._created.append(run_id)
        return chosen

    def _place(self, resource: Resource) -> tuple[str, str]:
        """The experiment of a new resource's run, and the resource's id within it."""
        if self._index is None:
            return self.experiment_id, resource.id
        return self._index.place(resource.id)

    def _resource_runs(self, order: MetricOrder | None = None, page: int = 1000) -> Iterator[Any]:
        """Every trackplug run of the experiment (one per resource), in ``order``."""
        seen: set[str] = set()
        for run in self._reads.search(self.experiment_id, TRACKPLUG_RUNS, order, page):
            rid = run.data.tags.get(RESOURCE_TAG)
            if rid is not None and rid not in seen:
                seen.add(rid)
                yield run

    # -- writes ---------------------------------------------------------------------------

    @hookimpl
    def log_metric(self, batch: Batch) -> None:
        for resource, points in batch.items():
            if points:
                self._store.log(self._ensure_run(resource), points)

    @hookimpl
    def log_metrics(
        self, resource: Resource, points: Sequence[MetricPoint], perf: PerfRecord | None
    ) -> None:
        if not points and perf is None:
            return
        tags = {}
        if perf is not None:
            value = self._reads.capabilities.stored(perf.value)  # as the metric reads back
            tags = {PERF_METRIC_TAG: perf.metric, PERF_VALUE_TAG: repr(value)}
        self._store.log(self._ensure_run(resource), points, tags)

    # -- reads ----------------------------------------------------------------------------

    @hookimpl
    def history(self, resource: Resource, key: str) -> list[MetricPoint]:
        run_id = self._run_id(resource)
        return [] if run_id is None else self._reads.history(run_id, key)

    @hookimpl
    def history_page(
        self, resource: Resource, key: str, cursor: str | None, limit: int
    ) -> HistoryPage:
        """A database store's page is one keyset query in the contract's order; a server's
        or file store's is cut from the whole history (MLflow's own pages follow
        ``(timestamp, step, value)``, not ``(step, timestamp, value)``: see :mod:`.store`)."""
        run_id = self._run_id(resource)
        if run_id is None:
            return HistoryPage([], None)
        return self._reads.history_page(run_id, key, cursor, limit)

    @hookimpl
    def get_metric(self, resource: Resource, key: str) -> float | None:
        run_id = self._run_id(resource)
        if run_id is None:
            return None
        return self._reads.latest(self._reads.get_run(run_id), [key]).get(key)

    @hookimpl
    def latest(self, resource: Resource) -> dict[str, float]:
        run_id = self._run_id(resource)
        return {} if run_id is None else self._reads.latest(self._reads.get_run(run_id))

    @hookimpl
    def resources(self) -> list[str]:
        if self._index is not None:
            return sorted(rid for rid, run in self._index.runs() if run.data.metrics)
        return sorted(
            run.data.tags[RESOURCE_TAG] for run in self._resource_runs() if run.data.metrics
        )

    @hookimpl
    def get_perf(self, resource: Resource) -> PerfRecord | None:
        run_id = self._run_id(resource)
        if run_id is None:
            return None
        tags = self._reads.get_run(run_id).data.tags
        metric, value = tags.get(PERF_METRIC_TAG), tags.get(PERF_VALUE_TAG)
        if metric is None or value is None:
            return None
        try:
            return PerfRecord(metric, float(value))
        except ValueError as exc:
            raise BackendError(
                f"MLflow at {self.url}: run {run_id} has a {PERF_VALUE_TAG} tag that is not a "
                f"number ({value[:40]!r}); it was not written by trackplug"
            ) from exc

    @hookimpl
    def best(self, key: str, order: Literal["max", "min"], limit: int) -> list[tuple[str, float]]:
        """``search_runs(order_by=metrics.key)``, read until the ranking is certain.

        MLflow orders runs by its latest value, NaN after every number, then runs without
        the metric. Runs it reports NaN for may hold a number <= 0 by the contract (see
        :mod:`.store`): they are read to the end (their history decides) whenever such a
        number could still rank, i.e. unless ``order`` is ``max`` and the ``limit``-th
        value is positive.
        """
        if self._index is not None:
            return self._best_of_every_run(key, order, limit)
        ranked: list[tuple[str, float]] = []
        unsure: list[Any] = []
        # A page as large as the limit, within MLflow's bounds (a server refuses a page size
        # past 64 bits with a raw ValueError; a database store refuses it past 50,000).
        for run in self._resource_runs((key, order), page=min(limit + 1, SEARCH_PAGE)):
            value = run.data.metrics.get(key)
            if value is None:
                break  # MLflow puts runs without the metric last
            if math.isnan(value):
                unsure.append(run)
            elif len(ranked) >= limit and value != ranked[limit - 1][1]:
                if order == "max" and ranked[limit - 1][1] > 0:
                    break
            else:
                ranked.append((run.data.tags[RESOURCE_TAG], float(value)))
        for run in unsure:
            value = self._reads.latest_value(run.info.run_id, key, math.nan)
            if value is not None and not math.isnan(value):
                ranked.append((run.data.tags[RESOURCE_TAG], value))
        return rank(ranked, order, limit)

    def _best_of_every_run(
        self, key: str, order: Literal["max", "min"], limit: int
    ) -> list[tuple[str, float]]:
        """``?runs=all``: the contract's ranking of every run's latest value (one search)."""
        assert self._index is not None
        latest = []
        for rid, run in self._index.runs():
            value = run.data.metrics.get(key)
            if value is not None:
                latest.append((rid, self._reads.latest_value(run.info.run_id, key, value)))
        return rank([(rid, v) for rid, v in latest if v is not None], order, limit)

    # -- params and tags ------------------------------------------------------------------

    @hookimpl
    def log_params(self, resource: Resource, params: Mapping[str, ParamValue]) -> None:
        """MLflow params, ``str(value)``; MLflow refuses a changed value too, but the
        conflict is found first so that it is the contract's error and nothing is sent."""
        run_id = self._ensure_run(resource)
        held: dict[str, str] = self._reads.get_run(run_id).data.params
        raise_on_conflict(resource, held, params, self.capabilities())
        new = {key: str(value) for key, value in params.items() if key not in held}
        if new:
            self._store.log_params_tags(run_id, params=new)

    @hookimpl
    def get_params(self, resource: Resource) -> dict[str, ParamValue]:
        run_id = self._run_id(resource)
        if run_id is None:
            return {}
        return dict(sorted(self._reads.get_run(run_id).data.params.items()))

    @hookimpl
    def set_tags(self, resource: Resource, tags: Mapping[str, str]) -> None:
        clash = sorted(_OWN_TAGS & set(tags))
        if clash:
            raise ValidationError(
                f"tag {clash[0]!r} is the MLflow backend's own (lolpop's performance record "
                "layout): choose another name; nothing was written"
            )
        run_id = self._ensure_run(resource)
        parent = tags.get(PARENT_TAG)
        if parent is None and MLFLOW_PARENT_TAG in tags:  # a copy again: the parent it names
            parent = self._reads.get_run(run_id).data.tags.get(PARENT_TAG)
        if parent is not None:  # the parent's run in this store (created if not yet copied)
            tags = {**tags, MLFLOW_PARENT_TAG: self._ensure_run(Resource(parent))}
        self._store.log_params_tags(run_id, tags=tags)
        status = tags.get(RUN_STATUS_TAG)
        if status is not None:
            self._set_status(run_id, status, tags.get(RUN_END_TAG))

    def _set_status(self, run_id: str, status: str, end: str | None) -> None:
        """A trackplug run's status as the MLflow run's own (RUNNING, FINISHED…)."""
        with self._store.errors(f"setting the status of run {run_id}"):
            if status == "running":
                self.client.update_run(run_id, status="RUNNING")
                return
            end_time = int(end) if end and end.isdigit() else None
            self._store.terminate(run_id, status.upper(), end_time)
        with self._lock:  # ended: close() must not mark it FINISHED over its status
            if run_id in self._created:
                self._created.remove(run_id)

    @hookimpl
    def get_tags(self, resource: Resource) -> dict[str, str]:
        run_id = self._run_id(resource)
        if run_id is None:
            return {}
        tags: dict[str, str] = self._reads.get_run(run_id).data.tags
        reported = {key: value for key, value in tags.items() if self._reported(key)}
        parent = tags.get(MLFLOW_PARENT_TAG)
        if self._index is not None and parent is not None:
            parent_resource = self._index.resource_of(parent)
            if parent_resource is not None:
                reported[PARENT_TAG] = parent_resource
        return dict(sorted(reported.items()))

    def _reported(self, tag: str) -> bool:
        """Whether a run's tag is the resource's: not trackplug's bookkeeping, and of
        MLflow's own (``mlflow.*``) only with ``?runs=all``, the run name aside."""
        if tag in _OWN_TAGS:
            return False
        if tag.startswith("mlflow."):
            return self._index is not None and tag != _NAME_TAG
        return True

    @hookimpl
    def tagged(self, key: str, value: str | None) -> list[str]:
        """``search_runs`` by the tag; a value a filter string cannot quote is matched here."""
        if self._index is not None:
            return sorted(
                rid
                for rid, run in self._index.runs()
                if key in run.data.tags and value in (None, run.data.tags[key])
            )
        found = set()
        for run in self._reads.search(self.experiment_id, (key, value)):
            rid = run.data.tags.get(RESOURCE_TAG)
            if rid is not None and (value is None or run.data.tags.get(key) == value):
                found.add(rid)
        return sorted(found)

    # -- lifecycle ------------------------------------------------------------------------

    @hookimpl
    def capabilities(self) -> Capabilities:
        return self._reads.capabilities

    @hookimpl
    def flush(self) -> None:
        """Nothing to do: every ``log_batch`` has returned, so MLflow has the points."""

    @hookimpl
    def close(self) -> None:
        """Mark the runs this backend created FINISHED, as a finished script leaves them."""
        created, self._created = self._created, []
        try:
            for run_id in created:
                self._finish(run_id)
        finally:
            self._reads.close()
            if self._writer is not None and self._writer is not self._reads:
                self._writer.close()

    def _finish(self, run_id: str) -> None:
        """FINISHED, unless someone deleted the run meanwhile (then there is nothing to do)."""
        from mlflow.exceptions import MlflowException

        with self._store.errors(f"finishing run {run_id}"):
            try:
                self._store.terminate(run_id)
            except MlflowException:
                if self.client.get_run(run_id).info.lifecycle_stage != "deleted":
                    raise
