"""The MLflow backend's own behaviour: run mapping, what MLflow keeps (measured on the raw
client, on a SQLite store and behind a real server), exact latest/best where MLflow's own
answer differs, errors, and the environment."""

from __future__ import annotations

import math
import os
import struct
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow_server import free_port
from trackplug_mlflow.backend import RESOURCE_TAG, MLflowBackend

import trackplug
from trackplug import BackendError, Tracker

FLOAT_MAX = 1.7976931348623157e308


def bits(value: float) -> str:
    return struct.pack("<d", value).hex()


@pytest.fixture(params=["sqlite", "server", "postgresql"])
def url(request: pytest.FixtureRequest, sqlite_stores: Any) -> str:
    """A fresh store: a SQLite copy, or a new experiment on the session's server (which
    stands on SQLite) or in the session's PostgreSQL store."""
    if request.param == "sqlite":
        return str(sqlite_stores.new_url("?experiment=tests"))
    if request.param == "server":
        return str(request.getfixturevalue("mlflow_server").new_url())
    return str(request.getfixturevalue("mlflow_postgresql").new_url())


@pytest.fixture
def database(request: pytest.FixtureRequest) -> str:
    """The database under this test's store: "sqlite" (directly or behind the server), or
    "postgresql"."""
    return "postgresql" if request.node.callspec.params["url"] == "postgresql" else "sqlite"


@pytest.fixture
def backend(url: str) -> MLflowBackend:
    return MLflowBackend(url)


@pytest.fixture
def tracker(backend: MLflowBackend) -> Iterator[Tracker]:
    with Tracker(backend, flush_interval=3600) as t:
        yield t


@pytest.fixture
def raw_run(backend: MLflowBackend) -> tuple[MlflowClient, str]:
    """The backend's client and a new run in its experiment, for raw MLflow calls."""
    client = backend.client
    return client, client.create_run(backend.experiment_id).info.run_id


# -- what MLflow 3 keeps: measured on the raw client, the reason for CAPABILITIES ---------------


def test_mlflow_clamps_infinity_keeps_nan(
    tracker: Tracker, raw_run: tuple[MlflowClient, str]
) -> None:
    client, run_id = raw_run
    values = {"pinf": math.inf, "ninf": -math.inf, "nan": math.nan}
    client.log_batch(run_id, [Metric(k, v, 1, 0) for k, v in values.items()])
    got = {k: bits(client.get_metric_history(run_id, k)[0].value) for k in values}
    assert got == {"pinf": bits(FLOAT_MAX), "ninf": bits(-FLOAT_MAX), "nan": bits(math.nan)}
    caps = tracker.capabilities
    assert (caps.infinity, caps.nan) == ("clamp", "keep")


def test_the_sign_of_zero_depends_on_the_database_so_the_backend_drops_it(
    tracker: Tracker, raw_run: tuple[MlflowClient, str], database: str
) -> None:
    """SQLite drops it; PostgreSQL keeps it, yet folds -0.0 and 0.0 at one step and timestamp
    into whichever came first. The backend sends 0.0: every store as declared."""
    client, run_id = raw_run
    client.log_batch(run_id, [Metric("z", -0.0, 1, 0), Metric("w", -0.0, 1, 0)])
    client.log_batch(run_id, [Metric("w", 0.0, 1, 0)])
    kept = -0.0 if database == "postgresql" else 0.0
    for key in ("z", "w"):
        assert [bits(m.value) for m in client.get_metric_history(run_id, key)] == [bits(kept)]
    tracker.log_metric("r", "z", -0.0, step=0, timestamp=1)
    tracker.log_metric("r", "z", 0.0, step=0, timestamp=1)
    assert [bits(p.value) for p in tracker.history("r", "z")] == [bits(0.0)]
    assert tracker.capabilities.negative_zero == "positive"


def test_mlflow_stores_an_exact_duplicate_once(
    tracker: Tracker, raw_run: tuple[MlflowClient, str]
) -> None:
    client, run_id = raw_run
    point = [Metric("m", 0.5, 2, 1), Metric("m", 0.5, 2, 1)]
    client.log_batch(run_id, point)
    client.log_batch(run_id, point[:1])
    client.log_batch(run_id, [Metric("z", -0.0, 2, 1), Metric("z", 0.0, 2, 1)])
    assert len(client.get_metric_history(run_id, "m")) == 1
    assert len(client.get_metric_history(run_id, "z")) == 1  # -0.0 and 0.0: one point
    assert tracker.capabilities.duplicates == "collapse"


