"""The facade: buffering, read-your-writes, flush triggers, lifecycle, threads, fan-out."""

from __future__ import annotations

import gc
import math
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import trackplug
from trackplug import (
    Capabilities,
    ClosedError,
    CloseWarning,
    InvalidTypeError,
    MetricPoint,
    PerfRecord,
    PluginError,
    Resource,
    Tracker,
    UnsupportedValueError,
    ValidationError,
    _buffer,
)
from trackplug._memory import MemoryBackend
from trackplug._model import Batch
from trackplug.spec import hookimpl

QUIET = {"flush_interval": 3600.0, "buffer_size": 1_000_000, "max_buffer": 1_000_000}


class SpyBackend(MemoryBackend):
    """The reference backend, recording every batch it receives."""

    def __init__(self, url: str = "memory://spy") -> None:
        super().__init__(url)
        self.batches: list[int] = []
        self.received = threading.Event()

    @hookimpl
    def log_metric(self, batch: Batch) -> None:
        super().log_metric(batch)
        self.batches.append(sum(len(points) for points in batch.values()))
        self.received.set()


def wait_for(condition: threading.Event, seconds: float = 10.0) -> bool:
    return condition.wait(seconds)


# -- buffering and read-your-writes ------------------------------------------------------


def test_log_metric_is_buffered_until_a_read() -> None:
    spy = SpyBackend()
    with Tracker(spy, **QUIET) as tracker:
        tracker.log_metric("r", "loss", 0.5)
        assert spy.batches == []
        assert tracker.get_metric("r", "loss") == 0.5  # the read drained the buffer
        assert spy.batches == [1]


@pytest.mark.parametrize(
    "read",
    [
        lambda t: t.history("r", "loss"),
        lambda t: t.latest("r"),
        lambda t: t.resources(),
        lambda t: t.best("loss"),
        lambda t: t.perf("r"),
    ],
)
def test_every_read_sees_every_earlier_write(read: object) -> None:
    spy = SpyBackend()
    with Tracker(spy, **QUIET) as tracker:
        tracker.log_metric("r", "loss", 0.5)
        read(tracker)  # type: ignore[operator]
        assert spy.batches == [1]


def test_log_metrics_without_a_perf_metric_is_buffered_with_log_metric() -> None:
    """Its points join log_metric's batch (one transaction for both, not one per call)."""
    spy = SpyBackend()
    with Tracker(spy, **QUIET) as tracker:
        tracker.log_metric("r", "loss", 0.5)
        tracker.log_metrics("r", {"a": 1.0, "b": 2.0}, step=1)
        tracker.log_metrics("r", {"valid": {"f1": 0.5}}, step=2)  # the long way, also buffered
        assert spy.batches == []
        assert tracker.latest("r") == {"a": 1.0, "b": 2.0, "loss": 0.5, "valid_f1": 0.5}
        assert spy.batches == [4]


def test_log_metrics_with_a_perf_metric_is_written_before_it_returns() -> None:
    spy = SpyBackend()
    with Tracker(spy, **QUIET) as tracker:
        tracker.log_metrics("r", {"f1": 0.5}, perf_metric="f1")
        assert spy.get_perf(trackplug.Resource("r")) == trackplug.PerfRecord("f1", 0.5)
        assert spy.batches == []  # the log_metrics hook, not a batch


def test_a_drain_takes_all_of_a_log_metrics_call_or_none() -> None:
    """A flusher that runs while another thread logs never writes part of a call."""
    seen: list[int] = []

    class Recording(SpyBackend):
        @hookimpl
        def log_metric(self, batch: Batch) -> None:
            super().log_metric(batch)
            seen.extend(len(points) for points in batch.values())

    metrics = {f"k{index}": float(index) for index in range(50)}
    with Tracker(Recording(), flush_interval=0.001, buffer_size=60, max_buffer=10_000) as t:
        for step in range(200):
            t.log_metrics("r", metrics, step=step)
        t.flush()
        assert sum(seen) == 200 * 50
        assert all(size % 50 == 0 for size in seen)


