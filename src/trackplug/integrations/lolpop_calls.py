"""lolpop's metrics-tracker interface on a trackplug :class:`~trackplug.Tracker`, without
lolpop: how lolpop passes resources, timestamps and steps, and :class:`LolpopTracker`, its
five methods over any trackplug URL. Imports nothing of lolpop (nor of any backend).

A lolpop resource is an ``(id, run)`` tuple made by its metadata tracker, whose
``get_resource_id`` names it (``MLFlowMetadataTracker``: the id, or a path's file stem with
dots made underscores). A bare resource (a string, or an object with ``id``) is taken as the
tuple ``(id, run)``: lolpop's rule applied to a bare ``"bare"`` would read ``"bare"[0]``, the
id ``"b"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from trackplug import Tracker

__all__ = ["LolpopTracker", "lolpop_resource_id", "resource_id", "timestamp_and_step"]


def lolpop_resource_id(resource: Any) -> str:
    """lolpop's ``MLFlowMetadataTracker.get_resource_id``: the tuple's id, or its file stem
    (dots made underscores) when it contains ``/``."""
    rid = str(resource[0] if isinstance(resource, tuple) else resource)
    if "/" in rid:
        rid = Path(rid).stem.replace(".", "_")
    return rid


def resource_id(resource: Any, metadata_tracker: Any = None, run: Any = None) -> str:
    """The id lolpop gives ``resource``: its metadata tracker's ``get_resource_id`` where it
    has one, else lolpop's rule. A bare resource is first made the tuple ``(id, run)``."""
    if not isinstance(resource, tuple):
        resource = (getattr(resource, "id", resource), run)
    get = getattr(metadata_tracker, "get_resource_id", None)
    return str(get(resource)) if callable(get) else lolpop_resource_id(resource)


def timestamp_and_step(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[int | None, int]:
    """``timestamp`` and ``step`` of lolpop's ``log_metric(resource, id, value, *args,
    **kwargs)``, passed on as ``MlflowClient.log_metric`` takes them (also positionally, in
    that order); ``synchronous`` is accepted and ignored (trackplug batches every write)."""
    names = ("timestamp", "step")
    if len(args) > len(names):
        raise TypeError(f"log_metric takes at most {len(names)} extra arguments (timestamp, step)")
    given = dict(zip(names, args, strict=False))
    for name in names:
        if name in kwargs:
            if name in given:
                raise TypeError(f"log_metric got {name} twice")
            given[name] = kwargs.pop(name)
    kwargs.pop("synchronous", None)
    if kwargs:
        raise TypeError(f"log_metric got unexpected arguments: {', '.join(sorted(kwargs))}")
    step = given.get("step")
    return given.get("timestamp"), 0 if step is None else step


def problem_type_of(problem_type: Any) -> Literal["classification", "regression"] | None:
    """lolpop's ``problem_type`` as trackplug's (``timeseries`` and others: inferred)."""
    if problem_type == "classification":
        return "classification"
    if problem_type == "regression":
        return "regression"
    return None


class LolpopTracker:
    """lolpop's ``BaseMetricsTracker`` methods on a trackplug tracker: one trackplug resource
    per lolpop resource id (``"iris"``, ``"<run id>.iris"``, ``"iris_predictions"``).

    :param tracker: where the metrics go (closed by :meth:`close`).
    :param metadata_tracker: names resources (its ``get_resource_id``) and, through its
        ``run``, gives bare resources their run; None: lolpop's rule.
    :param problem_type: lolpop's, for :meth:`log_prediction_metrics`.
    """

    def __init__(
        self, tracker: Tracker, metadata_tracker: Any = None, problem_type: Any = None
    ) -> None:
        self.tracker = tracker
        self.metadata_tracker = metadata_tracker
        self.problem_type = problem_type_of(problem_type)
        #: Where the metrics live (password redacted), as lolpop's ``url``.
        self.url: str = tracker.url

    def _id(self, resource: Any) -> str:
        run = getattr(self.metadata_tracker, "run", None)
        return resource_id(resource, self.metadata_tracker, run)

    def log_metric(self, resource: Any, id: str, value: float, *args: Any, **kwargs: Any) -> None:
        """Log metric ``id`` of ``resource`` (``timestamp``, ``step`` as MLflow takes them)."""
        timestamp, step = timestamp_and_step(args, kwargs)
        self.tracker.log_metric(self._id(resource), id, value, step, timestamp)

    def get_metric(self, resource: Any, id: str, *args: Any, **kwargs: Any) -> float | None:
        """The latest value of metric ``id`` of ``resource``, or None."""
        return self.tracker.get_metric(self._id(resource), id)

    def log_metrics(
        self,
        resource: Any,
        metrics: Mapping[str, Any],
        perf_metric: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        """``{split: {name: value}}`` as ``<split>_<name>``; with ``perf_metric``, its valid
        value (else train) as the performance record. All or nothing."""
        self.tracker.log_metrics(self._id(resource), metrics, perf_metric)

    def copy_metrics(self, from_resource: Any, to_resource: Any, *args: Any, **kwargs: Any) -> None:
        """The full history and the performance record of exactly ``from_resource``."""
        self.tracker.copy_metrics(self._id(from_resource), self._id(to_resource))

    def log_prediction_metrics(
        self, prediction_job: Any, predictions: Any, *args: Any, **kwargs: Any
    ) -> dict[str, float]:
        """``num_predictions`` and the class distribution (classification) or the moments
        (regression) of ``predictions`` as metrics; returns them."""
        job = self._id(prediction_job)
        return self.tracker.log_prediction_metrics(job, predictions, self.problem_type)

    def flush(self) -> None:
        """Send every buffered point now."""
        self.tracker.flush()

    def close(self) -> None:
        """Send what is buffered and close the tracker."""
        self.tracker.close()
