"""trackplug as lolpop components: metrics trackers that lolpop loads from its own YAML.

Two ``BaseMetricsTracker`` subclasses, under names lolpop's own components do not shadow
(lolpop looks a class name up in ``lolpop.component`` first):

- :class:`TrackplugMLFlowMetricsTracker`: lolpop's ``MLFlowMetricsTracker`` layout (every
  resource in the metadata tracker's run, keys prefixed ``"<resource id>."``), sharing that
  tracker's client and run, on :class:`trackplug_mlflow.MLFlowMetricsTracker` (lolpop's bugs
  fixed; needs ``trackplug-mlflow``);
- :class:`TrackplugMetricsTracker`: the standalone component of lolpop's
  ``BaseMetricsTracker`` docs, on any trackplug URL (config ``trackplug_url``: a URL or a list
  of them, a fan-out; default ``$TRACKPLUG_URL``, else ``sqlite:///trackplug.db``).

lolpop builds them like any component: ``cls(conf=…, parent=…, dependent_integrations=…,
plugin_mods=…, …)``, then sets its peers through ``_update_integrations``; its ``log``,
``notify`` and ``_get_config`` are lolpop's own. A failing write or read is also sent to
lolpop's notifier, and raised with its trackplug type (lolpop re-raised a bare
``Exception``). lolpop finds them through its plugin mechanism, the module
``trackplug_lolpop`` (see ``docs/lolpop.md``). Importing this module imports lolpop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trackplug import TrackplugError, connect

from .lolpop_calls import LolpopTracker, problem_type_of

try:
    from lolpop.component.metrics_tracker.base_metrics_tracker import BaseMetricsTracker
except ModuleNotFoundError as missing:  # pragma: no cover - depends on the environment
    raise ImportError(
        "trackplug.integrations.lolpop needs lolpop: pip install --no-deps lolpop==0.2.0, "
        "plus the packages it imports (docs/lolpop.md, Install)"
    ) from missing

__all__ = ["TrackplugMLFlowMetricsTracker", "TrackplugMetricsTracker"]


class _TrackplugComponent(BaseMetricsTracker):  # type: ignore[misc]  # lolpop is untyped
    """lolpop's component protocol around an object with lolpop's five methods."""

    _impl: Any

    def log_metric(self, resource: Any, id: str, value: float, *args: Any, **kwargs: Any) -> None:
        """Log metric ``id`` of ``resource`` (``timestamp``, ``step`` as MLflow takes them)."""
        self._call("log_metric", resource, id, value, *args, **kwargs)

    def get_metric(self, resource: Any, id: str, *args: Any, **kwargs: Any) -> float | None:
        """The latest value of metric ``id`` of ``resource``, or None."""
        value: float | None = self._call("get_metric", resource, id)
        return value

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
        self._call("log_metrics", resource, metrics, perf_metric)

    def copy_metrics(self, from_resource: Any, to_resource: Any, *args: Any, **kwargs: Any) -> None:
        """The full history and the performance record of exactly ``from_resource``."""
        self._call("copy_metrics", from_resource, to_resource)

    def log_prediction_metrics(
        self, prediction_job: Any, predictions: Any, *args: Any, **kwargs: Any
    ) -> dict[str, float]:
        """Summary metrics of ``predictions`` (count, class shares or moments); returned."""
        summary: dict[str, float] = self._call(
            "log_prediction_metrics", prediction_job, predictions
        )
        return summary

    def flush(self, *args: Any, **kwargs: Any) -> None:
        """Send every buffered point now (reads and exit do too)."""
        self._call("flush")

    def stop(self, *args: Any, **kwargs: Any) -> None:
        """Send what is buffered and release the store (lolpop's ``stop`` convention)."""
        self._call("close")

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self._impl, method)(*args, **kwargs)
        except TrackplugError as error:
            if getattr(self, "notifier", None) is not None:  # lolpop gives one by default
                self.notify(f"{self.name}.{method} failed: {error}", "ERROR")
            raise

    def _metadata_tracker(self) -> Any:
        """The metadata tracker lolpop gave this component (its default: MLflow's)."""
        return getattr(self, "metadata_tracker", None)


class TrackplugMetricsTracker(_TrackplugComponent):
    """lolpop's standalone metrics tracker on a trackplug URL (config ``trackplug_url``).

    Each lolpop resource is the trackplug resource of its id (the metadata tracker's
    ``get_resource_id``): ``trackplug ls`` lists ``iris``, ``<run id>.iris``,
    ``iris_predictions``. Points are buffered and sent in batches (every second, on reads,
    on :meth:`stop` and at exit).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        urls = self._get_config("trackplug_url")
        urls = [] if urls is None else [urls] if isinstance(urls, str) else [str(u) for u in urls]
        tracker = connect(*urls)
        self._impl = LolpopTracker(tracker, self._metadata_tracker(), self.problem_type)
        #: Where the metrics live (password redacted), as lolpop's ``url``.
        self.url = tracker.url
        self.log(f"Tracking metrics with trackplug at {self.url}", level="INFO")


class TrackplugMLFlowMetricsTracker(_TrackplugComponent):
    """lolpop's ``MLFlowMetricsTracker``, fixed: same MLflow layout, same client and run as
    the metadata tracker (``client``, ``run``, ``url`` are its). Without an MLflow metadata
    tracker: a new run from config ``mlflow_tracking_uri`` / ``mlflow_experiment_name``, as
    lolpop's class does."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        try:
            from trackplug_mlflow import MLFlowMetricsTracker
        except ModuleNotFoundError as missing:  # pragma: no cover - depends on the environment
            raise ImportError(
                f"{self.name} needs trackplug-mlflow (pip install -e ./backends/mlflow)"
            ) from missing

        metadata = self._metadata_tracker()
        problem_type = problem_type_of(self.problem_type)
        if hasattr(metadata, "client") and hasattr(metadata, "run"):
            self._impl = MLFlowMetricsTracker(metadata_tracker=metadata, problem_type=problem_type)
        else:
            config = {
                "mlflow_tracking_uri": self._get_config("mlflow_tracking_uri"),
                "mlflow_experiment_name": self._get_config("mlflow_experiment_name"),
            }
            self._impl = MLFlowMetricsTracker(conf={"config": config}, problem_type=problem_type)
        self.client = self._impl.client
        self.run = self._impl.run
        self.url = self._impl.url
        self.log(f"Tracking metrics in MLflow run {self.run.info.run_id}", level="INFO")