@given(
    metrics=st.dictionaries(
        st.sampled_from(["a", "b", "x/y", "0"]),
        st.floats() | st.integers(-(2**53), 2**53),
    ),
    step=st.integers(0, 5),
)
def test_the_short_way_of_log_metrics_stores_what_the_long_way_does(
    metrics: dict[str, object], step: int
) -> None:
    from trackplug import _validation as check

    for key in metrics:
        check.check_key(key)  # known valid: the short way may take them
    long_way = [check.check_point(k, v, step, 7) for k, v in check.flatten(metrics).items()]
    plain = check.plain_row(metrics)
    if plain is not None:
        assert list(zip(*plain, strict=True)) == [(p.key, p.value) for p in long_way]
        assert [type(p.value) for p in long_way] == [float] * len(long_way)
    with trackplug.connect("memory://") as tracker:
        tracker.log_metrics("r", metrics, step=step, timestamp=7)  # type: ignore[arg-type]
        stored = [p for key in sorted(metrics) for p in tracker.history("r", key)]
        assert stored == sorted(long_way, key=lambda p: p.key)


def test_a_full_buffer_wakes_the_background_flush() -> None:
    spy = SpyBackend()
    with Tracker(spy, flush_interval=3600.0, buffer_size=10, max_buffer=1000) as tracker:
        for step in range(10):
            tracker.log_metric("r", "loss", 1.0, step=step)
        assert wait_for(spy.received)
        assert sum(spy.batches) == 10


def test_the_interval_flushes_in_the_background() -> None:
    spy = SpyBackend()
    with Tracker(spy, flush_interval=0.05, buffer_size=1000, max_buffer=1000) as tracker:
        tracker.log_metric("r", "loss", 1.0)
        assert wait_for(spy.received)


class GatedBackend(SpyBackend):
    """A slow store: batch ``i`` is written when ``gates[i]`` opens."""

    def __init__(self, batches: int) -> None:
        super().__init__()
        self.gates = [threading.Event() for _ in range(batches)]
        self.writing = [threading.Event() for _ in range(batches)]

    @hookimpl
    def log_metric(self, batch: Batch) -> None:
        index = len(self.batches)
        self.writing[index].set()
        assert self.gates[index].wait(10.0)
        super().log_metric(batch)


def test_at_max_buffer_the_caller_waits_until_the_flusher_takes_the_buffer() -> None:
    slow = GatedBackend(batches=2)
    with Tracker(slow, flush_interval=3600.0, buffer_size=2, max_buffer=4) as tracker:
        for step in range(2):
            tracker.log_metric("r", "loss", 1.0, step=step)
        assert wait_for(slow.writing[0])  # the flusher is writing the first 2 points

        def log_four() -> None:
            for step in range(2, 6):
                tracker.log_metric("r", "loss", 1.0, step=step)

        caller = threading.Thread(target=log_four)
        caller.start()
        caller.join(0.3)
        assert caller.is_alive()  # blocked at the 4th point: the buffer holds max_buffer
        assert tracker._buffer._count == 4
        slow.gates[0].set()
        # The flusher takes the 4 points and the caller goes on while they are written,
        # instead of writing them itself behind the first batch.
        assert wait_for(slow.writing[1])
        caller.join(10.0)
        assert not caller.is_alive()
        assert slow.batches == [2]
        slow.gates[1].set()
        tracker.flush()
        assert slow.batches == [2, 4]


