"""lolpop's own pipelines, end to end, with lolpop's metrics tracker and with trackplug's.

One lolpop YAML (``lolpop_pipeline/lolpop.yaml``: a ``ClassificationRunner`` on iris) runs
three times, each in its own process and directory (lolpop sets MLflow's global tracking URI
and active run): as it is, with lolpop's ``MLFlowMetricsTracker``; with docs/lolpop.md's
"mlflow" diff applied (``TrackplugMLFlowMetricsTracker``); with its "standalone" diff
(``TrackplugMetricsTracker`` into a trackplug SQLite file). Each run: ``OfflineTrain.split_data``,
``train_model`` (lolpop's ``LocalHyperparameterTuner`` over a scikit-learn trainer that is a
lolpop extension), ``OfflinePredict.get_predictions``. What cannot run here is lolpop's no-op
base class of that component: DVC (``BaseResourceVersionControl``), deepchecks / evidently /
alibi / yellowbrick / aif360 (``BaseModelChecker``, ``BaseDataChecker``, ``BaseDataProfiler``,
``BaseModelExplainer``, ``BaseModelVisualizer``, ``BaseModelBiasChecker``), the deploy target
(``BaseDeploy``), the data connector (``BaseDataConnector``), data processing (``BaseProcess``).
"""

from __future__ import annotations

import ast
import functools
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import pytest

pytest.importorskip(
    "lolpop", reason="lolpop is not installed (pip install --no-deps lolpop==0.2.0)"
)

PIPELINE = Path(__file__).parent / "lolpop_pipeline"
DOC = Path(__file__).parents[3] / "docs" / "lolpop.md"
PLUGIN_PLACEHOLDER = "/path/to/trackplug_lolpop.py"
RUN_TIMEOUT = 300  # seconds for one pipeline process, on a loaded machine
RUN_ID = re.compile(r"\b[0-9a-f]{32}\b")
SPECIES = ("setosa", "versicolor", "virginica")


# -- the configurations: lolpop's, and docs/lolpop.md's diffs applied to it ----------------------


def doc_diff(name: str) -> str:
    """The ```diff block that follows ``<!-- lolpop-migration: name -->`` in docs/lolpop.md."""
    text = DOC.read_text()
    found = re.search(rf"<!-- lolpop-migration: {name} -->\n```diff\n(.*?)```", text, re.DOTALL)
    assert found, f"docs/lolpop.md has no diff block {name!r}"
    return found.group(1)


def apply_diff(text: str, diff: str) -> str:
    """Apply each ``@@`` hunk of ``diff``: its old lines (context and ``-``) must occur exactly
    once, contiguously, in ``text``; they become its new lines (context and ``+``)."""
    lines = text.splitlines()
    for hunk in re.split(r"^@@.*\n", diff, flags=re.MULTILINE):
        body = hunk.splitlines()
        if not body:
            continue
        old = [line[1:] for line in body if line[:1] in (" ", "-")]
        new = [line[1:] for line in body if line[:1] in (" ", "+")]
        starts = [i for i in range(len(lines)) if lines[i : i + len(old)] == old]
        assert len(starts) == 1, f"hunk {old} matches {len(starts)} places in the config"
        lines[starts[0] : starts[0] + len(old)] = new
    return "\n".join(lines) + "\n"


@functools.cache
def plugin_path() -> str:
    """What ``python -m trackplug_lolpop`` prints, as docs/lolpop.md tells users to run."""
    printed = subprocess.run(
        [sys.executable, "-m", "trackplug_lolpop"], capture_output=True, text=True, check=True
    )
    return printed.stdout.strip()


def migrated(name: str) -> str:
    config = apply_diff((PIPELINE / "lolpop.yaml").read_text(), doc_diff(name))
    return config.replace(PLUGIN_PLACEHOLDER, plugin_path())


