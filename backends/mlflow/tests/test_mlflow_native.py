"""``?runs=all``: the runs MLflow itself logged (fluent API, ``log_batch``, nested runs,
``mlflow.sklearn.autolog()``) read as resources and copied off MLflow and back onto it."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from trackplug_mlflow.backend import MLflowBackend
from trackplug_mlflow.urls import parse_url

import trackplug
from trackplug import MetricPoint, ValidationError
from trackplug.plugin import Resource, point_order

mlflow = pytest.importorskip("mlflow")
from mlflow.entities import Metric, Param, RunTag  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

FLOAT_MAX = sys.float_info.max
#: The history logged with ``log_batch``: steps, one repeated timestamp, odd values.
BATCH_VALUES = [0.5, math.nan, math.inf, -math.inf, -0.0, 1e-300, 2.5, 3.5]


def _stored(value: float) -> float:
    """What MLflow keeps of a value: ±inf as ±1.797e308 (its deviation), -0.0 as 0.0."""
    if math.isinf(value):
        return math.copysign(FLOAT_MAX, value)
    return 0.0 if value == 0.0 else value


#: What MLflow's fluent API exports for subprocesses (set_tracking_uri, set_experiment).
_FLUENT_ENVIRONMENT = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID")


def fill_native_store(tracking_uri: str, suffix: str = "") -> dict[str, str]:
    """What a user of MLflow alone leaves behind: two experiments, nested runs, two runs
    of one name, metrics with steps and without, NaN and ±inf, ``log_batch``, a run of
    ``mlflow.sklearn.autolog()`` and a deleted run, in the experiments ``alpha`` and
    ``beta`` (+ ``suffix``). Returns {role: run id}. MLflow's fluent state and the
    environment variables it exports are restored afterwards."""
    from mlflow.tracking import _tracking_service, fluent
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    previous = _tracking_service.utils._tracking_uri  # None: MLflow's own choice
    environment = {name: os.environ.get(name) for name in _FLUENT_ENVIRONMENT}
    mlflow.set_tracking_uri(tracking_uri)
    runs: dict[str, str] = {}
    try:
        mlflow.set_experiment(f"alpha{suffix}")
        with mlflow.start_run(run_name="train") as parent:
            runs["train"] = parent.info.run_id
            mlflow.log_param("lr", 0.1)
            mlflow.set_tag("team", "vision")
            for step in range(5):
                mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
            mlflow.log_metric("no_step", 7.0)  # no step: MLflow's step 0
            for fold in (1, 2):
                with mlflow.start_run(run_name=f"fold-{fold}", nested=True) as child:
                    runs[f"fold-{fold}"] = child.info.run_id
                    mlflow.log_metric("acc", 0.5 + fold / 10, step=fold)
        for copy in (1, 2):  # one name twice: both are known by their run ids
            with mlflow.start_run(run_name="dup") as dup:
                runs[f"dup-{copy}"] = dup.info.run_id
                mlflow.log_metric("x", float(copy))
        with mlflow.start_run(run_name="gone") as gone:
            runs["gone"] = gone.info.run_id
            mlflow.log_metric("x", 1.0)
        MlflowClient().delete_run(runs["gone"])
        mlflow.set_experiment(f"beta{suffix}")
        with mlflow.start_run(run_name="batch") as batch:
            runs["batch"] = batch.info.run_id
            metrics = [Metric("odd", v, 1_700_000_000_000, i) for i, v in enumerate(BATCH_VALUES)]
            metrics += [Metric("long", i * 0.25, 1_700_000_000_000 + i, i) for i in range(2500)]
            MlflowClient().log_batch(
                batch.info.run_id,
                metrics=metrics,
                params=[Param("optimizer", "adam"), Param("layers", "3")],
                tags=[RunTag("stage", "dev")],
            )
        mlflow.sklearn.autolog(log_models=False, log_datasets=False, silent=True)
        try:
            with mlflow.start_run(run_name="sklearn") as fitted:
                runs["sklearn"] = fitted.info.run_id
                features, labels = load_iris(return_X_y=True)
                LogisticRegression(max_iter=200).fit(features, labels)
        finally:
            mlflow.sklearn.autolog(disable=True)
    finally:
        _tracking_service.utils.set_tracking_uri(previous)
        fluent._active_experiment_id = None
        for name, value in environment.items():  # MLflow exports what it was set to
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return runs


@pytest.fixture
def native_db(tmp_path: Path, template_db: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """An MLflow SQLite store MLflow filled: (its tracking URI, {role: run id})."""
    path = tmp_path / "native.db"
    path.write_bytes(template_db.read_bytes())
    uri = f"sqlite:///{path}"
    return uri, fill_native_store(uri)


def expected_ids(runs: dict[str, str]) -> dict[str, str]:
    """The resource ids of the module's rule, reading every experiment: {role: id}."""
    return {
        "train": "alpha/train",
        "fold-1": "alpha/fold-1",
        "fold-2": "alpha/fold-2",
        "dup-1": f"alpha/{runs['dup-1']}",
        "dup-2": f"alpha/{runs['dup-2']}",
        "batch": "beta/batch",
        "sklearn": "beta/sklearn",
    }