@pytest.mark.parametrize(
    ("per_call", "calls", "expected"),
    [(1, 60, [30, 40, 50, 60]), (7, 10, [35, 42, 56, 63, 70]), (23, 3, [46, 69])],
)
def test_the_caller_hands_the_gil_to_a_flusher_that_is_behind(
    monkeypatch: pytest.MonkeyPatch, per_call: int, calls: int, expected: list[int]
) -> None:
    """At each multiple of HANDOVER_EVERY points the buffer passes while over its size (the
    flusher behind), never below it: the buffer's count at each handover."""
    monkeypatch.setattr(_buffer, "HANDOVER_EVERY", 10)
    handovers: list[int] = []
    monkeypatch.setattr(_buffer, "_hand_over", lambda: handovers.append(tracker._buffer._count))
    slow = GatedBackend(batches=2)
    keys = [f"k{index}" for index in range(per_call)]
    with Tracker(slow, flush_interval=3600.0, buffer_size=25, max_buffer=10_000) as tracker:
        for step in range(25):  # up to the size (25 % 10 != 0): the flusher wakes
            tracker.log_metric("r", "loss", 1.0, step=step)
        assert wait_for(slow.writing[0])  # it took the 25 points and is writing them
        assert handovers == []
        for step in range(calls):  # the next buffer, the flusher behind from 25 points on
            if per_call == 1:
                tracker.log_metric("r", "loss", 1.0, step=step)
            else:
                tracker.log_metrics("r", dict.fromkeys(keys, 1.0), step=step)
        assert handovers == expected
        slow.gates[0].set()
        slow.gates[1].set()


def test_at_max_buffer_without_a_flusher_the_caller_writes_itself() -> None:
    spy = SpyBackend()
    with Tracker(spy, flush_interval=3600.0, buffer_size=1, max_buffer=1) as tracker:
        for step in range(3):
            tracker.log_metric("r", "loss", 1.0, step=step)
            assert spy.batches == [1] * (step + 1)  # written before the call returned


def test_flush_and_close_write_the_buffer() -> None:
    spy = SpyBackend()
    tracker = Tracker(spy, **QUIET)
    tracker.log_metric("r", "a", 1.0)
    tracker.flush()
    assert spy.batches == [1]
    tracker.log_metric("r", "b", 2.0)
    tracker.close()
    assert spy.batches == [1, 1]


