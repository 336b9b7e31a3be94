"""The MLflow drop-in under trackplug's ``trackplug_capture`` fixture: lolpop-style code
logs through ``MLFlowMetricsTracker`` and the test reads every metric by lolpop's resource
ids, with no MLflow server, client call or run."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from trackplug_mlflow import MLFlowMetricsTracker

from trackplug.testing import Capture, capture


class UntouchableClient:
    """A metadata tracker's client that the drop-in must not use while captured."""

    tracking_uri = "http://127.0.0.1:1"

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the captured drop-in called client.{name}")


class MetadataTracker:
    """What lolpop's metadata tracker gives the metrics tracker: a client, a run, a url."""

    def __init__(self) -> None:
        self.client = UntouchableClient()
        self.run = type("Run", (), {"info": type("Info", (), {"run_id": "run-7"})()})()
        self.url = self.client.tracking_uri


@pytest.fixture
def silent_port() -> Iterator[socket.socket]:
    """Listens, never answers: a connection attempt would stay queued, for the test to see."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.setblocking(False)
        yield server


def pipeline(tracker: MLFlowMetricsTracker) -> None:
    """What a lolpop pipeline does with its metrics tracker."""
    model = ("sgd-1", tracker.run)
    for step in range(3):
        tracker.log_metric(model, "loss", 1 / (step + 1), step=step)
    tracker.log_metrics(
        model, {"train": {"f1": 0.91}, "valid": {"f1": 0.87}}, perf_metric="f1", step=2
    )
    tracker.copy_metrics(model, ("champion", tracker.run))
    tracker.log_prediction_metrics(("job-1", tracker.run), ["cat", "dog", "cat", "cat"])
    assert tracker.get_metric(model, "valid_f1") == 0.87  # the code reads its own writes


def test_a_standalone_drop_in_opens_nothing(
    trackplug_capture: Capture, silent_port: socket.socket
) -> None:
    port = silent_port.getsockname()[1]
    with MLFlowMetricsTracker(url=f"http://127.0.0.1:{port}", experiment_name="churn") as t:
        assert t.client is None
        assert t.run.info.run_id.startswith("captured-")
        pipeline(t)

    assert trackplug_capture.resources() == ["champion", "job-1", "sgd-1"]
    trackplug_capture.assert_logged("sgd-1", "loss", steps=range(3))
    trackplug_capture.assert_latest("champion", "valid_f1", 0.87)
    assert trackplug_capture.perf("champion") == trackplug_capture.perf("sgd-1")
    assert trackplug_capture.latest("job-1")["class_distribution.cat"] == 0.75
    assert trackplug_capture.connections == [[f"mlflow+http://127.0.0.1:{port}"]]
    with pytest.raises(BlockingIOError):
        silent_port.accept()  # nobody tried to connect


def test_a_drop_in_from_lolpop_conf_is_captured(trackplug_capture: Capture) -> None:
    conf = {"config": {"mlflow_tracking_uri": "http://127.0.0.1:1", "problem_type": "regression"}}
    with MLFlowMetricsTracker(conf=conf) as t:
        t.log_prediction_metrics("job-2", [1.0, 2.0, 3.0])
    trackplug_capture.assert_latest("job-2", "prediction_mean", 2.0)


def test_a_drop_in_on_a_metadata_tracker_keeps_its_client_and_run_untouched(
    trackplug_capture: Capture,
) -> None:
    metadata = MetadataTracker()
    with MLFlowMetricsTracker(components={"metadata_tracker": metadata}) as t:
        assert t.client is metadata.client
        assert t.run is metadata.run
        pipeline(t)
    trackplug_capture.assert_best("valid_f1", "champion")  # a tie with sgd-1: by id
    assert trackplug_capture.connections == [["mlflow+http://127.0.0.1:1"]]


def test_passthrough_writes_lolpop_layout_in_mlflow_and_the_capture(sqlite_stores: Any) -> None:
    uri = f"sqlite:///{sqlite_stores.new_path()}"
    with capture(passthrough=True) as captured:
        with MLFlowMetricsTracker(url=uri, experiment_name="churn") as t:
            pipeline(t)
            run_id = t.run.info.run_id
            t.flush()
            metrics = t.client.get_run(run_id).data.metrics
        assert metrics["sgd-1.valid_f1"] == 0.87
        # With passthrough, resources are named as the drop-in's MLflow layout has them.
        captured.assert_latest(f"{run_id}/sgd-1", "valid_f1", 0.87)
        assert captured.resources() == [f"{run_id}/{rid}" for rid in ("champion", "job-1", "sgd-1")]


# -- trackplug's lolpop components (issue 16), built by lolpop's own loader --------------------


def lolpop_component(name: str, config: dict[str, Any]) -> Any:
    """One of trackplug's lolpop components, loaded and built the way lolpop does, with
    lolpop's own logger and notifier as peers and no metadata tracker."""
    pytest.importorskip("lolpop", reason="lolpop is not installed (docs/lolpop.md)")
    pytest.importorskip(
        "trackplug_lolpop", reason="trackplug's lolpop components (issue 16) are not in this tree"
    )
    from lolpop.utils import common_utils

    peers = {
        "logger": common_utils.load_class("StdOutLogger")(
            conf={"config": {"log_level": "ERROR"}}, is_standalone=True
        ),
        "notifier": common_utils.load_class("StdOutNotifier")(conf={}, is_standalone=True),
    }
    cls = common_utils.load_class(name, plugin_mods=["trackplug_lolpop"])
    return cls(
        conf={"config": config},
        is_standalone=True,
        problem_type="classification",
        dependent_integrations={"component": {"metadata_tracker": None, **peers}},
    )


def test_lolpop_components_are_captured(
    trackplug_capture: Capture, silent_port: socket.socket
) -> None:
    port = silent_port.getsockname()[1]
    standalone = lolpop_component(
        "TrackplugMetricsTracker", {"trackplug_url": f"mlflow+http://127.0.0.1:{port}"}
    )
    standalone.log_metrics("iris", {"train": {"f1": 0.9}, "valid": {"f1": 0.8}}, "f1")
    standalone.stop()
    on_mlflow = lolpop_component(
        "TrackplugMLFlowMetricsTracker", {"mlflow_tracking_uri": f"http://127.0.0.1:{port}"}
    )
    on_mlflow.log_prediction_metrics("iris_predictions", ["a", "b", "a", "a"])
    on_mlflow.stop()

    trackplug_capture.assert_latest("iris", "valid_f1", 0.8)
    trackplug_capture.assert_latest("iris_predictions", "class_distribution.a", 0.75)
    assert len(trackplug_capture.connections) == 2
    with pytest.raises(BlockingIOError):
        silent_port.accept()  # nobody tried to connect
