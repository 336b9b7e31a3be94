"""``trackplug.copy``: every point and perf record arrives; an interrupted copy resumes; a
second copy writes nothing, even into a store that keeps some values differently (MLflow's
database stores: -0.0 as 0.0, ±inf as ±1.797e308)."""

from __future__ import annotations

import math
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

import trackplug
from trackplug import Capabilities, MetricPoint, PerfRecord, Resource, Tracker
from trackplug._memory import MemoryBackend
from trackplug._model import Batch, float_bits
from trackplug.spec import hookimpl

#: The values whose stored form may differ from what was logged, and plain ones.
ODD = [-0.0, 0.0, math.inf, -math.inf, math.nan, 1.5, -2.25]
#: MLflow's database stores, as they declare themselves.
MLFLOW_LIKE = Capabilities(persistent=True, infinity="clamp", negative_zero="positive")


def source() -> Tracker:
    """Three resources: odd values at distinct steps, a dotted key, perf records with a value
    that is stored differently (-0.0, inf) or never equal to itself (NaN)."""
    src = trackplug.connect("memory://")
    for step, value in enumerate(ODD):
        src.log_metric("run-a", "loss", value, step=step, timestamp=1_000 + step)
        src.log_metric("run-a", "valid.acc", step / 10, step=step, timestamp=1_000 + step)
    src.log_metrics("run-a", {"f1": math.nan}, perf_metric="f1", timestamp=5)
    src.log_metrics("run-b", {"valid": {"f1": -0.0}}, perf_metric="f1", timestamp=6)
    src.log_metrics("run-c", {"auc": math.inf}, perf_metric="auc", timestamp=7)
    return src


def exact(points: Sequence[MetricPoint], caps: Capabilities) -> list[tuple[object, ...]]:
    """A history as it reads back from a store with ``caps``: values as bits."""
    return [(p.key, p.step, p.timestamp, float_bits(caps.stored(p.value))) for p in points]


def assert_same(src: Tracker, dst: Tracker) -> None:
    caps = dst.capabilities
    assert dst.resources() == src.resources()
    for rid in src.resources():
        assert sorted(dst.latest(rid)) == sorted(src.latest(rid))
        for key in src.latest(rid):
            assert exact(dst.history(rid, key), caps) == exact(src.history(rid, key), caps)
        want, got = src.perf(rid), dst.perf(rid)
        assert want is not None
        assert got is not None
        assert got.metric == want.metric
        assert float_bits(got.value) == float_bits(caps.stored(want.value))


def total_points(tracker: Tracker) -> int:
    return sum(len(tracker.history(r, k)) for r in tracker.resources() for k in tracker.latest(r))


class StoresLikeMLflow(MemoryBackend):
    """The reference backend keeping values as MLflow's database stores declare they do
    (``Capabilities.stored``), and counting the writes that reach it."""

    def __init__(self) -> None:
        super().__init__("memory://like-mlflow")
        self.writes = 0

    @hookimpl
    def capabilities(self) -> Capabilities:
        return MLFLOW_LIKE

    @hookimpl
    def log_metric(self, batch: Batch) -> None:
        self.writes += 1
        super().log_metric({r: self._kept(points) for r, points in batch.items()})

    @hookimpl
    def log_metrics(
        self, resource: Resource, points: Sequence[MetricPoint], perf: PerfRecord | None
    ) -> None:
        self.writes += 1
        kept = perf._replace(value=self._stored(perf.value)) if perf else None
        super().log_metrics(resource, self._kept(points), kept)

    @classmethod
    def _kept(cls, points: Sequence[MetricPoint]) -> list[MetricPoint]:
        return [p._replace(value=cls._stored(p.value)) for p in points]

    @staticmethod
    def _stored(value: float) -> float:
        """A new float, as a store on disk reads back (MLflow keeps the perf value as its
        repr in a tag): never the very NaN object that was logged."""
        return float(repr(MLFLOW_LIKE.stored(value)))


