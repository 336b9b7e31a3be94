"""The in-memory reference backend: the semantics every other backend is judged by."""

from __future__ import annotations

import math

import pytest

from trackplug import MetricPoint, PerfRecord, Resource, Tracker
from trackplug._memory import MemoryBackend
from trackplug._model import float_bits

R, S = Resource("r"), Resource("s")


def point(value: float, step: int = 0, timestamp: int = 0, key: str = "k") -> MetricPoint:
    return MetricPoint(key, value, step, timestamp)


@pytest.fixture
def store() -> MemoryBackend:
    return MemoryBackend()


def test_latest_is_the_greatest_step_whatever_the_arrival_order(store: MemoryBackend) -> None:
    store.log_metric({R: [point(3.0, step=5), point(1.0, step=-2), point(2.0, step=4)]})
    assert store.get_metric(R, "k") == 3.0
    assert [p.step for p in store.history(R, "k")] == [-2, 4, 5]


def test_a_step_tie_goes_to_the_later_timestamp_then_the_greater_value(
    store: MemoryBackend,
) -> None:
    store.log_metric({R: [point(9.0, 1, 10), point(1.0, 1, 20)]})
    assert store.get_metric(R, "k") == 1.0
    store.log_metric({R: [point(5.0, 1, 20), point(math.nan, 1, 20)]})
    assert store.get_metric(R, "k") == 5.0  # NaN never wins a tie


def test_signed_zeros_are_different_points_and_zero_wins_their_tie(store: MemoryBackend) -> None:
    store.log_metric({R: [point(0.0), point(-0.0)]})
    assert [float_bits(p.value) for p in store.history(R, "k")] == [
        float_bits(-0.0),
        float_bits(0.0),
    ]
    latest = store.get_metric(R, "k")
    assert latest is not None
    assert float_bits(latest) == float_bits(0.0)


def test_exact_duplicates_collapse(store: MemoryBackend) -> None:
    batch = {R: [point(1.0, 1, 1), point(math.nan, 2, 2)]}
    store.log_metric(batch)
    store.log_metric(batch)
    assert len(store.history(R, "k")) == 2


def test_resources_are_isolated_and_listed_sorted(store: MemoryBackend) -> None:
    store.log_metric({S: [point(1.0)], R: [point(2.0, key="other")]})
    assert store.resources() == ["r", "s"]
    assert store.latest(R) == {"other": 2.0}
    assert store.history(S, "other") == []
    assert store.get_metric(R, "k") is None


def test_log_metrics_sets_the_perf_record_and_a_later_one_replaces_it(
    store: MemoryBackend,
) -> None:
    store.log_metrics(R, [point(0.5, key="valid_f1")], PerfRecord("f1", 0.5))
    store.log_metrics(R, [point(0.7, step=1, key="valid_f1")], PerfRecord("f1", 0.7))
    store.log_metrics(R, [point(0.1, step=2, key="x")], None)  # no record: keeps the last
    assert store.get_perf(R) == PerfRecord("f1", 0.7)


def test_best_is_the_facade_s_ranking_of_the_latest_values(store: MemoryBackend) -> None:
    # The reference leaves best to the facade: one ranking rule (trackplug._model.rank).
    store.log_metric({R: [point(0.9, step=0), point(0.1, step=1)], S: [point(0.5)]})
    with Tracker(store) as tracker:
        assert tracker.best("k", "max", 5) == [("s", 0.5), ("r", 0.1)]
        assert tracker.best("k", "min", 1) == [("r", 0.1)]
        assert tracker.best("missing", "max", 5) == []


def test_it_declares_no_deviation(store: MemoryBackend) -> None:
    caps = store.capabilities()
    assert caps == MemoryBackend.CAPABILITIES
    assert not caps.limited
    assert caps.stored(-math.inf) == -math.inf
