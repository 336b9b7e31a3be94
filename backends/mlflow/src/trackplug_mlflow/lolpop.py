"""``MLFlowMetricsTracker``: lolpop's class of that name, on trackplug, without its bugs.

lolpop keeps every resource of a pipeline in one MLflow run (its metadata tracker's) and
tells them apart by prefix: a resource is an ``(id, run)`` tuple, and metric ``id`` of
resource ``rid`` is the MLflow metric ``"<rid>.<id>"`` of ``run``; ``log_metrics`` logs
``<split>_<name>`` and tags ``<rid>.performance_metric`` / ``<rid>.performance_metric_value``.
This class keeps that layout, so dashboards and lolpop code that read the run see what they
always saw, and fixes what lolpop got wrong:

* points are buffered and sent with ``log_batch`` (up to 1,000 per call), not one HTTP
  request per metric; reads, ``flush()``, ``close()`` and exit send what is buffered;
* ``log_metrics`` takes any splits (no ``TypeError`` without ``valid``), and a missing
  ``perf_metric`` raises before anything is written;
* ``copy_metrics`` copies the full history (every step and timestamp) of exactly the source
  resource, keeps dotted keys whole, and copies ``training_params`` only when present;
* errors keep their type: trackplug's (``ValidationError``, ``InvalidTypeError`` — a
  ``TypeError`` —, ``BackendError`` with MLflow's exception as ``__cause__``), never a bare
  ``Exception``; a key that would exceed MLflow's 250 characters fails in ``log_metric``.

Which resource a key belongs to is recorded too: the first write of a resource into a run
sets the tag ``trackplug.resource.<hash>`` = its id, so the keys of ``"a"`` never include
those of ``"a.b"`` (``"a.b.loss"`` belongs to ``"a.b"`` once ``"a.b"`` has written).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from trackplug import (
    Capabilities,
    MetricPoint,
    PerfRecord,
    Resource,
    Tracker,
    hookimpl,
    redact_url,
)
from trackplug.integrations.lolpop_calls import (
    lolpop_resource_id,
    resource_id,
    timestamp_and_step,
)
from trackplug.plugin import Batch, ProblemType, check_key, flatten
from trackplug.redirect import installed as installed_redirect

from .store import RunStore
from .urls import MLflowTarget, parse_url

__all__ = ["MLFlowMetricsTracker", "SharedRunBackend", "lolpop_resource_id"]

OWNER_TAG_PREFIX = "trackplug.resource."
TRAINING_PARAMS = "training_params"
_SEPARATOR = "/"  # between run id and resource id in the Resource the facade sees


def _owner_tag(rid: str) -> str:
    return OWNER_TAG_PREFIX + hashlib.sha256(rid.encode()).hexdigest()[:32]


def _split(resource: Resource) -> tuple[str, str]:
    run_id, _, rid = resource.id.partition(_SEPARATOR)
    return run_id, rid


class SharedRunBackend:
    """trackplug's hooks on lolpop's layout: resource ``"<run id>/<rid>"`` is the keys
    ``"<rid>.*"`` of that run. Used by :class:`MLFlowMetricsTracker`."""

    def __init__(self, store: RunStore) -> None:
        self._store = store
        self.url = store.url
        self._known: set[Resource] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SharedRunBackend({self.url!r})"

    # -- writes ---------------------------------------------------------------------------

    def _write(
        self, resource: Resource, points: Sequence[MetricPoint], tags: Mapping[str, str]
    ) -> None:
        run_id, rid = _split(resource)
        prefixed = [p._replace(key=f"{rid}.{p.key}") for p in points]
        with self._lock:
            first = resource not in self._known
        all_tags = {**({_owner_tag(rid): rid} if first else {}), **tags}
        self._store.log(run_id, prefixed, all_tags)
        with self._lock:
            self._known.add(resource)

    @hookimpl
    def log_metric(self, batch: Batch) -> None:
        for resource, points in batch.items():
            if points:
                self._write(resource, points, {})

    @hookimpl
    def log_metrics(
        self, resource: Resource, points: Sequence[MetricPoint], perf: PerfRecord | None
    ) -> None:
        if not points and perf is None:
            return
        rid = _split(resource)[1]
        tags = {}
        if perf is not None:
            value = self._store.capabilities.stored(perf.value)
            tags = {
                f"{rid}.performance_metric": perf.metric,
                f"{rid}.performance_metric_value": repr(value),
            }
        self._write(resource, points, tags)

    # -- reads ----------------------------------------------------------------------------

    def _owned_keys(self, run: Any, rid: str) -> list[str]:
        """The run's metric keys that belong to ``rid`` (not to a longer resource id)."""
        prefix = rid + "."
        longer = [
            owner + "."
            for tag, owner in run.data.tags.items()
            if tag.startswith(OWNER_TAG_PREFIX) and owner.startswith(prefix)
        ]
        return [
            key
            for key in run.data.metrics
            if key.startswith(prefix) and not any(key.startswith(o) for o in longer)
        ]

    @hookimpl
    def history(self, resource: Resource, key: str) -> list[MetricPoint]:
        run_id, rid = _split(resource)
        points = self._store.history(run_id, f"{rid}.{key}")
        return [p._replace(key=key) for p in points]

    @hookimpl
    def get_metric(self, resource: Resource, key: str) -> float | None:
        run_id, rid = _split(resource)
        full = f"{rid}.{key}"
        return self._store.latest(self._store.get_run(run_id), [full]).get(full)

    @hookimpl
    def latest(self, resource: Resource) -> dict[str, float]:
        run_id, rid = _split(resource)
        run = self._store.get_run(run_id)
        values = self._store.latest(run, self._owned_keys(run, rid))
        return {key[len(rid) + 1 :]: value for key, value in values.items()}

    @hookimpl
    def resources(self) -> list[str]:
        """The resources this tracker wrote that have metrics."""
        with self._lock:
            known = sorted(self._known)
        return [r.id for r in known if self.latest(r)]

    @hookimpl
    def get_perf(self, resource: Resource) -> PerfRecord | None:
        run_id, rid = _split(resource)
        tags = self._store.get_run(run_id).data.tags
        metric = tags.get(f"{rid}.performance_metric")
        value = tags.get(f"{rid}.performance_metric_value")
        if metric is None or value is None:
            return None
        try:
            return PerfRecord(metric, float(value))
        except ValueError:  # lolpop wrote the perf record of a missing metric as "None"
            return None

    # -- lifecycle ------------------------------------------------------------------------

    @hookimpl
    def capabilities(self) -> Capabilities:
        return self._store.capabilities

    @hookimpl
    def flush(self) -> None:
        """Every ``log_batch`` has returned: nothing is pending here."""

    @hookimpl
    def close(self) -> None:
        """The client and run belong to the metadata tracker (or the caller): kept open."""