def test_the_diffs_change_only_what_they_say() -> None:
    original = (PIPELINE / "lolpop.yaml").read_text()
    config = migrated("mlflow")
    assert "metrics_tracker: TrackplugMLFlowMetricsTracker" in config
    assert "MLFlowMetricsTracker\n" not in config.replace("TrackplugMLFlowMetricsTracker", "")
    assert Path(plugin_path()).name == "trackplug_lolpop.py"
    added = set(config.splitlines()) - set(original.splitlines())
    assert len(added) == 2  # the plugin path and the class name


# -- running the pipelines ---------------------------------------------------------------------


class Run(NamedTuple):
    directory: Path
    output: str

    @property
    def mlflow_uri(self) -> str:
        return f"sqlite:///{self.directory / 'mlflow.db'}"


def run_pipeline(directory: Path, config: str, template: Path) -> Run:
    directory.mkdir()
    shutil.copyfile(template, directory / "mlflow.db")  # migrated: no minutes of migrations
    (directory / "lolpop.yaml").write_text(config)
    done = subprocess.run(
        [sys.executable, "-W", "ignore", str(PIPELINE / "run_pipeline.py"), "lolpop.yaml"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    output = done.stdout + done.stderr
    if done.returncode != 0:
        pytest.fail(f"the lolpop pipeline in {directory} failed:\n{output[-6000:]}")
    return Run(directory, output)


@pytest.fixture(scope="module")
def runs(template_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    """The three runs, side by side (each is mostly waiting on its own imports)."""
    root = tmp_path_factory.mktemp("lolpop")
    configs = {
        "lolpop": (PIPELINE / "lolpop.yaml").read_text(),
        "mlflow": migrated("mlflow"),
        "standalone": migrated("standalone"),
    }
    with ThreadPoolExecutor(len(configs)) as pool:
        futures = {
            name: pool.submit(run_pipeline, root / name, config, template_db)
            for name, config in configs.items()
        }
        yield {name: future.result() for name, future in futures.items()}


# -- reading an MLflow store, with run ids made comparable -------------------------------------


class Snapshot(NamedTuple):
    metrics: set[tuple[str, str, int, float]]  # (run, key, step, value)
    tags: dict[tuple[str, str], str]  # (run, key) -> value
    run_ids: dict[str, str]  # "<run N>" -> real id


def snapshot(uri: str) -> Snapshot:
    """Every metric point and tag of every run, run ids replaced by ``<run N>`` (runs in
    start order). MLflow's random ``mlflow.runName`` is left out."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    found = client.search_runs(experiments, order_by=["attributes.start_time ASC"])
    names = {run.info.run_id: f"<run {i}>" for i, run in enumerate(found)}

    def norm(text: str) -> str:
        return RUN_ID.sub(lambda m: names.get(m.group(), m.group()), text)

    metrics, tags = set(), {}
    for run in found:
        name = names[run.info.run_id]
        for key in run.data.metrics:
            for point in client.get_metric_history(run.info.run_id, key):
                metrics.add((name, norm(key), point.step, point.value))
        for key, value in run.data.tags.items():
            if key != "mlflow.runName":
                tags[(name, norm(key))] = norm(value)
    return Snapshot(metrics, tags, {v: k for k, v in names.items()})


# -- (a) lolpop's MLFlowMetricsTracker against TrackplugMLFlowMetricsTracker --------------------


def test_lolpop_loads_the_components_through_its_plugin_modules(runs: dict[str, Run]) -> None:
    for name, cls in (
        ("mlflow", "TrackplugMLFlowMetricsTracker"),
        ("standalone", "TrackplugMetricsTracker"),
    ):
        assert f"Found class {cls} in plugins!" in runs[name].output
        assert f"Loaded class {cls} into component metrics_tracker" in runs[name].output


def test_same_metrics_and_tags_as_lolpop_except_the_documented_fixes(runs: dict[str, Run]) -> None:
    theirs, ours = snapshot(runs["lolpop"].mlflow_uri), snapshot(runs["mlflow"].mlflow_uri)
    assert len(theirs.run_ids) == len(ours.run_ids) == 2  # the pipeline's run, one experiment
    assert len(theirs.metrics) == 25  # 12 of the experiment, copied to the version, + 1 count

    # Fix: the class distribution is also a metric per label.
    shares = {m for m in ours.metrics - theirs.metrics}
    assert {key for _, key, _, _ in shares} == {
        f"iris_predictions.class_distribution.{label}" for label in SPECIES
    }
    assert theirs.metrics == ours.metrics - shares

    # Fix: each resource's first write into a run records it (which keys are whose).
    owners = {k: v for k, v in ours.tags.items() if k[1].startswith("trackplug.resource.")}
    assert sorted(owners.values()) == ["<run 1>.iris", "iris", "iris_predictions"]

    # Fix: the class distribution tag is JSON, the same shares lolpop wrote as str(dict).
    tag = ("<run 0>", "iris_predictions.class_distribution")
    lolpop_shares, our_shares = ast.literal_eval(theirs.tags[tag]), json.loads(ours.tags[tag])
    assert our_shares == lolpop_shares
    assert list(our_shares) == sorted(our_shares)
    assert {key: value for _, key, _, value in shares} == {
        f"iris_predictions.class_distribution.{label}": share for label, share in our_shares.items()
    }

    # Everything else, every tag included (performance records, training params, lineage):
    # the same.
    rest = {k: v for k, v in ours.tags.items() if k not in owners and k != tag}
    assert rest == {k: v for k, v in theirs.tags.items() if k != tag}


def test_no_stray_run(runs: dict[str, Run]) -> None:
    """Built by lolpop, the component takes the metadata tracker's client and run: no run in
    MLflow's Default experiment, no run of its own."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(runs["mlflow"].mlflow_uri)
    assert client.search_runs(["0"]) == []
    assert (
        "Tracking metrics in MLflow run " + snapshot(runs["mlflow"].mlflow_uri).run_ids["<run 0>"]
        in runs["mlflow"].output
    )


# -- (b) TrackplugMetricsTracker on SQLite --------------------------------------------------------


def test_standalone_component_keeps_the_same_values(runs: dict[str, Run]) -> None:
    import trackplug

    lolpop = snapshot(runs["lolpop"].mlflow_uri)
    ids = snapshot(runs["standalone"].mlflow_uri).run_ids  # its metadata tracker's runs
    expected: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for _, key, step, value in lolpop.metrics:
        rid, _, metric = key.rpartition(".")
        rid = rid.replace("<run 1>", ids["<run 1>"])  # an experiment: "<its run id>.iris"
        expected.setdefault((rid, metric), []).append((step, value))
    url = f"sqlite:///{runs['standalone'].directory / 'trackplug.db'}"
    with trackplug.connect(url) as stored:
        assert stored.resources() == sorted({rid for rid, _ in expected})
        for (rid, metric), points in expected.items():
            history = [(p.step, p.value) for p in stored.history(rid, metric)]
            assert history == sorted(points), (rid, metric)
        assert stored.perf("iris") == stored.perf(f"{ids['<run 1>']}.iris")
        valid_f1 = stored.get_metric("iris", "valid_f1")
        assert valid_f1 is not None
        assert stored.perf("iris") == trackplug.PerfRecord("f1", valid_f1)
        shares = {k: v for k, v in stored.latest("iris_predictions").items() if "class" in k}
        assert sorted(shares) == [f"class_distribution.{label}" for label in SPECIES]


def test_trackplug_ls_shows_the_resources(runs: dict[str, Run]) -> None:
    url = f"sqlite:///{runs['standalone'].directory / 'trackplug.db'}"
    ids = snapshot(runs["standalone"].mlflow_uri).run_ids
    listed = subprocess.run(
        [sys.executable, "-m", "trackplug.cli", "ls", url, "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    resources = {r["id"]: r for r in json.loads(listed.stdout)["resources"]}
    assert sorted(resources) == sorted([f"{ids['<run 1>']}.iris", "iris", "iris_predictions"])
    table = subprocess.run(
        [sys.executable, "-m", "trackplug.cli", "ls", url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "3 resources" in table.stdout
    assert "iris_predictions" in table.stdout