def mlflow_points(client: Any, run_id: str) -> dict[str, list[MetricPoint]]:
    """Every point of a run as MLflow's own client reads it, in the contract's order."""
    keys = client.get_run(run_id).data.metrics
    return {
        key: sorted(
            (
                MetricPoint(key, m.value, m.step, m.timestamp)
                for m in client.get_metric_history(run_id, key)
            ),
            key=point_order,
        )
        for key in keys
    }


def same(a: list[MetricPoint], b: list[MetricPoint]) -> bool:
    """Equal point for point, NaN equal to NaN."""
    return len(a) == len(b) and all(
        (p.key, p.step, p.timestamp) == (q.key, q.step, q.timestamp)
        and (p.value == q.value or (math.isnan(p.value) and math.isnan(q.value)))
        for p, q in zip(a, b, strict=True)
    )


# -- the URL ----------------------------------------------------------------------------------


def test_runs_option_is_parsed_and_checked() -> None:
    assert parse_url("mlflow+sqlite:///a.db").runs == "trackplug"
    every = parse_url("mlflow+sqlite:///a.db?runs=all")
    assert every.runs == "all"
    assert every.every_experiment
    assert not every.deleted
    one = parse_url("mlflow+sqlite:///a.db?runs=all&experiment=x&deleted=true")
    assert not one.every_experiment
    assert one.deleted
    assert "runs" not in str(one.tracking_uri)
    assert "deleted" not in str(one.tracking_uri)
    with pytest.raises(ValidationError, match="is not one of"):
        parse_url("mlflow+sqlite:///a.db?runs=some")
    with pytest.raises(ValidationError, match=r"needs\s+.*runs=all"):
        parse_url("mlflow+sqlite:///a.db?deleted=true")


# -- reading what MLflow logged ---------------------------------------------------------------


def test_every_run_of_every_experiment_is_a_resource(
    native_db: tuple[str, dict[str, str]],
) -> None:
    uri, runs = native_db
    ids = expected_ids(runs)
    with trackplug.connect(f"mlflow+{uri}?runs=all") as t:
        assert t.resources() == sorted(ids.values())
        client = MlflowClient(uri)
        for role, rid in ids.items():
            wanted = mlflow_points(client, runs[role])
            assert t.latest(rid).keys() == wanted.keys()
            for key, points in wanted.items():
                assert same(t.history(rid, key), points), (rid, key)
                assert same(list(t.iter_history(rid, key, page_size=7)), points)
        assert t.params("alpha/train") == {"lr": "0.1"}
        assert t.params("beta/batch") == {"layers": "3", "optimizer": "adam"}
        assert "mlflow.parentRunId" not in t.tags("alpha/fold-1")  # MLflow's, not the user's
        backend = MLflowBackend(f"mlflow+{uri}?runs=all")  # what a copy reads
        tags = backend.get_tags(Resource("alpha/fold-1"))
        assert tags["mlflow.parentRunId"] == runs["train"]  # nesting comes across
        assert tags["trackplug.parent"] == "alpha/train"  # ... and names the parent
        assert "mlflow.runName" not in tags  # the resource id is the name
        assert t.tags("alpha/train")["team"] == "vision"
        assert backend.tagged("team", "vision") == ["alpha/train"]
        assert t.best("x", "max", 5) == [(ids["dup-2"], 2.0), (ids["dup-1"], 1.0)]
        odd = [_stored(v) for v in BATCH_VALUES]
        got = [p.value for p in t.history("beta/batch", "odd")]
        assert [v for v in got if not math.isnan(v)] == [v for v in odd if not math.isnan(v)]
        assert sum(map(math.isnan, got)) == 1
        assert len(t.history("beta/batch", "long")) == 2500
        assert t.params("beta/sklearn")["max_iter"] == "200"  # autolog's params