class MLFlowMetricsTracker:
    """A drop-in for lolpop's ``MLFlowMetricsTracker`` (same methods and attributes).

    Built from a metadata tracker (any object with ``client``, ``run`` and ``url``; its
    ``get_resource_id`` is used when it has one), given directly or as lolpop gives it::

        tracker = MLFlowMetricsTracker(metadata_tracker=metadata_tracker)
        tracker = MLFlowMetricsTracker(
            conf={}, dependent_integrations={"component": {"metadata_tracker": metadata_tracker}}
        )

    or standalone, from a tracking URI (``http://…``, ``sqlite:///…``) or a trackplug MLflow
    URL and an experiment, creating the run lolpop's ``mlflow_utils.connect`` would::

        tracker = MLFlowMetricsTracker(url="sqlite:///mlflow.db", experiment_name="demo")
        tracker = MLFlowMetricsTracker(
            conf={"config": {"mlflow_tracking_uri": "…", "mlflow_experiment_name": "demo"}}
        )

    Writes are buffered (``flush_interval`` seconds at most) and sent in batches; reads and
    ``close()`` send them first.
    """

    def __init__(
        self,
        components: Mapping[str, Any] | None = None,
        *args: Any,
        metadata_tracker: Any = None,
        url: str | None = None,
        experiment_name: str | None = None,
        conf: Mapping[str, Any] | None = None,
        problem_type: ProblemType | None = None,
        flush_interval: float = 1.0,
        dependent_integrations: Mapping[str, Mapping[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        peers = {**(components or {}), **(dependent_integrations or {}).get("component", {})}
        self.metadata_tracker: Any = metadata_tracker or peers.get("metadata_tracker")
        config = dict((conf or {}).get("config", {}))
        self.problem_type: ProblemType | None = problem_type or config.get("problem_type")
        if self.metadata_tracker is not None:
            self.client: Any = self.metadata_tracker.client
            self.run: Any = self.metadata_tracker.run
            given = str(getattr(self.metadata_tracker, "url", None) or self.client.tracking_uri)
            # Whatever URI the client was built on ("databricks", a bare path…): not parsed.
            target = MLflowTarget(redact_url(given), given, None)
        else:
            uri = url or config.get("mlflow_tracking_uri")
            name = experiment_name or config.get("mlflow_experiment_name")
            target = _target(uri, name)
            self.client = self.run = None  # made when the store is opened
        self._store: RunStore | None = None  # stays None while a test captures metrics
        self._tracker = self._open_tracker(target, flush_interval)
        if self.run is None:  # captured: no run in MLflow
            self.run = _captured_run()
        #: The MLflow tracking URI, as lolpop's ``url`` (password redacted).
        self.url: str = redact_url(
            target.tracking_uri or (str(self.client.tracking_uri) if self.client else target.url)
        )

    def _open_tracker(self, target: MLflowTarget, flush_interval: float) -> Tracker:
        """The facade on lolpop's layout in MLflow; while a test captures metrics
        (``trackplug.testing``), on the capture instead, with resources keyed by lolpop's
        resource ids and no MLflow client or run of this tracker's own."""

        def open_store(*extra: tuple[str, object]) -> Tracker:
            if self.metadata_tracker is not None:
                self._store = RunStore(target, self.client)
            else:
                self._store = RunStore(target)
                self.client = self._store.client
                self.run = self._start_run(self._store, target)
            return Tracker(
                SharedRunBackend(self._store),
                *(backend for _, backend in extra),
                urls=[target.url, *(name for name, _ in extra)],
                on_error="raise",
                flush_interval=flush_interval,
            )

        capture = installed_redirect()
        if capture is None:
            return open_store()
        return capture.connect([_as_trackplug_url(target.url)], open_store)

    @staticmethod
    def _start_run(store: RunStore, target: MLflowTarget) -> Any:
        """A new run in the experiment (created if missing), as lolpop's connect makes."""
        name = target.experiment or "Default"
        with store.errors(f"starting a run in experiment {name!r}"):
            found = store.client.get_experiment_by_name(name)
            experiment_id = (
                found.experiment_id if found is not None else store.client.create_experiment(name)
            )
            return store.client.create_run(experiment_id)

    def __repr__(self) -> str:
        return f"<MLFlowMetricsTracker {self.url} run={self.run.info.run_id}>"

    # -- resources --------------------------------------------------------------------------

    def get_resource_id(self, resource: Any) -> str:
        """The id lolpop prefixes keys with (the metadata tracker's rule when it has one); a
        bare resource is ``(resource, this tracker's run)``."""
        return resource_id(resource, self.metadata_tracker, self.run)

    def _resource(self, resource: Any) -> tuple[Resource, str, str]:
        """``(facade resource, run id, resource id)`` of a lolpop ``(id, run)`` tuple (a bare
        id means this tracker's run)."""
        run = resource[1] if isinstance(resource, tuple) and len(resource) > 1 else self.run
        run_id, rid = str(run.info.run_id), self.get_resource_id(resource)
        if self._store is None:  # captured: the test reads lolpop's resource ids
            return Resource(rid), run_id, rid
        return Resource(f"{run_id}{_SEPARATOR}{rid}"), run_id, rid

    # -- lolpop's methods -----------------------------------------------------------------

    def log_metric(self, resource: Any, id: str, value: float, *args: Any, **kwargs: Any) -> None:
        """Log metric ``id`` of ``resource``; ``timestamp`` (ms) and ``step`` as for
        ``MlflowClient.log_metric`` (also positionally, in that order)."""
        timestamp, step = timestamp_and_step(args, kwargs)
        target, _, rid = self._resource(resource)
        check_key(f"{rid}.{id}")  # the key MLflow gets: refused now, not at the flush
        self._tracker.log_metric(target, id, value, step, timestamp)

    def get_metric(self, resource: Any, id: str) -> float | None:
        """The latest value of metric ``id`` of ``resource``, or None."""
        return self._tracker.get_metric(self._resource(resource)[0], id)

    def log_metrics(
        self,
        resource: Any,
        metrics: Mapping[str, Any],
        perf_metric: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        """``{split: {name: value}}`` as ``<split>_<name>`` (flat entries as they are); with
        ``perf_metric``, its valid value (else train) as the performance record. All or
        nothing."""
        target, _, rid = self._resource(resource)
        for key in flatten(metrics):
            check_key(f"{rid}.{key}")
        self._tracker.log_metrics(target, metrics, perf_metric)

    def copy_metrics(self, from_resource: Any, to_resource: Any, *args: Any, **kwargs: Any) -> None:
        """Copy the full history and the performance record of exactly ``from_resource``
        into ``to_resource``, and its ``training_params`` when it has them."""
        source, source_run, source_rid = self._resource(from_resource)
        target, target_run, target_rid = self._resource(to_resource)
        self._tracker.copy_metrics(source, target)
        self._tracker.flush()
        self._copy_training_params(source_run, source_rid, target_run, target_rid)

    def _copy_training_params(
        self, source_run: str, source_rid: str, target_run: str, target_rid: str
    ) -> None:
        store = self._store
        if store is None:  # captured: tags are not captured (yet)
            return
        params = store.get_run(source_run).data.tags.get(f"{source_rid}.{TRAINING_PARAMS}")
        if params is None:
            return  # lolpop crashed here (json.loads(None))
        with store.errors(f"copying {TRAINING_PARAMS} to run {target_run}"):
            self.client.set_tag(target_run, f"{target_rid}.{TRAINING_PARAMS}", params)
            existing = store.get_run(target_run).data.params
            for name, value in _params(params).items():
                if name not in existing:  # MLflow params are write-once
                    self.client.log_param(target_run, name, value)

    def log_prediction_metrics(
        self, prediction_job: Any, predictions: Any, *args: Any, **kwargs: Any
    ) -> dict[str, float]:
        """``num_predictions`` and the class distribution (classification) or the
        distribution's moments (regression) as metrics; for classification also lolpop's
        ``<job>.class_distribution`` tag. Returns the metrics."""
        target, run_id, rid = self._resource(prediction_job)
        summary = self._tracker.log_prediction_metrics(target, predictions, self.problem_type)
        shares = {
            key.removeprefix("class_distribution."): value
            for key, value in summary.items()
            if key.startswith("class_distribution.")
        }
        if shares and self._store is not None:  # captured: tags are not captured (yet)
            with self._store.errors(f"tagging the class distribution in run {run_id}"):
                self.client.set_tag(run_id, f"{rid}.class_distribution", json.dumps(shares))
        return summary

    # -- lifecycle --------------------------------------------------------------------------

    def flush(self) -> None:
        """Send every buffered point now."""
        self._tracker.flush()

    def close(self) -> None:
        """Send what is buffered; the MLflow run stays as it is (the pipeline ends it)."""
        self._tracker.close()

    def __enter__(self) -> MLFlowMetricsTracker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _as_trackplug_url(uri: str) -> str:
    """A metadata tracker's tracking URI (``http://…``, ``sqlite:///…``, ``databricks``)
    as the trackplug URL naming the same store; a trackplug URL stays as it is."""
    if uri.lower().startswith("mlflow"):
        return uri
    return f"mlflow+{uri}" if "://" in uri else "mlflow://"


def _captured_run() -> Any:
    """The run of a standalone tracker whose metrics a test captures: none in MLflow."""
    from types import SimpleNamespace
    from uuid import uuid4

    return SimpleNamespace(info=SimpleNamespace(run_id=f"captured-{uuid4().hex}"))


def _target(uri: str | None, experiment: str | None) -> MLflowTarget:
    """A trackplug MLflow URL, or a plain MLflow tracking URI, as a target."""
    if uri is None:
        return parse_url("mlflow://", experiment)
    if uri.lower().startswith("mlflow"):
        return parse_url(uri, experiment)
    return parse_url(f"mlflow+{uri}", experiment)


def _params(text: str) -> dict[str, str]:
    """lolpop's ``training_params`` tag (``str(dict)``) as ``{name: value}``; {} if not a
    dict (it is copied as a tag either way; nothing is evaluated)."""
    try:
        parsed = json.loads(text.replace("'", '"'))
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in parsed.items()} if isinstance(parsed, dict) else {}
