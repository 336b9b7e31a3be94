"""``MLFlowMetricsTracker``, the plain drop-in: lolpop's interface and layout, and each lolpop
bug fixed, without lolpop installed.

The metadata tracker is the smallest object lolpop's class reads: ``client``, ``run``, ``url``
and lolpop's ``get_resource_id``, as lolpop 0.2.0 writes it. Everything below runs on a real
MLflow store; lolpop's own components and pipelines are in ``test_lolpop_components.py`` and
``test_lolpop_pipelines.py``.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from trackplug_mlflow import MLFlowMetricsTracker

from trackplug import BackendError, InvalidTypeError, ValidationError


class MetadataTracker:
    """What lolpop's ``MLFlowMetadataTracker`` gives the metrics tracker."""

    def __init__(self, tracking_uri: str) -> None:
        self.url = tracking_uri
        self.client = MlflowClient(tracking_uri)
        experiment = self.client.create_experiment("pipeline")
        self.run = self.client.create_run(experiment)

    def get_resource_id(self, resource: Any) -> str:
        """lolpop 0.2.0's ``MLFlowMetadataTracker.get_resource_id``, as written there."""
        resource_out = resource[0]
        if "/" in resource_out:
            resource_out = str(Path(resource_out).stem).replace(".", "_")
        return str(resource_out)


class CountingClient:
    """The real client, counting the calls that reach MLflow."""

    def __init__(self, client: MlflowClient) -> None:
        self._client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if callable(attribute):

            def counted(*args: Any, **kwargs: Any) -> Any:
                self.calls.append(name)
                return attribute(*args, **kwargs)

            return counted
        return attribute


@pytest.fixture
def metadata(sqlite_stores: Any) -> MetadataTracker:
    return MetadataTracker(f"sqlite:///{sqlite_stores.new_path()}")


@pytest.fixture
def tracker(metadata: MetadataTracker) -> Iterator[MLFlowMetricsTracker]:
    with MLFlowMetricsTracker(components={"metadata_tracker": metadata}) as t:
        yield t


def metrics_of(t: MLFlowMetricsTracker) -> dict[str, float]:
    t.flush()
    return dict(t.client.get_run(t.run.info.run_id).data.metrics)


def tags_of(t: MLFlowMetricsTracker) -> dict[str, str]:
    t.flush()
    tags = t.client.get_run(t.run.info.run_id).data.tags
    return {k: v for k, v in tags.items() if not k.startswith(("mlflow.", "trackplug."))}


# -- lolpop's interface and layout ------------------------------------------------------------


def test_attributes_come_from_the_metadata_tracker(
    tracker: MLFlowMetricsTracker, metadata: MetadataTracker
) -> None:
    assert tracker.client is metadata.client
    assert tracker.run is metadata.run
    assert tracker.url == metadata.url  # lolpop's: the tracking URI


def test_built_as_lolpop_builds_its_class(metadata: MetadataTracker) -> None:
    """lolpop passes the metadata tracker in ``dependent_integrations`` (with ``parent``,
    ``plugin_mods``…): taken from there, no run of its own."""
    experiment = metadata.run.info.experiment_id
    runs_before = [run.info.run_id for run in metadata.client.search_runs([experiment])]
    given = {"component": {"metadata_tracker": metadata, "logger": object()}}
    with MLFlowMetricsTracker(conf={}, dependent_integrations=given, plugin_mods=[]) as t:
        assert t.run is metadata.run
        t.log_metric(("m", t.run), "loss", 0.5)
    assert [run.info.run_id for run in metadata.client.search_runs([experiment])] == runs_before
    assert metadata.client.search_runs(["0"]) == []  # nothing in the Default experiment


@pytest.mark.parametrize("uri", ["databricks", "mlruns", "databricks://profile"])
def test_any_tracking_uri_of_the_metadata_tracker_is_taken(
    metadata: MetadataTracker, uri: str
) -> None:
    """The metadata tracker's client is already built: its URI is not ours to refuse."""
    metadata.url = uri
    with MLFlowMetricsTracker(components={"metadata_tracker": metadata}) as t:
        assert t.url == uri
        t.log_metric(("m", t.run), "loss", 0.5)
        assert t.get_metric(("m", t.run), "loss") == 0.5