def test_one_experiment_and_deleted_runs(native_db: tuple[str, dict[str, str]]) -> None:
    uri, runs = native_db
    with trackplug.connect(f"mlflow+{uri}?runs=all&experiment=alpha") as t:
        assert t.resources() == sorted(["train", "fold-1", "fold-2", runs["dup-1"], runs["dup-2"]])
    with trackplug.connect(f"mlflow+{uri}?runs=all&experiment=alpha&deleted=true") as t:
        assert "gone" in t.resources()
    with trackplug.connect(f"mlflow+{uri}") as t:  # trackplug's own runs only, as before
        assert t.resources() == []


def test_trackplug_runs_and_mlflow_runs_coexist(native_db: tuple[str, dict[str, str]]) -> None:
    """A resource trackplug writes keeps its id however MLflow's runs are named; a run
    named like it is then known by its run id."""
    uri, runs = native_db
    with trackplug.connect(f"mlflow+{uri}?experiment=alpha") as t:
        t.log_metric("train", "loss", 9.0, step=1)  # trackplug's own "train"
    with trackplug.connect(f"mlflow+{uri}?runs=all&experiment=alpha") as t:
        assert "train" in t.resources()
        assert runs["train"] in t.resources()
        assert [p.value for p in t.history("train", "loss")] == [9.0]
        assert len(t.history(runs["train"], "loss")) == 5


def test_a_new_resource_reading_every_experiment_needs_one(
    native_db: tuple[str, dict[str, str]],
) -> None:
    uri, _ = native_db
    with trackplug.connect(f"mlflow+{uri}?runs=all") as t:
        t.log_metric("gamma/new", "m", 1.0, step=0)
        assert t.history("gamma/new", "m")[0].value == 1.0
    backend = MLflowBackend(f"mlflow+{uri}?runs=all")
    with pytest.raises(ValidationError, match="names no experiment"):
        backend.log_metrics(Resource("plain"), [MetricPoint("m", 1.0, 0, 1)], None)
    assert MlflowClient(uri).get_experiment_by_name("gamma") is not None


# -- moving off MLflow and back onto it -------------------------------------------------------


@pytest.fixture
def fresh_postgresql() -> Iterator[str]:
    """A trackplug store in a new schema of the test database, dropped afterwards (the
    database outlives the test run: a schema of our own keeps earlier runs' points out)."""
    base = os.environ.get("TRACKPLUG_TEST_POSTGRESQL_URL")
    if not base:
        pytest.skip("TRACKPLUG_TEST_POSTGRESQL_URL is not set")
    psycopg = pytest.importorskip("psycopg", reason="the PostgreSQL driver: pip install psycopg")
    schema = f"native_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            separator = "&" if "?" in base else "?"
            yield f"{base}{separator}options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.mark.parametrize("target", ["sqlite", "memory", "postgresql"])