def test_mlflow_keeps_64_bit_steps_and_timestamps(
    tracker: Tracker, raw_run: tuple[MlflowClient, str]
) -> None:
    client, run_id = raw_run
    edges = [(-(2**63), 0), (2**63 - 1, 2**63 - 1), (2**53 + 1, 5)]
    client.log_batch(run_id, [Metric("m", 1.0, ts, step) for step, ts in edges])
    history = client.get_metric_history(run_id, "m")
    assert sorted((m.step, m.timestamp) for m in history) == sorted(edges)
    caps = tracker.capabilities
    assert (caps.min_step, caps.max_step) == (-(2**63), 2**63 - 1)


def test_mlflow_ranks_nan_as_zero_in_its_latest_value(raw_run: tuple[MlflowClient, str]) -> None:
    """MLflow's latest_metrics rule; trackplug ranks NaN lowest and corrects it."""
    client, run_id = raw_run
    client.log_batch(run_id, [Metric("m", -1.0, 5, 1)])
    client.log_batch(run_id, [Metric("m", math.nan, 5, 1)])
    assert math.isnan(client.get_run(run_id).data.metrics["m"])  # MLflow: NaN (as 0 > -1)


# -- exact reads where MLflow's answer differs --------------------------------------------------


def test_latest_ranks_nan_below_every_number(tracker: Tracker) -> None:
    tracker.log_metric("r", "m", math.nan, step=5, timestamp=1)
    tracker.log_metric("r", "m", -1.0, step=5, timestamp=1)
    assert tracker.get_metric("r", "m") == -1.0
    assert tracker.latest("r") == {"m": -1.0}
    tracker.log_metric("r", "only_nan", math.nan)
    assert math.isnan(tracker.get_metric("r", "only_nan") or 0.0)


def test_best_corrects_mlflows_nan_latest(tracker: Tracker) -> None:
    tracker.log_metric("a", "f1", 0.5)
    tracker.log_metric("b", "f1", math.nan, step=1, timestamp=1)
    tracker.log_metric("b", "f1", -2.0, step=1, timestamp=1)  # contract: -2.0; MLflow: NaN
    tracker.log_metric("c", "f1", math.nan)  # not ranked
    tracker.log_metric("d", "loss", 1.0)  # no f1: not ranked
    assert tracker.best("f1", "min", 10) == [("b", -2.0), ("a", 0.5)]
    assert tracker.best("f1", "max", 10) == [("a", 0.5), ("b", -2.0)]
    assert tracker.best("f1", "max", 1) == [("a", 0.5)]


def test_best_keeps_ties_in_id_order(tracker: Tracker) -> None:
    for rid in ("z", "y", "x", "w"):
        tracker.log_metric(rid, "f1", 0.5)
    tracker.log_metric("v", "f1", 0.25)
    assert tracker.best("f1", "max", 2) == [("w", 0.5), ("x", 0.5)]
    assert tracker.best("f1", "min", 2) == [("v", 0.25), ("w", 0.5)]


@pytest.mark.parametrize("limit", [1001, 50_001, 2**31, 2**63 - 1])
def test_best_takes_any_valid_limit(tracker: Tracker, limit: int) -> None:
    """A limit past MLflow's page size (a server once failed on 2**63 - 1, found by the
    fuzz on a real server) pages instead."""
    tracker.log_metric("a", "f1", 0.5)
    tracker.log_metric("b", "f1", 0.25)
    assert tracker.best("f1", "max", limit) == [("a", 0.5), ("b", 0.25)]


# -- run mapping --------------------------------------------------------------------------------


def test_each_resource_is_an_ordinary_run(tracker: Tracker, backend: MLflowBackend) -> None:
    tracker.log_metric("model-1", "val.loss", 0.5, step=3)
    tracker.log_metrics("model-1", {"valid": {"f1": 0.75}}, perf_metric="f1")
    tracker.close()
    (run,) = backend.client.search_runs([backend.experiment_id])
    assert run.info.run_name == "model-1"
    assert run.info.status == "FINISHED"
    assert run.data.tags[RESOURCE_TAG] == "model-1"
    assert run.data.metrics == {"val.loss": 0.5, "valid_f1": 0.75}
    assert run.data.tags["performance_metric"] == "f1"
    assert run.data.tags["performance_metric_value"] == "0.75"


def test_writers_converge_on_one_run(url: str) -> None:
    """Two backends that create the same resource end up writing to one run."""
    first, second = MLflowBackend(url), MLflowBackend(url)
    with Tracker(first, flush_interval=3600) as a, Tracker(second, flush_interval=3600) as b:
        a.log_metric("shared", "m", 1.0, step=1, timestamp=1)
        a.flush()
        b.log_metric("shared", "m", 2.0, step=2, timestamp=2)
        b.flush()
        assert [p.value for p in a.history("shared", "m")] == [1.0, 2.0]
        runs = first.client.search_runs([first.experiment_id])
        assert [r.info.run_name for r in runs] == ["shared"]