def test_keys_are_prefixed_with_the_resource_id(tracker: MLFlowMetricsTracker) -> None:
    model = ("model_v1", tracker.run)
    tracker.log_metric(model, "loss", 0.5)
    tracker.log_metric(model, "loss", 0.25, step=1)
    assert tracker.get_metric(model, "loss") == 0.25
    assert metrics_of(tracker) == {"model_v1.loss": 0.25}
    assert tracker.get_metric(model, "never") is None


def test_log_metric_takes_mlflow_timestamp_and_step(tracker: MLFlowMetricsTracker) -> None:
    model = ("m", tracker.run)
    tracker.log_metric(model, "acc", 0.5, 1000, 3)  # MlflowClient.log_metric's order
    tracker.log_metric(model, "acc", 0.75, timestamp=2000, step=2, synchronous=True)
    tracker.flush()
    history = tracker.client.get_metric_history(tracker.run.info.run_id, "m.acc")
    assert sorted((p.step, p.timestamp, p.value) for p in history) == [
        (2, 2000, 0.75),
        (3, 1000, 0.5),
    ]
    with pytest.raises(TypeError, match="unexpected"):
        tracker.log_metric(model, "acc", 0.5, colour="red")


def test_log_metrics_tags_the_performance_metric(tracker: MLFlowMetricsTracker) -> None:
    model = ("m", tracker.run)
    tracker.log_metrics(model, {"train": {"f1": 0.5}, "valid": {"f1": 0.75}}, "f1")
    assert metrics_of(tracker) == {"m.train_f1": 0.5, "m.valid_f1": 0.75}
    assert tags_of(tracker) == {"m.performance_metric": "f1", "m.performance_metric_value": "0.75"}


def test_path_resource_ids_use_the_file_stem(tracker: MLFlowMetricsTracker) -> None:
    tracker.log_metric(("data/train.v2.csv", tracker.run), "rows", 10)
    assert metrics_of(tracker) == {"train_v2.rows": 10.0}


def test_prediction_metrics(tracker: MLFlowMetricsTracker) -> None:
    job = ("job", tracker.run)
    summary = tracker.log_prediction_metrics(job, ["cat", "dog", "cat", "cat"])
    assert summary == {
        "num_predictions": 4.0,
        "class_distribution.cat": 0.75,
        "class_distribution.dog": 0.25,
    }
    assert metrics_of(tracker) == {f"job.{k}": v for k, v in summary.items()}
    assert tags_of(tracker) == {"job.class_distribution": '{"cat": 0.75, "dog": 0.25}'}


def test_standalone_from_a_url(sqlite_stores: Any) -> None:
    uri = f"sqlite:///{sqlite_stores.new_path()}"
    with MLFlowMetricsTracker(url=uri, experiment_name="solo") as t:
        t.log_metric(("m", t.run), "loss", 1.0)
        assert t.get_metric(("m", t.run), "loss") == 1.0
        experiment = t.client.get_experiment(t.run.info.experiment_id)
        assert experiment.name == "solo"
    config = {"config": {"mlflow_tracking_uri": uri, "mlflow_experiment_name": "solo"}}
    with MLFlowMetricsTracker(conf=config) as again:
        assert again.run.info.experiment_id == experiment.experiment_id


# -- lolpop's bugs, fixed ---------------------------------------------------------------------


def test_no_valid_split_is_no_type_error(tracker: MLFlowMetricsTracker) -> None:
    """lolpop: ``len(metrics.get("valid"))`` raised TypeError without a valid split."""
    model = ("m", tracker.run)
    tracker.log_metrics(model, {"train": {"f1": 0.5}}, "f1")
    assert tags_of(tracker)["m.performance_metric_value"] == "0.5"
    tracker.log_metrics(model, {"test": {"f1": 0.25}})  # no perf metric at all
    assert tracker.get_metric(model, "test_f1") == 0.25


def test_missing_perf_metric_writes_nothing(tracker: MLFlowMetricsTracker) -> None:
    """lolpop logged every metric, then raised KeyError on the perf metric."""
    model = ("m", tracker.run)
    with pytest.raises(ValidationError, match="auc"):
        tracker.log_metrics(model, {"train": {"f1": 0.5}, "valid": {"f1": 0.7}}, "auc")
    assert metrics_of(tracker) == {}
    assert tags_of(tracker) == {}