def test_copy_off_mlflow_keeps_every_point_and_param(
    native_db: tuple[str, dict[str, str]],
    tmp_path: Path,
    target: str,
    request: pytest.FixtureRequest,
) -> None:
    uri, runs = native_db
    if target == "postgresql":
        url = request.getfixturevalue("fresh_postgresql")
    else:
        url = {"sqlite": f"sqlite:///{tmp_path / 'out.db'}", "memory": "memory://"}[target]
    ids = expected_ids(runs)
    client = MlflowClient(uri)
    with trackplug.connect(f"mlflow+{uri}?runs=all") as src, trackplug.connect(url) as dst:
        summary = trackplug.copy(src, dst)
        assert summary.resources == len(ids)
        for role, rid in ids.items():
            wanted = mlflow_points(client, runs[role])
            for key, points in wanted.items():
                assert same(dst.history(rid, key), points), (rid, key)
            params = client.get_run(runs[role]).data.params
            assert dst.params(rid) == {k: v for k, v in sorted(params.items())}
        assert summary.points == sum(
            len(p) for role in ids for p in mlflow_points(client, runs[role]).values()
        )


def test_copy_back_onto_a_fresh_mlflow_store(
    native_db: tuple[str, dict[str, str]], tmp_path: Path, template_db: Path
) -> None:
    """Off MLflow into SQLite, back onto a fresh MLflow store: search_runs finds the same
    experiments, run names, metrics and params."""
    uri, runs = native_db
    fresh = tmp_path / "fresh.db"
    fresh.write_bytes(template_db.read_bytes())
    between = f"sqlite:///{tmp_path / 'between.db'}"
    trackplug.copy(f"mlflow+{uri}?runs=all", between)
    trackplug.copy(between, f"mlflow+sqlite:///{fresh}?runs=all")
    assert _runs_of(uri) == _runs_of(f"sqlite:///{fresh}", renamed=runs)


@pytest.mark.parametrize("route", ["directly", "through SQLite"])
def test_nested_runs_stay_nested_under_the_copies_of_their_parents(
    native_db: tuple[str, dict[str, str]], tmp_path: Path, template_db: Path, route: str
) -> None:
    """``mlflow.parentRunId`` of a copied nested run names its parent's copy (MLflow's UI
    nests it there), whether the runs go MLflow to MLflow or through another store; copied
    again, nothing changes."""
    uri, runs = native_db
    fresh = tmp_path / "fresh.db"
    fresh.write_bytes(template_db.read_bytes())
    target = f"mlflow+sqlite:///{fresh}?runs=all"
    source = f"mlflow+{uri}?runs=all"
    if route == "through SQLite":
        between = f"sqlite:///{tmp_path / 'between.db'}"
        trackplug.copy(source, between)
        source = between
    for _ in range(2):
        trackplug.copy(source, target)
        client = MlflowClient(f"sqlite:///{fresh}")
        (alpha,) = [e.experiment_id for e in client.search_experiments() if e.name == "alpha"]
        by_name = {run.info.run_name: run for run in client.search_runs([alpha])}
        parent = by_name["train"].info.run_id
        assert parent != runs["train"]
        for fold in ("fold-1", "fold-2"):
            assert by_name[fold].data.tags["mlflow.parentRunId"] == parent, fold
        assert "mlflow.parentRunId" not in by_name["train"].data.tags


def _runs_of(uri: str, renamed: dict[str, str] | None = None) -> dict[tuple[str, str], Any]:
    """{(experiment, run name): (metrics' full histories, params)} of every active run; a
    run named by its id in the copy (a name taken twice) is compared under its old name."""
    client = MlflowClient(uri)
    experiments = {e.experiment_id: e.name for e in client.search_experiments()}
    found = {}
    names = {v: k.rpartition("-")[0] for k, v in (renamed or {}).items() if k.startswith("dup")}
    for run in client.search_runs(list(experiments), max_results=1000):
        name = names.get(run.info.run_name, run.info.run_name)
        histories = {
            key: sorted(
                (m.step, m.timestamp, repr(m.value))  # repr: NaN equals NaN
                for m in client.get_metric_history(run.info.run_id, key)
            )
            for key in sorted(run.data.metrics)
        }
        key = (experiments[run.info.experiment_id], name)
        found.setdefault(key, []).append((histories, sorted(run.data.params.items())))
    return {k: sorted(v, key=repr) for k, v in found.items()}