def test_interpreter_exit_flushes_open_trackers(tmp_path: Path) -> None:
    out = tmp_path / "points.txt"
    script = textwrap.dedent(
        f"""
        import trackplug
        from trackplug._memory import MemoryBackend

        class FileBackend(MemoryBackend):
            @trackplug.hookimpl
            def log_metric(self, batch):
                with open({str(out)!r}, "a") as f:
                    for resource, points in batch.items():
                        f.writelines(f"{{resource.id}} {{p.key}} {{p.value}}\\n" for p in points)

        t = trackplug.Tracker(FileBackend(), flush_interval=3600)
        for step in range(100):
            t.log_metric("run", "loss", step / 10, step=step)
        # no flush, no close: the process just ends
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert len(out.read_text().splitlines()) == 100


def test_a_tracker_failing_at_exit_is_reported_and_the_others_are_still_flushed(
    tmp_path: Path,
) -> None:
    """Two trackers whose server is down: whatever order exit closes the five in, the first
    failure used to stop it, so at least one failing (and maybe good) tracker was skipped."""
    out = tmp_path / "points.txt"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from importlib.metadata import EntryPoint
        import trackplug
        from fake_plugins import FlakyBackend
        from trackplug._memory import MemoryBackend

        class FileBackend(MemoryBackend):
            @trackplug.hookimpl
            def log_metric(self, batch):
                with open({str(out)!r}, "a") as f:
                    for resource, points in batch.items():
                        f.writelines(f"{{resource.id}} {{p.key}}\\n" for p in points)

        flaky = trackplug.Registry([EntryPoint("flaky", "fake_plugins:Flaky", "trackplug")])
        trackers = [trackplug.Tracker(FileBackend(), flush_interval=3600) for _ in range(3)]
        trackers += [
            trackplug.connect(f"flaky://me:s3cret@server-{{n}}/x", registry=flaky,
                              flush_interval=3600)
            for n in (1, 2)
        ]
        FlakyBackend.down = True  # their writes fail: "flaky://me:s3cret@... is down"
        for n, t in enumerate(trackers):
            t.log_metric(f"run-{{n}}", "loss", 1.0)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert sorted(out.read_text().splitlines()) == [f"run-{n} loss" for n in range(3)]
    warned = [line for line in done.stderr.splitlines() if "CloseWarning" in line]
    for n in (1, 2):
        assert any(f"tracker flaky://me:***@server-{n}/x could not be" in w for w in warned)
    assert "s3cret" not in done.stderr
    assert "Traceback" not in done.stderr


def test_a_tracker_garbage_collected_open_warns_instead_of_printing_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Down(MemoryBackend):
        @hookimpl
        def log_metric(self, batch: Batch) -> None:
            raise ConnectionError("the store is down")

    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    tracker = Tracker(Down(), flush_interval=3600)
    tracker.log_metric("run", "loss", 1.0)
    with pytest.warns(CloseWarning, match="garbage-collected.*ConnectionError: the store is down"):
        del tracker
        gc.collect()
    assert unraisable == []


def test_eight_threads_sharing_a_sqlite_tracker_lose_nothing(tmp_path: Path) -> None:
    pytest.importorskip("trackplug_sql")
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with trackplug.connect(url, flush_interval=0.01, buffer_size=300) as tracker:

        def write(worker: int) -> None:
            for step in range(2000):
                tracker.log_metric(f"run-{worker}", "loss", float(step), step=step)

        threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    with trackplug.connect(url) as reread:
        for worker in range(8):
            steps = [p.step for p in reread.history(f"run-{worker}", "loss")]
            assert steps == list(range(2000))


# -- lifecycle ----------------------------------------------------------------------------


def test_close_is_idempotent_and_a_closed_tracker_refuses_calls() -> None:
    tracker = trackplug.connect("memory://")
    tracker.close()
    tracker.close()
    assert "closed" in repr(tracker)
    with pytest.raises(ClosedError, match="closed"):
        tracker.log_metric("r", "loss", 1.0)
    with pytest.raises(ClosedError):
        tracker.get_metric("r", "loss")


def test_a_background_failure_is_raised_by_the_next_call_and_nothing_is_lost() -> None:
    class Flaky(MemoryBackend):
        failing = True

        @hookimpl
        def log_metric(self, batch: Batch) -> None:
            if self.failing:
                raise ConnectionError("store is down")
            super().log_metric(batch)

    backend = Flaky()
    tracker = Tracker(backend, flush_interval=0.02, buffer_size=1000, max_buffer=1000)
    tracker.log_metric("r", "loss", 1.0)
    deadline = time.monotonic() + 10
    while tracker._buffer.error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(ConnectionError, match="store is down"):
        tracker.log_metric("r", "loss", 2.0, step=1)
    backend.failing = False
    assert [p.value for p in tracker.history("r", "loss")] == [1.0]  # kept and replayed
    tracker.close()


# -- threads ------------------------------------------------------------------------------


def test_eight_writer_threads_lose_nothing() -> None:
    spy = SpyBackend()
    tracker = Tracker(spy, flush_interval=0.01, buffer_size=500, max_buffer=2000)
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for step in range(5000):
                tracker.log_metric(f"run-{worker}", "loss", float(step), step=step)
                if step % 1000 == 0:  # read-your-writes holds under concurrency
                    assert tracker.get_metric(f"run-{worker}", "loss") == float(step)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert tracker.resources() == [f"run-{w}" for w in range(8)]
    for worker in range(8):
        history = tracker.history(f"run-{worker}", "loss")
        assert [p.step for p in history] == list(range(5000))
    tracker.close()


# -- lolpop's operations --------------------------------------------------------------------


def test_log_metrics_flattens_splits_and_records_the_perf_metric() -> None:
    with trackplug.connect("memory://") as t:
        t.log_metrics("m", {"train": {"f1": 0.9}, "valid": {"f1": 0.7}}, perf_metric="f1")
        assert t.latest("m") == {"train_f1": 0.9, "valid_f1": 0.7}
        assert t.perf("m") == PerfRecord("f1", 0.7)


def test_the_perf_metric_falls_back_to_train_without_a_valid_split() -> None:
    with trackplug.connect("memory://") as t:  # lolpop raised TypeError here
        t.log_metrics("m", {"train": {"f1": 0.9}}, perf_metric="f1")
        assert t.perf("m") == PerfRecord("f1", 0.9)


def test_flat_metrics_and_their_perf_metric() -> None:
    with trackplug.connect("memory://") as t:
        t.log_metrics("m", {"rmse": 1.5, "mae": 1.0}, perf_metric="rmse", step=4)
        assert [p.step for p in t.history("m", "rmse")] == [4]
        assert t.perf("m") == PerfRecord("rmse", 1.5)


@pytest.mark.parametrize(
    ("metrics", "perf_metric", "error"),
    [
        ({"train": {"f1": 0.9}, "valid": {"f1": "bad"}}, None, InvalidTypeError),
        ({"train": {"f1": 0.9}}, "auc", ValidationError),
        ({"train": {"f1": 0.9, "a..b": 1.0}}, None, ValidationError),
        ([("f1", 0.9)], None, InvalidTypeError),
    ],
)
def test_log_metrics_is_all_or_nothing(
    metrics: object, perf_metric: str | None, error: type[Exception]
) -> None:
    with trackplug.connect("memory://") as t:
        with pytest.raises(error):
            t.log_metrics("m", metrics, perf_metric=perf_metric)  # type: ignore[arg-type]
        assert t.resources() == []
        assert t.perf("m") is None


def test_copy_metrics_composed_from_required_hooks() -> None:
    with trackplug.connect("memory://") as t:
        for step in range(3):
            t.log_metric("a", "val.loss", 1.0 / (step + 1), step=step, timestamp=100 + step)
        t.log_metrics("a", {"valid": {"f1": 0.5}}, perf_metric="f1", timestamp=7)
        t.log_metric("neighbour", "loss", 9.0)
        t.log_metric("b", "other", 3.0)
        t.copy_metrics("a", "b")
        assert t.history("b", "val.loss") == t.history("a", "val.loss")
        assert t.latest("b") == {"other": 3.0, "val.loss": 1 / 3, "valid_f1": 0.5}
        assert t.perf("b") == PerfRecord("f1", 0.5)


def test_a_native_copy_replaces_the_composition() -> None:
    class NativeCopy(MemoryBackend):
        copies: ClassVar[list[tuple[str, str]]] = []

        @hookimpl
        def copy_metrics(self, source: Resource, target: Resource) -> bool:
            self.copies.append((source.id, target.id))
            return True

    backend = NativeCopy()
    with Tracker(backend) as t:
        t.log_metric("a", "loss", 1.0)
        t.copy_metrics("a", "b")
        assert backend.copies == [("a", "b")]
        assert t.latest("b") == {}  # the native hook did (nothing), not the fallback


@pytest.mark.parametrize(
    "predictions",
    [[0.5, 1.5, 2.5, 3.5], np.array([0.5, 1.5, 2.5, 3.5]), pd.Series([0.5, 1.5, 2.5, 3.5])],
)
def test_prediction_metrics_are_logged_as_real_metrics(predictions: object) -> None:
    with trackplug.connect("memory://") as t:
        summary = t.log_prediction_metrics("job", predictions)
        assert t.latest("job") == summary
        assert summary["num_predictions"] == 4.0
        assert summary["prediction_p50"] == pytest.approx(2.0)


def test_classification_predictions_log_a_class_distribution() -> None:
    with trackplug.connect("memory://") as t:
        t.log_prediction_metrics("job", pd.Series(["cat", "dog", "cat", "cat"]))
        assert t.latest("job") == {
            "class_distribution.cat": 0.75,
            "class_distribution.dog": 0.25,
            "num_predictions": 4.0,
        }


# -- reads --------------------------------------------------------------------------------


def test_best_ranks_by_latest_value_ties_by_id_and_skips_nan() -> None:
    with trackplug.connect("memory://") as t:
        for rid, value in [("c", 0.9), ("a", 0.9), ("b", 0.5), ("n", math.nan)]:
            t.log_metric(rid, "f1", value)
        assert t.best("f1", limit=3) == [("a", 0.9), ("c", 0.9), ("b", 0.5)]
        assert t.best("f1", order="min") == [("b", 0.5)]
        with pytest.raises(ValidationError, match="order"):
            t.best("f1", order="up")  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="limit"):
            t.best("f1", limit=0)


# -- capabilities and fan-out ---------------------------------------------------------------


class Picky(MemoryBackend):
    CAPABILITIES = Capabilities(infinity="reject", max_step=2**31 - 1, max_batch_size=3)

    @hookimpl
    def log_metric(self, batch: Batch) -> None:
        assert sum(len(points) for points in batch.values()) <= 3
        super().log_metric(batch)


def test_a_declared_limit_rejects_before_anything_is_written() -> None:
    with Tracker(MemoryBackend(), Picky()) as t:
        with pytest.raises(UnsupportedValueError, match="'loss'"):
            t.log_metric("r", "loss", math.inf)
        with pytest.raises(UnsupportedValueError, match="step"):
            t.log_metric("r", "loss", 1.0, step=2**31)
        assert t.resources() == []


def test_batches_are_split_to_the_declared_max_batch_size() -> None:
    with Tracker(Picky(), **QUIET) as t:
        for step in range(10):
            t.log_metric(f"r{step % 2}", "loss", 1.0, step=step)
        assert len(t.history("r0", "loss")) + len(t.history("r1", "loss")) == 10


def test_writes_fan_out_and_reads_come_from_the_primary() -> None:
    primary, secondary = MemoryBackend("memory://one"), MemoryBackend("memory://two")
    with Tracker(primary, secondary) as t:
        t.log_metric("r", "loss", 1.0)
        t.flush()
        assert secondary.get_metric(Resource("r"), "loss") == 1.0
        secondary.log_metric({Resource("only-there"): [MetricPoint("x", 1.0, 0, 0)]})
        assert t.resources() == ["r"]
        assert t.url == "memory://one"
        assert "+1" in repr(t)


def test_a_backend_missing_a_required_hook_is_refused() -> None:
    class Incomplete:
        @hookimpl
        def log_metric(self, batch: Batch) -> None: ...

    with pytest.raises(PluginError, match="required hook"):
        Tracker(Incomplete())


def test_a_misspelled_hook_is_refused() -> None:
    class Misspelled(MemoryBackend):
        @hookimpl
        def log_metrik(self, batch: Batch) -> None: ...

    with pytest.raises(PluginError, match="log_metrik"):
        Tracker(Misspelled())


def test_url_and_repr_never_show_a_password() -> None:
    class WithSecret(MemoryBackend):
        pass

    backend = WithSecret("memory://user:hunter2@host/db?token=abc")
    with Tracker(backend) as t:
        assert "hunter2" not in t.url
        assert "abc" not in t.url
        assert "hunter2" not in repr(t)


def test_each_tracker_owns_its_plugin_manager() -> None:
    with trackplug.connect("memory://") as a, trackplug.connect("memory://") as b:
        a.log_metric("r", "loss", 1.0)
        assert b.resources() == []
        assert a._pm is not b._pm


def test_buffered_points_cost_the_collector_nothing_and_arrive_as_metric_points() -> None:
    """The buffer holds plain tuples, which the collector untracks (a MetricPoint it would
    traverse on every pass while buffered); the backend still gets MetricPoints."""
    delivered: list[object] = []
    with trackplug.connect("memory://", flush_interval=3600) as tracker:
        tracker.log_metric("r", "loss", 0.5, step=0)
        tracker.flush()
        gc.collect()
        before = len(gc.get_objects())
        for step in range(10_000):
            tracker.log_metric("r", "loss", float(step), step=step)
        gc.collect()
        assert len(gc.get_objects()) - before < 1_000  # not one tracked object per point
        buffer = tracker._buffer
        deliver = buffer._deliver
        buffer._deliver = lambda batch: (delivered.extend(batch[Resource("r")]), deliver(batch))
        tracker.flush()
        assert len(tracker.history("r", "loss")) == 10_001
    assert len(delivered) == 10_000
    assert {type(point) for point in delivered} == {MetricPoint}


def test_a_new_resource_leaves_no_object_for_the_collector_until_the_batch() -> None:
    """One point into each of many resources: the buffer holds each point as one plain
    tuple of its resource's id and fields (untracked by the collector) in one flat list, not
    in a list under a Resource, which the collector would walk on every pass while they
    wait."""
    with Tracker(MemoryBackend(), **QUIET) as tracker:
        tracker.log_metric("first", "loss", 0.5)  # the flusher and the caches set up
        gc.collect()
        before = len(gc.get_objects())
        for index in range(1_000):
            tracker.log_metric(f"run-{index}", "loss", 0.5, step=index)
        gc.collect()
        assert len(gc.get_objects()) - before < 100  # not one tracked object per resource
        held = list(tracker._buffer._entries)
        assert len(held) == 1_001
        assert {type(point) for point in held} == {tuple}
        assert not any(gc.is_tracked(point) for point in held)
        tracker.flush()
        assert tracker.history("run-999", "loss") == [tracker.history("run-999", "loss")[0]]
        assert tracker.get_metric("run-7", "loss") == 0.5


def test_a_batch_is_written_and_freed_with_the_collector_paused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch's points, and what the backends build from them, die young: the collector
    is paused from the batch's making until it is freed, so no collection walks them; it
    runs again after, also after a write that failed, and one the user paused stays so."""
    freed_while_paused: list[bool] = []

    class Watched:  # stands for the batch's points: freed with it
        def __del__(self) -> None:
            freed_while_paused.append(not gc.isenabled())

    class WatchedBatch(_buffer.ColumnBatch):  # the batch holds a Watched: freed with it
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            self.watched = Watched()

    monkeypatch.setattr(_buffer, "ColumnBatch", WatchedBatch)

    class Failing(MemoryBackend):
        failing = False
        paused: ClassVar[list[bool]] = []

        @hookimpl
        def log_metric(self, batch: Batch) -> None:
            self.paused.append(not gc.isenabled())
            if self.failing:
                raise ConnectionError("store is down")

    backend = Failing()
    with Tracker(backend, **QUIET) as tracker:
        tracker.log_metric("r", "loss", 0.5)
        tracker.flush()
        assert (backend.paused, freed_while_paused, gc.isenabled()) == ([True], [True], True)
        backend.failing = True
        tracker.log_metric("r", "loss", 0.5)
        with pytest.raises(ConnectionError):
            tracker.flush()
        assert gc.isenabled()
        backend.failing = False
        gc.disable()
        try:
            tracker.flush()
            assert not gc.isenabled()
        finally:
            gc.enable()
    assert backend.paused == [True, True, True]


def test_lone_points_lists_and_log_metrics_mix_in_one_batch() -> None:
    """A resource's points arrive in order whether it holds one point, then a second, or
    ``log_metrics``' points before or after them, and every one as a MetricPoint."""
    received: list[Batch] = []

    class Recording(MemoryBackend):
        @hookimpl
        def log_metric(self, batch: Batch) -> None:
            received.append({resource: list(points) for resource, points in batch.items()})
            super().log_metric(batch)

    with Tracker(Recording(), **QUIET) as tracker:
        tracker.log_metric("lone", "a", 1.0, step=0)
        tracker.log_metric("two", "a", 1.0, step=0)
        tracker.log_metric("two", "a", 2.0, step=1)
        tracker.log_metric("then-dict", "a", 1.0, step=0)
        tracker.log_metrics("then-dict", {"a": 2.0, "b": 3.0}, step=1)
        tracker.log_metrics("dict-first", {"a": 1.0}, step=0)
        tracker.log_metric("dict-first", "a", 2.0, step=1)
        tracker.flush()
    (batch,) = received
    steps = {resource.id: [(p.key, p.step) for p in points] for resource, points in batch.items()}
    assert steps == {
        "lone": [("a", 0)],
        "two": [("a", 0), ("a", 1)],
        "then-dict": [("a", 0), ("a", 1), ("b", 1)],
        "dict-first": [("a", 0), ("a", 1)],
    }
    assert {type(p) for points in batch.values() for p in points} == {MetricPoint}


def test_a_failed_batch_of_lone_points_and_lists_goes_back_and_arrives_whole() -> None:
    """A batch whose write failed (a lone point and a list) is buffered again in front of
    later points, which join it; the failed batch a backend saw is left as it was."""

    class FailingOnce(MemoryBackend):
        failed: ClassVar[list[Batch]] = []

        @hookimpl
        def log_metric(self, batch: Batch) -> None:
            if not self.failed:
                self.failed.append(batch)
                raise ConnectionError("once")
            super().log_metric(batch)

    backend = FailingOnce()
    tracker = Tracker(backend, **QUIET)
    tracker.log_metric("lone", "a", 1.0, step=0)
    tracker.log_metric("two", "a", 1.0, step=0)
    tracker.log_metric("two", "a", 2.0, step=1)
    with pytest.raises(ConnectionError, match="once"):
        tracker.flush()
    tracker._buffer.error = None
    tracker.log_metric("lone", "a", 3.0, step=1)
    tracker.log_metric("two", "a", 3.0, step=2)
    tracker.flush()
    (failed,) = FailingOnce.failed
    assert {r.id: len(points) for r, points in failed.items()} == {"lone": 1, "two": 2}
    assert [p.value for p in tracker.history("lone", "a")] == [1.0, 3.0]
    assert [p.value for p in tracker.history("two", "a")] == [1.0, 2.0, 3.0]
    tracker.close()


def test_log_metrics_buffers_one_entry_per_call_not_an_object_per_point() -> None:
    """A ``log_metrics`` call waits in the buffer as one Row (its keys and values, which
    the collector untracks), not as a MetricPoint per key for the collector to walk on
    every pass; a dict changed after the call changes nothing logged."""
    metrics = {f"k{index:02d}": float(index) for index in range(100)}
    with Tracker(MemoryBackend(), **QUIET) as tracker:
        tracker.log_metrics("r", metrics, step=0)  # the caches set up
        tracker.flush()
        gc.collect()
        before = len(gc.get_objects())
        for step in range(1, 1_001):
            tracker.log_metrics("r", metrics, step=step)
        metrics["k00"] = -1.0
        gc.collect()
        assert len(gc.get_objects()) - before < 2_000  # 100,000 points buffered
        assert tracker._buffer._count == 100_000
        history = tracker.history("r", "k00")
        assert [p.step for p in history] == list(range(1_001))
        assert {p.value for p in history} == {0.0}


def test_a_failed_batch_of_log_metrics_rows_goes_back_counted_by_its_points() -> None:
    """Rows of ``log_metrics`` (and a point of ``log_metric`` among them) buffered again
    after a failed write keep their order and count as their points towards the buffer's
    bounds; they arrive whole with the next flush."""

    class FailingOnce(MemoryBackend):
        failures = 1

        @hookimpl
        def log_metric(self, batch: Batch) -> None:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("once")
            super().log_metric(batch)

    tracker = Tracker(FailingOnce(), **QUIET)
    tracker.log_metrics("r", {"a": 1.0, "b": 2.0}, step=0)
    tracker.log_metric("r", "a", 3.0, step=1)
    tracker.log_metrics("r", {"a": 4.0, "b": 5.0, "c": 6.0}, step=2)
    with pytest.raises(ConnectionError, match="once"):
        tracker.flush()
    tracker._buffer.error = None
    assert tracker._buffer._count == 6
    tracker.log_metrics("r", {"c": 7.0}, step=3)
    assert tracker._buffer._count == 7
    tracker.flush()
    assert [(p.value, p.step) for p in tracker.history("r", "a")] == [(1.0, 0), (3.0, 1), (4.0, 2)]
    assert [p.value for p in tracker.history("r", "c")] == [6.0, 7.0]
    tracker.close()