def test_copy_keeps_full_history_and_dotted_keys(tracker: MLFlowMetricsTracker) -> None:
    """lolpop copied latest values only, and ``k.split(".")[-1]`` cut dotted keys."""
    experiment, version = ("exp", tracker.run), ("model_v1", tracker.run)
    for step, value in enumerate([0.9, 0.5, 0.4]):
        tracker.log_metric(experiment, "val.loss", value, step=step, timestamp=100 + step)
    tracker.log_metrics(experiment, {"valid": {"f1": 0.8}}, "f1")
    tracker.copy_metrics(experiment, version)
    tracker.flush()
    history = tracker.client.get_metric_history(tracker.run.info.run_id, "model_v1.val.loss")
    assert sorted((p.step, p.timestamp, p.value) for p in history) == [
        (0, 100, 0.9),
        (1, 101, 0.5),
        (2, 102, 0.4),
    ]
    assert tags_of(tracker)["model_v1.performance_metric_value"] == "0.8"
    assert tracker.get_metric(version, "valid_f1") == 0.8


def test_copy_takes_exactly_the_source_resource(tracker: MLFlowMetricsTracker) -> None:
    """lolpop copied every metric of the run: other resources sharing it came along."""
    run = tracker.run
    tracker.log_metric(("exp", run), "loss", 0.5)
    tracker.log_metric(("exp.b", run), "loss", 9.0)  # "exp.b.loss": a neighbour, not exp's
    tracker.log_metric(("other", run), "loss", 7.0)
    tracker.copy_metrics(("exp", run), ("model", run))
    copied = {k for k in metrics_of(tracker) if k.startswith("model.")}
    assert copied == {"model.loss"}
    assert tracker.get_metric(("model", run), "loss") == 0.5


def test_copy_without_training_params(tracker: MLFlowMetricsTracker) -> None:
    """lolpop: ``json.loads(None.replace(...))`` crashed when training_params was absent."""
    tracker.log_metric(("exp", tracker.run), "loss", 0.5)
    tracker.copy_metrics(("exp", tracker.run), ("model", tracker.run))
    assert "model.training_params" not in tags_of(tracker)


def test_copy_with_training_params(sqlite_stores: Any) -> None:
    source = MetadataTracker(f"sqlite:///{sqlite_stores.new_path()}")
    client = source.client
    target_run = client.create_run(source.run.info.experiment_id)
    client.set_tag(source.run.info.run_id, "exp.training_params", "{'depth': 3}")
    with MLFlowMetricsTracker(metadata_tracker=source) as t:
        t.log_metric(("exp", source.run), "loss", 0.5)
        t.copy_metrics(("exp", source.run), ("model", target_run))
        copied = client.get_run(target_run.info.run_id).data
        assert copied.tags["model.training_params"] == "{'depth': 3}"
        assert copied.params == {"depth": "3"}
        assert copied.metrics == {"model.loss": 0.5}


def test_points_go_out_in_batches(metadata: MetadataTracker) -> None:
    """lolpop made one HTTP request per metric (``client.log_metric``)."""
    counting = CountingClient(metadata.client)
    metadata.client = counting  # type: ignore[assignment]
    with MLFlowMetricsTracker(metadata_tracker=metadata, flush_interval=3600) as t:
        for step in range(2500):
            t.log_metric(("m", t.run), "loss", 1.0 / (step + 1), step=step)
        t.flush()
    # 1,000 points per call, plus the resource's ownership tag with its first write
    assert counting.calls.count("log_batch") <= 4, counting.calls
    assert "log_metric" not in counting.calls


def test_exception_types_are_kept(metadata: MetadataTracker) -> None:
    """lolpop's error handler re-raised everything as a bare ``Exception``."""
    t = MLFlowMetricsTracker(metadata_tracker=metadata)
    model = ("m", t.run)
    with pytest.raises(InvalidTypeError) as caught:
        t.log_metric(model, "flag", True)
    assert isinstance(caught.value, TypeError)
    t.client.delete_run(t.run.info.run_id)
    t.log_metric(model, "loss", 1.0)
    with pytest.raises(BackendError, match="MLflow at sqlite:///") as failed:
        t.flush()
    assert isinstance(failed.value.__cause__, MlflowException)
    with pytest.raises(BackendError):  # the point is still waiting: close says so too
        t.close()