def test_cli_copy_into_a_server_keeps_stdout_for_data(
    native_db: tuple[str, dict[str, str]], mlflow_server: Any
) -> None:
    """MLflow's "🏃 View run …" lines, two per run on a tracking server, never reach
    trackplug's stdout; the copy lands."""
    uri, _runs = native_db
    experiment = f"moved-{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [
            sys.executable, "-m", "trackplug.cli", "copy",
            f"mlflow+{uri}?runs=all&experiment=alpha",
            f"mlflow+{mlflow_server.address}?experiment={experiment}",
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "View run" not in done.stdout
    assert "View experiment" not in done.stdout
    assert "Copied 5 resources" in done.stdout
    backend = MLflowBackend(f"mlflow+{mlflow_server.address}?experiment={experiment}")
    assert len(backend.history(Resource("train"), "loss")) == 5


def test_copy_off_a_server_mlflow_filled(mlflow_server: Any, tmp_path: Path) -> None:
    """The same runs logged by MLflow's fluent API to a real ``mlflow server``, read over
    HTTP (MLflow's pages of 25,000 points) and copied into SQLite whole."""
    suffix = f"-{uuid.uuid4().hex[:8]}"
    runs = fill_native_store(mlflow_server.address, suffix)
    client = MlflowClient(mlflow_server.address)
    url = f"sqlite:///{tmp_path / 'out.db'}"
    for experiment, roles in (("alpha", ["train", "fold-1", "fold-2"]), ("beta", ["batch"])):
        source = f"mlflow+{mlflow_server.address}?runs=all&experiment={experiment}{suffix}"
        trackplug.copy(source, url)
        with trackplug.connect(url) as dst:
            for role in roles:
                for key, points in mlflow_points(client, runs[role]).items():
                    assert same(dst.history(role, key), points), (role, key)
                assert dst.params(role) == dict(
                    sorted(client.get_run(runs[role]).data.params.items())
                )


GUIDE = Path(__file__).parents[3] / "docs" / "backends" / "mlflow.md"


def guide_commands() -> list[str]:
    """The ``trackplug copy`` commands of "Moving off MLflow, or onto it"."""
    section = GUIDE.read_text().partition("## Moving off MLflow, or onto it")[2]
    block = section.partition("```console\n")[2].partition("```")[0]
    return [line for line in block.splitlines() if line.startswith("trackplug copy")]


def test_the_guide_commands_run(tmp_path: Path, template_db: Path) -> None:
    """Every command of the guide that needs no server, in order, in a folder holding an
    ``mlflow.db`` MLflow filled: each copies what it says."""
    (tmp_path / "mlflow.db").write_bytes(template_db.read_bytes())
    fill_native_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    commands = [c for c in guide_commands() if "http" not in c]
    assert len(commands) >= 3
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKPLUG_", "MLFLOW_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, (command, done.stderr[-2000:])
        assert re.match(r"Copied [1-9]\d* resources, [1-9]\d* points", done.stdout), command


def test_new_resources_do_not_read_every_run_again(
    sqlite_stores: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writing N new resources into ``?runs=all`` reads about N runs, not N²/2 (each
    unknown resource is looked for among the runs started since the newest one held); a
    run another writer starts meanwhile is still found."""
    url = sqlite_stores.new_url("?runs=all&experiment=many")
    backend = MLflowBackend(url)
    read = []
    search = backend._reads.search

    def counting(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for run in search(*args, **kwargs):
            read.append(run.info.run_id)
            yield run

    monkeypatch.setattr(backend._reads, "search", counting)
    count = 30
    for i in range(count):
        backend.log_metrics(Resource(f"r{i}"), [MetricPoint("m", float(i), 0, 1)], None)
    assert len(read) < 3 * count, len(read)  # before: every run again per resource (~N²/2)
    client = MlflowClient(url.removeprefix("mlflow+").partition("?")[0])
    (experiment,) = [e for e in client.search_experiments() if e.name == "many"]
    late = client.create_run(experiment.experiment_id, run_name="late")
    client.log_metric(late.info.run_id, "m", 7.0)
    assert backend.get_metric(Resource("late"), "m") == 7.0
    backend.close()