@pytest.fixture
def sent(backend: MLflowBackend) -> list[list[Metric]]:
    """The metrics of every ``log_batch`` call the backend makes, call by call."""
    calls: list[list[Metric]] = []
    log_batch = backend.client.log_batch

    def recorded(run_id: str, metrics: Any = (), **kwargs: Any) -> Any:
        calls.append(list(metrics))
        return log_batch(run_id, metrics=metrics, **kwargs)

    backend.client.log_batch = recorded
    return calls


def test_points_go_out_with_log_batch(tracker: Tracker, sent: list[list[Metric]]) -> None:
    for step in range(2500):
        tracker.log_metric("r", "loss", 1.0 / (step + 1), step=step)
    tracker.flush()
    assert [len(metrics) for metrics in sent] == [1000, 1000, 500]
    assert len(tracker.history("r", "loss")) == 2500


def test_a_large_batch_goes_out_grouped_by_key(tracker: Tracker, sent: list[list[Metric]]) -> None:
    """Logged step by step, three keys at a time: each call carries one key, in step order
    (MLflow updates a key's latest value once per call)."""
    for step in range(1000):
        for key in ("c", "a", "b"):
            tracker.log_metric("r", key, float(step), step=step)
    tracker.flush()
    assert [{m.key for m in metrics} for metrics in sent] == [{"a"}, {"b"}, {"c"}]
    assert all([m.step for m in metrics] == list(range(1000)) for metrics in sent)
    assert tracker.latest("r") == {"a": 999.0, "b": 999.0, "c": 999.0}


# -- the environment ----------------------------------------------------------------------------


def test_mlflow_url_honours_the_environment(
    sqlite_stores: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = sqlite_stores.new_path()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{path}")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    with trackplug.connect("mlflow://") as t:
        t.log_metric("r", "m", 1.0)
    client = MlflowClient(f"sqlite:///{path}")
    experiment = client.get_experiment_by_name("from-env")
    assert experiment is not None
    assert [r.info.run_name for r in client.search_runs([experiment.experiment_id])] == ["r"]
    assert os.environ["MLFLOW_TRACKING_URI"] == f"sqlite:///{path}", "env changed"


def test_experiment_id_from_the_environment(
    sqlite_stores: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sqlite_stores.new_url()
    experiment_id = MlflowClient(url.removeprefix("mlflow+")).create_experiment("by-id")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment_id)
    assert MLflowBackend(url).experiment_id == experiment_id
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "424242")
    with pytest.raises(BackendError, match=r"'424242' failed \(RESOURCE_DOES_NOT_EXIST\)"):
        MLflowBackend(url)  # read from MLflow's tables: MLflow's own error code
    with pytest.raises(BackendError, match="424242") as failed:
        MLflowBackend(url, client=MlflowClient(url.removeprefix("mlflow+")))
    assert isinstance(failed.value.__cause__, MlflowException)


def test_deleted_experiment_is_a_clear_error(sqlite_stores: Any) -> None:
    url = sqlite_stores.new_url()
    client = MlflowClient(url.removeprefix("mlflow+"))
    client.delete_experiment(client.create_experiment("gone"))
    with pytest.raises(BackendError, match="deleted; restore it"):
        MLflowBackend(url + "?experiment=gone")


# -- errors -------------------------------------------------------------------------------------


def test_a_server_that_is_down_is_a_quick_clear_error() -> None:

    url = f"mlflow+http://me:hunter2@127.0.0.1:{free_port()}?experiment=e"
    with pytest.raises(BackendError) as failed:
        MLflowBackend(url)
    message = str(failed.value)
    assert "cannot be reached" in message
    assert f"http://me:***@127.0.0.1:{url.split(':')[3].split('?')[0]}" in message
    assert "hunter2" not in message
    assert isinstance(failed.value.__cause__, MlflowException)


def test_a_database_store_that_is_down_is_a_quick_clear_error() -> None:
    """Probed at open: MLflow's own engine would retry for about 100 s."""
    pytest.importorskip("psycopg", reason="psycopg (PostgreSQL's driver) is not installed")

    port = free_port()
    with pytest.raises(BackendError) as failed:
        MLflowBackend(f"mlflow+postgresql://me:hunter2@127.0.0.1:{port}/db")
    message = str(failed.value)
    assert f"database store at mlflow+postgresql://me:***@127.0.0.1:{port}/db" in message
    assert "cannot be reached" in message
    assert "hunter2" not in message
    assert "\n" not in message
    assert type(failed.value.__cause__).__name__ == "OperationalError"


