"""trackplug's lolpop components, built the way lolpop builds components, with real lolpop.

lolpop's loader finds them (``plugin_mods`` and ``plugin_paths``), lolpop's base classes
give them its protocol, and lolpop's own logger and notifier are their peers. The metadata
tracker is the stand-in of ``test_lolpop.py`` with lolpop's own ``get_resource_id`` (built,
lolpop's ``MLFlowMetadataTracker`` would set MLflow's process-wide tracking URI and active run
in the test process; the pipelines in ``test_lolpop_pipelines.py`` use it, each in its own
process).
"""

from __future__ import annotations

import functools
import inspect
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

import trackplug
from trackplug import InvalidTypeError, PerfRecord, ValidationError

pytest.importorskip(
    "lolpop", reason="lolpop is not installed (pip install --no-deps lolpop==0.2.0)"
)

from test_lolpop import MetadataTracker  # after the skip, though it needs no lolpop

NAMES = ("TrackplugMetricsTracker", "TrackplugMLFlowMetricsTracker")


@pytest.fixture(scope="module")
def lolpop_utils() -> Any:
    """lolpop's loader utilities (importing lolpop.component imports all its components)."""
    from lolpop.utils import common_utils

    return common_utils


@pytest.fixture
def peers(lolpop_utils: Any) -> dict[str, Any]:
    """lolpop's own StdOutLogger and StdOutNotifier, as a pipeline passes them down."""
    conf = {"config": {"log_level": "INFO"}}
    logger = lolpop_utils.load_class("StdOutLogger")(conf=conf, is_standalone=True)
    notifier = lolpop_utils.load_class("StdOutNotifier")(conf={}, is_standalone=True)
    return {"logger": logger, "notifier": notifier}


@pytest.fixture
def metadata(sqlite_stores: Any, lolpop_utils: Any) -> MetadataTracker:
    """The stand-in, naming resources with lolpop's own ``get_resource_id`` (its code, without
    the decorators that would start MLflow runs in this process)."""
    from lolpop.component import MLFlowMetadataTracker

    tracker = MetadataTracker(f"sqlite:///{sqlite_stores.new_path()}")
    lolpops_rule = inspect.unwrap(MLFlowMetadataTracker.get_resource_id)
    tracker.get_resource_id = functools.partial(lolpops_rule, tracker)  # type: ignore[method-assign]
    return tracker


def build(lolpop_utils: Any, name: str, conf: dict[str, Any], **components: Any) -> Any:
    """Load ``name`` through lolpop's plugin modules and build it as lolpop builds one."""
    cls = lolpop_utils.load_class(name, plugin_mods=["trackplug_lolpop"])
    return cls(
        conf=conf,
        is_standalone=True,
        problem_type="classification",
        dependent_integrations={"component": components},
    )


# -- loading ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_lolpop_finds_them_in_its_plugin_modules_unshadowed(lolpop_utils: Any, name: str) -> None:
    import lolpop.component
    from lolpop.component.metrics_tracker.base_metrics_tracker import BaseMetricsTracker

    assert not hasattr(lolpop.component, name)  # lolpop looks there first
    cls = lolpop_utils.load_class(name, plugin_mods=["trackplug_lolpop"])
    assert issubclass(cls, BaseMetricsTracker)
    assert cls.__module__ == "trackplug.integrations.lolpop"


def test_plugin_paths_take_the_module_file(lolpop_utils: Any) -> None:
    """What a YAML's ``plugin_paths`` does with the file ``python -m trackplug_lolpop`` names."""
    import trackplug_lolpop

    path = Path(trackplug_lolpop.__file__)
    before = list(sys.path)
    try:
        assert lolpop_utils.get_plugin_mods(None, [str(path)]) == ["trackplug_lolpop"]
    finally:
        sys.path[:] = before  # lolpop appends the file's folder


# -- TrackplugMetricsTracker -------------------------------------------------------------------


@pytest.fixture
def standalone(
    lolpop_utils: Any, peers: dict[str, Any], metadata: MetadataTracker, tmp_path: Path
) -> Iterator[Any]:
    conf = {"config": {"trackplug_url": f"sqlite:///{tmp_path / 'runs.db'}"}}
    component = build(
        lolpop_utils, "TrackplugMetricsTracker", conf, metadata_tracker=metadata, **peers
    )
    yield component
    component.stop()