def test_long_keys_fail_at_once(tracker: MLFlowMetricsTracker) -> None:
    """lolpop sent ``"<resource>.<id>"`` over 250 characters and failed in MLflow, later."""
    model = ("m" * 200, tracker.run)
    with pytest.raises(ValidationError, match="250"):
        tracker.log_metric(model, "x" * 50, 1.0)  # 200 + 1 + 50 = 251 characters
    with pytest.raises(ValidationError, match="250"):
        tracker.log_metrics(model, {"train": {"y" * 45: 1.0}})  # + "train_": 252
    assert metrics_of(tracker) == {}


def test_special_values_read_back_as_mlflow_keeps_them(tracker: MLFlowMetricsTracker) -> None:
    model = ("m", tracker.run)
    tracker.log_metric(model, "inf", math.inf)
    tracker.log_metric(model, "nan", math.nan)
    assert tracker.get_metric(model, "inf") == 1.7976931348623157e308
    assert math.isnan(tracker.get_metric(model, "nan") or 0.0)


def test_a_bare_resource_is_the_tuple_of_it_and_the_run(tracker: MLFlowMetricsTracker) -> None:
    """lolpop's ``get_resource_id`` reads ``resource[0]``: a bare ``"bare"`` was ``"b"``."""
    tracker.log_metric("bare", "x", 1.0)
    tracker.log_metrics("bare", {"valid": {"f1": 0.5}}, "f1")
    assert metrics_of(tracker) == {"bare.x": 1.0, "bare.valid_f1": 0.5}
    assert tags_of(tracker)["bare.performance_metric_value"] == "0.5"
    assert tracker.get_metric("bare", "x") == tracker.get_metric(("bare", tracker.run), "x") == 1.0
    tracker.copy_metrics("bare", "copy")
    assert tracker.get_metric(("copy", tracker.run), "valid_f1") == 0.5


def test_copy_onto_newer_values_keeps_tag_and_get_metric_agreeing(
    tracker: MLFlowMetricsTracker,
) -> None:
    """The target's perf record is valued at its latest value of the perf metric, which is
    what ``get_metric`` reads (docs/semantics.md, copy_metrics)."""
    experiment, version = ("exp", tracker.run), ("model", tracker.run)
    tracker.log_metric(version, "valid_f1", 0.9, timestamp=2_000, step=1)  # newer than exp's
    tracker.log_metrics(experiment, {"valid": {"f1": 0.8}}, "f1")
    tracker.copy_metrics(experiment, version)
    assert tracker.get_metric(version, "valid_f1") == 0.9
    assert tags_of(tracker)["model.performance_metric"] == "f1"
    assert tags_of(tracker)["model.performance_metric_value"] == "0.9"
    history = tracker.client.get_metric_history(tracker.run.info.run_id, "model.valid_f1")
    assert sorted(p.value for p in history) == [0.8, 0.9]  # the copy's point is there too


def test_without_lolpop_the_drop_in_works_and_the_components_say_what_is_missing(
    sqlite_stores: Any,
) -> None:
    """A process where ``import lolpop`` fails: the drop-in needs none of it; the lolpop
    components' module names the install."""
    script = f"""
import sys
sys.modules["lolpop"] = None  # import lolpop raises ImportError
import trackplug
from trackplug_mlflow import MLFlowMetricsTracker
with MLFlowMetricsTracker(url="sqlite:///{sqlite_stores.new_path()}", experiment_name="x") as t:
    t.log_metric("m", "loss", 0.5)
    assert t.get_metric("m", "loss") == 0.5
import trackplug_lolpop  # lolpop's plugin module: loads the components when asked for one
try:
    trackplug_lolpop.TrackplugMetricsTracker
except ImportError as error:
    print(error)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "needs lolpop: pip install --no-deps lolpop==0.2.0" in done.stdout