def test_a_server_that_goes_down_is_a_backend_error() -> None:
    """A client whose server is gone (no probe: the client is given) fails as BackendError."""

    dead = MlflowClient(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(BackendError, match="finding experiment") as failed:
        MLflowBackend("mlflow+http://127.0.0.1:1?experiment=e", client=dead)
    assert isinstance(failed.value.__cause__, MlflowException)


def test_mlflow_errors_keep_their_cause(sqlite_stores: Any) -> None:
    backend = MLflowBackend(sqlite_stores.new_url())
    with Tracker(backend, flush_interval=3600) as t:
        t.log_metric("r", "m", 1.0)
        t.flush()
        backend.client.delete_run(backend._run_id(trackplug.Resource("r")))
        t.log_metric("r", "m", 2.0)
        with pytest.raises(BackendError, match="logging 1 metrics") as failed:
            t.flush()
        assert isinstance(failed.value.__cause__, MlflowException)
        backend.client.restore_run(backend._run_id(trackplug.Resource("r")))
    with Tracker(MLflowBackend(backend.target.url), flush_interval=3600) as again:
        assert [p.value for p in again.history("r", "m")] == [1.0, 2.0], "sent on close"


def test_unique_experiment_names_do_not_leak_runs(sqlite_stores: Any) -> None:
    path = sqlite_stores.new_path()
    with trackplug.connect(f"mlflow+sqlite:///{path}?experiment=a") as a:
        a.log_metric("r", "m", 1.0)
    with trackplug.connect(f"mlflow+sqlite:///{path}", experiment=f"b{uuid.uuid4().hex}") as b:
        assert b.resources() == []


def test_mlflow_url_probes_the_server_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://me:hunter2@127.0.0.1:{free_port()}")
    with pytest.raises(BackendError, match="from MLFLOW_TRACKING_URI") as failed:
        trackplug.connect("mlflow://")
    assert "hunter2" not in str(failed.value)
    assert "me:***@127.0.0.1" in str(failed.value)


def test_file_store_keeps_what_it_declares(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's legacy file store writes text lines: inf, -0.0 and every copy survive."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    url = f"mlflow+file://{tmp_path / 'mlruns'}?experiment=f"
    with trackplug.connect(url) as t:
        caps = t.capabilities
        assert (caps.infinity, caps.negative_zero, caps.duplicates) == ("keep", "keep", "keep")
        for value in (math.inf, -0.0, 0.5, 0.5):
            t.log_metric("r", "m", value, step=1, timestamp=1)
        got = [bits(p.value) for p in t.history("r", "m")]
    assert got == [bits(-0.0), bits(0.5), bits(0.5), bits(math.inf)]


def test_an_mlflow_store_opened_as_sqlite_is_refused_untouched(sqlite_stores: Any) -> None:
    """``sqlite:///mlflow.db`` for ``mlflow+sqlite:///mlflow.db``, an easy slip: trackplug's
    SQL backend must not add its tables or switch the file to WAL."""
    pytest.importorskip("trackplug_sql")
    import sqlite3

    path = sqlite_stores.new_path()
    before = path.read_bytes()
    with pytest.raises(BackendError, match="looks like an MLflow store") as error:
        trackplug.connect(f"sqlite:///{path}")
    assert f"mlflow+sqlite:///{path}" in str(error.value)
    assert path.read_bytes() == before
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] != "wal"
    db.close()
    with trackplug.connect(f"mlflow+sqlite:///{path}") as tracker:  # the URL it names works
        tracker.log_metric("r", "k", 1.0)
        assert tracker.get_metric("r", "k") == 1.0


def test_params_tags_and_run_status_are_mlflows_own(sqlite_url: str) -> None:
    """What the MLflow UI shows: real params (text), the user's tags, and a trackplug run's
    status and end time as the MLflow run's own."""
    with trackplug.connect(sqlite_url) as t:
        with t.start_run("sgd", params={"lr": 0.01, "warm": True}, tags={"team": "a"}) as good:
            good.log_metric("loss", 0.5)
        with pytest.raises(KeyboardInterrupt), t.start_run("sgd") as bad:
            raise KeyboardInterrupt
        open_run = t.start_run("sgd")
        client = MlflowClient(tracking_uri=sqlite_url.removeprefix("mlflow+").partition("?")[0])
        runs = {r.info.run_name: r for r in client.search_runs(_experiments(client))}
        assert runs[good.id].data.params == {"lr": "0.01", "warm": "True"}
        assert runs[good.id].data.tags["team"] == "a"
        assert runs[good.id].info.status == "FINISHED"
        assert runs[good.id].info.end_time == t.runs("sgd")[0].end
        assert runs[bad.id].info.status == "FAILED"
        assert runs[open_run.id].info.status == "RUNNING"
        assert t.params(good.id) == {"lr": "0.01", "warm": "True"}
        assert t.tags(good.id) == {"team": "a"}
        with pytest.raises(trackplug.ValidationError, match="performance_metric"):
            t.set_tags(good.id, {"performance_metric": "f1"})


def _experiments(client: MlflowClient) -> list[str]:
    return [e.experiment_id for e in client.search_experiments()]
