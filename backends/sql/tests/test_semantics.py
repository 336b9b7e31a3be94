"""The contract's semantics on every store: exact values, order, duplicates, copies, best."""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Iterator

import pytest

import trackplug
from trackplug import MetricPoint, PerfRecord, Tracker

SPECIAL = [math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, -5e-324, 1.7976931348623157e308]


def bits(value: float) -> int:
    return int(struct.unpack("<q", struct.pack("<d", value))[0])


@pytest.fixture
def tracker(url: str) -> Iterator[Tracker]:
    with trackplug.connect(url) as t:
        yield t


def test_special_values_round_trip_bit_exactly(tracker: Tracker) -> None:
    for step, value in enumerate(SPECIAL):
        tracker.log_metric("r", "x", value, step=step, timestamp=1)
    assert [bits(p.value) for p in tracker.history("r", "x")] == [bits(v) for v in SPECIAL]
    for index, value in enumerate(SPECIAL):
        tracker.log_metric("r", f"v{index}", value)
    latest = tracker.latest("r")
    assert [bits(latest[f"v{index}"]) for index in range(len(SPECIAL))] == [
        bits(v) for v in SPECIAL
    ]


def test_history_is_ordered_by_step_timestamp_value_whatever_the_arrival(tracker: Tracker) -> None:
    points = [
        MetricPoint("x", value, step, stamp)
        for step in (-(2**63), -1, 0, 7, 2**63 - 1)
        for stamp in (0, 5, 2**63 - 1)
        for value in (math.nan, -math.inf, -1.5, -0.0, 0.0, 2.5, math.inf)
    ]
    shuffled = random.Random(4).sample(points, len(points))
    tracker.log_points("r", shuffled[:40])
    for point in shuffled[40:]:
        tracker.log_metric("r", *point)
    history = tracker.history("r", "x")
    assert [(p.step, p.timestamp, bits(p.value)) for p in history] == [
        (p.step, p.timestamp, bits(p.value))
        for p in sorted(points, key=trackplug._model.point_order)
    ]


def test_latest_is_the_greatest_step_then_timestamp_then_value(tracker: Tracker) -> None:
    tracker.log_metric("r", "x", 9.0, step=1, timestamp=100)
    tracker.log_metric("r", "x", 1.0, step=2, timestamp=1)
    assert tracker.get_metric("r", "x") == 1.0
    tracker.log_metric("r", "x", 0.5, step=2, timestamp=2)
    assert tracker.get_metric("r", "x") == 0.5
    for value in (math.nan, -0.0, 0.0, -math.inf):  # same step and timestamp: value decides
        tracker.log_metric("r", "x", value, step=2, timestamp=2)
    assert tracker.get_metric("r", "x") == 0.5
    tracker.log_metric("r", "x", math.nan, step=3, timestamp=0)
    assert math.isnan(tracker.get_metric("r", "x") or 0.0)
    tracker.log_metric("r", "x", 7.0, step=0)  # an old step never moves the latest back
    assert math.isnan(tracker.latest("r")["x"])
    assert tracker.get_metric("r", "missing") is None
    assert tracker.get_metric("nobody", "x") is None


def test_negative_zero_loses_a_tie_to_zero_and_nan_to_everything(tracker: Tracker) -> None:
    tracker.log_metric("r", "x", 0.0, step=1, timestamp=1)
    tracker.log_metric("r", "x", -0.0, step=1, timestamp=1)
    value = tracker.get_metric("r", "x")
    assert value is not None
    assert bits(value) == bits(0.0)
    tracker.log_metric("r", "y", math.nan, step=1, timestamp=1)
    tracker.log_metric("r", "y", -math.inf, step=1, timestamp=1)
    assert tracker.get_metric("r", "y") == -math.inf


def test_exact_duplicates_collapse_and_replays_are_idempotent(tracker: Tracker) -> None:
    points = [MetricPoint("x", v, 1, 10) for v in (1.0, math.nan, -0.0, 0.0)]
    for _ in range(3):
        tracker.log_points("r", points)
        tracker.log_points("r", points + points)
        for point in points:
            tracker.log_metric("r", *point)
    assert len(tracker.history("r", "x")) == 4  # -0.0 and 0.0 are different values


def test_resources_and_keys_sort_by_code_point(tracker: Tracker) -> None:
    ids = ["b", "B", "a", "é", "Z", "a b", "a-b", "aa", "日本"]
    for rid in ids:
        tracker.log_metric(rid, "K", 1.0)
        tracker.log_metric(rid, "k", 2.0)
        tracker.log_metric(rid, "_", 3.0)
    assert tracker.resources() == sorted(ids)
    assert list(tracker.latest("a")) == sorted(["K", "k", "_"])