@pytest.fixture(scope="module")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated MLflow SQLite store (migrations take seconds): tests copy the file."""
    pytest.importorskip("trackplug_mlflow", reason="the MLflow backend is not installed")
    tracking = pytest.importorskip("mlflow.tracking", reason="mlflow is not installed")
    path = tmp_path_factory.mktemp("mlflow-template") / "template.db"
    tracking.MlflowClient(f"sqlite:///{path}").get_experiment("0")  # runs the migrations
    return path


def sqlite_target(tmp_path: Path) -> str:
    pytest.importorskip("trackplug_sql", reason="the SQL backend is not installed")
    return f"sqlite:///{tmp_path / 'target.db'}"


# -- what arrives ---------------------------------------------------------------------------


def test_copy_memory_to_sqlite_moves_every_point_and_perf_record_exactly(
    tmp_path: Path,
) -> None:
    src, url = source(), sqlite_target(tmp_path)
    summary = trackplug.copy(src, url)
    assert summary == trackplug.CopySummary(resources=3, points=total_points(src), skipped=0)
    with trackplug.connect(url) as dst:  # reopened: the copy is in the file
        assert_same(src, dst)


# -- a second copy writes nothing ------------------------------------------------------------


def test_copying_twice_into_a_store_that_keeps_values_differently_writes_nothing_again() -> None:
    src, target = source(), StoresLikeMLflow()
    dst = Tracker(target)
    first = trackplug.copy(src, dst)
    assert first.points == total_points(src)
    assert_same(src, dst)
    writes = target.writes

    again = trackplug.copy(src, dst)
    assert again == trackplug.CopySummary(resources=3, points=0, skipped=total_points(src))
    assert target.writes == writes  # not a point, not a perf record (NaN, -0.0, inf)
    assert_same(src, dst)


def test_a_nan_perf_record_is_written_once() -> None:
    src, target = trackplug.connect("memory://"), StoresLikeMLflow()
    src.log_metrics("run", {"f1": math.nan}, perf_metric="f1")  # NaN != NaN
    dst = Tracker(target)
    trackplug.copy(src, dst)
    writes = target.writes
    trackplug.copy(src, dst)
    assert target.writes == writes


def test_copying_twice_into_a_real_mlflow_store_writes_nothing_again(
    mlflow_template: Path, tmp_path: Path
) -> None:
    store = tmp_path / f"{uuid.uuid4().hex}.db"
    shutil.copyfile(mlflow_template, store)
    url = f"mlflow+sqlite:///{store}"
    src = source()
    first = trackplug.copy(src, url)
    assert first == trackplug.CopySummary(resources=3, points=total_points(src), skipped=0)

    again = trackplug.copy(src, url)
    assert again == trackplug.CopySummary(resources=3, points=0, skipped=total_points(src))
    with trackplug.connect(url) as dst:
        assert dst.capabilities.stored(-0.0) == 0.0  # it does store values differently
        assert_same(src, dst)


def test_copying_twice_into_sqlite_writes_nothing_again(tmp_path: Path) -> None:
    src, url = source(), sqlite_target(tmp_path)
    trackplug.copy(src, url)
    again = trackplug.copy(src, url)
    assert again == trackplug.CopySummary(resources=3, points=0, skipped=total_points(src))
    with trackplug.connect(url) as dst:
        assert total_points(dst) == total_points(src)


# -- interrupted, resumed --------------------------------------------------------------------


class Interrupted(Exception):
    pass


def stop_after(resources: int) -> Callable[[int, int, str], None]:
    def progress(done: int, total: int, resource: str) -> None:
        if done == resources:
            raise Interrupted(resource)

    return progress


def test_an_interrupted_copy_resumes_where_it_stopped(tmp_path: Path) -> None:
    src, url = source(), sqlite_target(tmp_path)
    with pytest.raises(Interrupted):
        trackplug.copy(src, url, progress=stop_after(1))  # run-a copied, then stopped
    with trackplug.connect(url) as dst:  # and half of run-b's key, as if stopped mid-key
        assert dst.resources() == ["run-a"]
        dst.log_points("run-b", src.history("run-b", "valid_f1")[:1])
    there = sum(len(src.history("run-a", key)) for key in src.latest("run-a")) + 1

    resumed = trackplug.copy(src, url)
    assert resumed.skipped == there
    assert resumed.points == total_points(src) - resumed.skipped
    with trackplug.connect(url) as dst:
        assert_same(src, dst)


# -- progress --------------------------------------------------------------------------------


def test_progress_is_called_after_each_resource_in_order() -> None:
    src, calls = source(), []
    dst = trackplug.connect("memory://")
    trackplug.copy(src, dst, progress=lambda *call: calls.append(call))
    assert calls == [(1, 3, "run-a"), (2, 3, "run-b"), (3, 3, "run-c")]

    calls.clear()
    trackplug.copy(src, dst, resources=["run-c", "run-a"], progress=lambda *c: calls.append(c))
    assert calls == [(1, 2, "run-a"), (2, 2, "run-c")]


def test_points_progress_advances_a_page_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The source is read (and written) a page of ``BATCH`` points at a time, never as one
    whole history, and ``points`` is told the running total after each page."""
    from trackplug import _transfer

    monkeypatch.setattr(_transfer, "BATCH", 4)
    src = trackplug.connect("memory://")
    src.log_points("long", [MetricPoint("m", float(i), i, 1) for i in range(10)])
    src.log_points("short", [MetricPoint("m", 1.0, 0, 1)])
    whole = []
    monkeypatch.setattr(src, "history", lambda *args: whole.append(args) or [])
    counts: list[int] = []
    dst = trackplug.connect("memory://")
    summary = trackplug.copy(src, dst, points=counts.append)
    assert counts == [4, 8, 10, 11]
    assert not whole  # the source's history is never read whole
    assert summary.points == 11
    assert [p.value for p in dst.history("long", "m")] == [float(i) for i in range(10)]
    counts.clear()
    assert trackplug.copy(src, dst, points=counts.append).skipped == 11  # a resumed copy
    assert counts == [4, 8, 10, 11]