def test_standalone_keeps_lolpop_resources_under_their_ids(
    standalone: Any, metadata: MetadataTracker, tmp_path: Path
) -> None:
    run = metadata.run
    model, experiment = ("iris", run), (f"{run.info.run_id}.iris", run)
    standalone.log_metrics(experiment, {"train": {"f1": 0.9}, "valid": {"f1": 0.8}}, "f1")
    standalone.copy_metrics(experiment, model)
    standalone.log_metric(("data/train.v2.csv", run), "rows", 150, 1000, 2)  # timestamp, step
    summary = standalone.log_prediction_metrics(("iris_predictions", run), ["a", "b", "a", "a"])
    assert summary["class_distribution.a"] == 0.75
    assert standalone.get_metric(model, "valid_f1") == 0.8
    assert standalone.get_metric("iris", "train_f1") == 0.9  # a bare resource: its own id
    standalone.stop()
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    assert standalone.url == url
    with trackplug.connect(url) as stored:
        assert stored.resources() == sorted(
            [f"{run.info.run_id}.iris", "iris", "iris_predictions", "train_v2"]
        )
        assert stored.perf("iris") == PerfRecord("f1", 0.8)
        [point] = stored.history("train_v2", "rows")
        assert (point.step, point.timestamp, point.value) == (2, 1000, 150.0)


def test_standalone_settings_come_from_lolpop_configuration(
    lolpop_utils: Any, peers: dict[str, Any], tmp_path: Path
) -> None:
    """``trackplug_url`` may list several URLs (a fan-out; the first answers reads)."""
    urls = [f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"]
    conf = {"config": {"trackplug_url": urls}}
    component = build(lolpop_utils, "TrackplugMetricsTracker", conf, metadata_tracker=None, **peers)
    component.log_metric("m", "loss", 0.5)
    component.stop()
    for url in urls:
        with trackplug.connect(url) as stored:
            assert stored.get_metric("m", "loss") == 0.5


def test_failures_keep_their_type_and_reach_lolpop_notifier(
    standalone: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """lolpop's components re-raise everything as a bare Exception; these keep the type,
    and tell the pipeline's notifier first."""
    with pytest.raises(InvalidTypeError):
        standalone.log_metric("m", "flag", True)
    with pytest.raises(ValidationError, match="auc"):
        standalone.log_metrics("m", {"valid": {"f1": 0.5}}, "auc")
    printed = capsys.readouterr().out
    assert "TrackplugMetricsTracker.log_metric failed" in printed
    assert "TrackplugMetricsTracker.log_metrics failed" in printed
    assert standalone.get_metric("m", "valid_f1") is None  # all or nothing


def test_peers_arrive_through_update_integrations(standalone: Any) -> None:
    """lolpop hands a component its peers after building it (leaf components)."""
    marker = object()
    standalone._update_integrations(integrations={"resource_version_control": marker})
    assert standalone.resource_version_control is marker


# -- TrackplugMLFlowMetricsTracker -------------------------------------------------------------


def runs_in(client: Any) -> list[str]:
    experiments = [e.experiment_id for e in client.search_experiments()]
    return sorted(run.info.run_id for run in client.search_runs(experiments))


def test_mlflow_component_shares_the_metadata_tracker_run(
    lolpop_utils: Any, peers: dict[str, Any], metadata: MetadataTracker
) -> None:
    before = runs_in(metadata.client)
    component = build(
        lolpop_utils, "TrackplugMLFlowMetricsTracker", {}, metadata_tracker=metadata, **peers
    )
    assert (component.client, component.run, component.url) == (
        metadata.client,
        metadata.run,
        metadata.url,
    )
    component.log_metrics(("iris", metadata.run), {"valid": {"f1": 0.75}}, "f1")
    component.log_metric("bare", "x", math.pi)  # the run's resource "bare", not "b"
    component.flush()
    assert runs_in(metadata.client) == before  # no stray run
    data = metadata.client.get_run(metadata.run.info.run_id).data
    assert data.metrics == {"iris.valid_f1": 0.75, "bare.x": math.pi}
    assert data.tags["iris.performance_metric_value"] == "0.75"


def test_mlflow_component_without_an_mlflow_metadata_tracker(
    lolpop_utils: Any, peers: dict[str, Any], sqlite_stores: Any
) -> None:
    """As lolpop's class: a run of its own, from ``mlflow_tracking_uri`` and
    ``mlflow_experiment_name``."""
    uri = f"sqlite:///{sqlite_stores.new_path()}"
    conf = {"config": {"mlflow_tracking_uri": uri, "mlflow_experiment_name": "solo"}}
    component = build(
        lolpop_utils, "TrackplugMLFlowMetricsTracker", conf, metadata_tracker=None, **peers
    )
    component.log_metric(("m", component.run), "loss", 0.5)
    component.stop()
    client = MlflowClient(uri)
    assert runs_in(client) == [component.run.info.run_id]
    assert client.get_experiment(component.run.info.experiment_id).name == "solo"
    assert client.get_run(component.run.info.run_id).data.metrics == {"m.loss": 0.5}
