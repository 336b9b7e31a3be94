"""After ``copy_metrics``, the target's performance record and ``get_metric`` agree.

The rule (docs/semantics.md, ``copy_metrics``): the target takes the source's perf metric,
valued at the target's latest value of it after the copy (``valid_<m>``, else ``train_<m>``,
else ``<m>``, as ``log_metrics`` looks). It is the facade's, so it holds for a backend that
copies natively (SQL: one ``INSERT … SELECT``) as for one whose copy is composed (memory).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

import trackplug
from trackplug import PerfRecord


@pytest.fixture(params=["memory", "sqlite"])
def tracker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[trackplug.Tracker]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'runs.db'}"
    with trackplug.connect(url) as t:
        yield t


def test_newer_target_points_value_the_record(tracker: trackplug.Tracker) -> None:
    tracker.log_metric("model", "valid_f1", 0.9, step=1)  # newer than anything copied
    tracker.log_metrics("exp", {"train": {"f1": 0.7}, "valid": {"f1": 0.8}}, "f1")
    tracker.copy_metrics("exp", "model")
    assert tracker.get_metric("model", "valid_f1") == 0.9
    assert tracker.perf("model") == PerfRecord("f1", 0.9)
    assert [p.value for p in tracker.history("model", "valid_f1")] == [0.8, 0.9]
    assert tracker.perf("exp") == PerfRecord("f1", 0.8)  # the source is left as it was


def test_an_empty_or_older_target_takes_the_source_record(tracker: trackplug.Tracker) -> None:
    tracker.log_metric("model", "valid_f1", 0.1, timestamp=1)  # older than exp's point
    tracker.log_metrics("exp", {"valid": {"f1": 0.8}}, "f1", timestamp=5)
    tracker.copy_metrics("exp", "fresh")
    tracker.copy_metrics("exp", "model")
    assert tracker.perf("fresh") == tracker.perf("model") == PerfRecord("f1", 0.8)
    assert tracker.get_metric("model", "valid_f1") == 0.8


def test_the_record_follows_log_metrics_order_of_keys(tracker: trackplug.Tracker) -> None:
    """The source ranked by train_f1 (it had no valid split); the target has a valid_f1: the
    record is valued by it, as log_metrics would value the target's metrics."""
    tracker.log_metric("model", "valid_f1", math.nan)
    tracker.log_metrics("exp", {"train": {"f1": 0.7}}, "f1")
    tracker.copy_metrics("exp", "model")
    record = tracker.perf("model")
    assert record is not None
    assert record.metric == "f1"
    assert math.isnan(record.value)


def test_a_source_without_a_record_leaves_the_target_record(tracker: trackplug.Tracker) -> None:
    tracker.log_metrics("model", {"valid": {"f1": 0.5}}, "f1")
    tracker.log_metric("model", "valid_f1", 0.6, step=1)
    tracker.log_metric("exp", "loss", 0.3)
    tracker.copy_metrics("exp", "model")
    assert tracker.perf("model") == PerfRecord("f1", 0.5)  # set by log_metrics, kept as set