def test_best_ranks_latest_values_ties_by_id_and_skips_nan(tracker: Tracker) -> None:
    values = {"e": 0.5, "d": 0.9, "c": 0.9, "b": -0.0, "a": 0.0, "n": math.nan, "i": math.inf}
    for rid, value in values.items():
        tracker.log_metric(rid, "f1", 100.0, step=0)  # superseded: only latest values rank
        tracker.log_metric(rid, "f1", value, step=1)
    tracker.log_metric("other", "loss", 1e9)
    assert tracker.best("f1", "max", 3) == [("i", math.inf), ("c", 0.9), ("d", 0.9)]
    ranked = tracker.best("f1", "min", 10)
    assert [rid for rid, _ in ranked] == ["a", "b", "e", "c", "d", "i"]  # -0.0 == 0.0: by id
    assert bits(dict(ranked)["b"]) == bits(-0.0)
    assert tracker.best("nothing") == []


def test_perf_records_are_replaced_and_kept_exactly(tracker: Tracker) -> None:
    assert tracker.perf("r") is None
    tracker.log_metrics("r", {"train": {"f1": 0.1}, "valid": {"f1": -0.0}}, perf_metric="f1")
    perf = tracker.perf("r")
    assert perf is not None
    assert perf.metric == "f1"
    assert bits(perf.value) == bits(-0.0)
    tracker.log_metrics("r", {"acc": math.nan}, perf_metric="acc")
    perf = tracker.perf("r")
    assert perf is not None
    assert perf.metric == "acc"
    assert math.isnan(perf.value)
    assert tracker.latest("r").keys() == {"train_f1", "valid_f1", "acc"}


def test_copy_takes_full_history_and_perf_of_exactly_the_source(tracker: Tracker) -> None:
    tracker.log_points("src", [MetricPoint("val.loss", v, s, 1) for s, v in enumerate(SPECIAL)])
    tracker.log_metrics("src", {"valid": {"f1": 0.7}}, perf_metric="f1")
    tracker.log_metric("src-neighbour", "val.loss", 123.0)
    tracker.log_metric("sr", "other", 1.0)
    tracker.log_metric("dst", "own", 2.0, step=9)
    tracker.log_metric("dst", "val.loss", 42.0, step=100)  # later than anything copied
    tracker.copy_metrics("src", "dst")
    tracker.copy_metrics("src", "dst")  # twice: duplicates collapse
    copied = [p for p in tracker.history("dst", "val.loss") if p.step != 100]
    assert [(p.step, bits(p.value)) for p in copied] == [
        (p.step, bits(p.value)) for p in tracker.history("src", "val.loss")
    ]
    assert tracker.latest("dst") == {"own": 2.0, "val.loss": 42.0, "valid_f1": 0.7}
    assert tracker.perf("dst") == PerfRecord("f1", 0.7)
    assert tracker.history("dst", "other") == []
    tracker.copy_metrics("nothing", "dst")
    assert tracker.perf("dst") == PerfRecord("f1", 0.7)
    assert "nothing" not in tracker.resources()


def test_copy_moves_the_latest_value_forward_only(tracker: Tracker) -> None:
    tracker.log_metric("src", "x", 1.0, step=5)
    tracker.log_metric("dst", "x", 2.0, step=1)
    tracker.copy_metrics("src", "dst")
    assert tracker.get_metric("dst", "x") == 1.0
    assert tracker.best("x", "max", 5) == [("dst", 1.0), ("src", 1.0)]


def test_many_resources_and_keys_in_one_batch(tracker: Tracker) -> None:
    for step in range(30):
        for rid in ("r1", "r2", "r3"):
            for key in ("loss", "acc", "lr"):
                tracker.log_metric(rid, key, step * 0.5 + len(key), step=29 - step)
    assert tracker.latest("r2") == {"acc": 3.0, "loss": 4.0, "lr": 2.0}
    assert [p.step for p in tracker.history("r3", "lr")] == list(range(30))


def test_large_batches_and_large_histories(tracker: Tracker) -> None:
    points = [MetricPoint("x", i / 7, i % 1000, i) for i in range(50_000)]
    tracker.log_points("r", points)
    history = tracker.history("r", "x")
    assert len(history) == 50_000
    assert history == sorted(points, key=trackplug._model.point_order)


@pytest.mark.parametrize("size", [1, 499, 500, 501, 1234])
def test_batches_of_any_size_around_the_insert_chunk(tracker: Tracker, size: int) -> None:
    points = [MetricPoint("x", float(i), i, 1) for i in range(size)]
    tracker.log_points("r", points + points[:3])  # duplicates inside one batch collapse too
    assert tracker.history("r", "x") == points
