"""The batch the facade hands to ``log_metric``: a mapping grouped by resource in arrival
order, and the same points as columns (``trackplug._batch``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from trackplug_contract.batches import Call, batch_calls, grouped, log, points_of

from trackplug import MetricPoint, Resource, Tracker, connect
from trackplug._batch import BatchColumns, ColumnBatch
from trackplug._memory import MemoryBackend
from trackplug._model import Batch
from trackplug.plugin import batch_columns, float_bits
from trackplug.spec import hookimpl

QUIET = {"flush_interval": 3600.0, "buffer_size": 1_000_000, "max_buffer": 1_000_000}


class Keeping(MemoryBackend):
    """Keeps every batch it is given; fails while ``failing``."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[Batch] = []
        self.failing = False

    @hookimpl
    def log_metric(self, batch: Batch) -> None:
        if self.failing:
            raise ConnectionError("store is down")
        self.batches.append(batch)
        super().log_metric(batch)


def exact(batch: Mapping[Resource, Sequence[MetricPoint]]) -> list[tuple[str, list[Any]]]:
    """A batch with its values as bits (NaN equal to NaN), its order kept."""
    return [
        (r.id, [(p.key, float_bits(p.value), p.step, p.timestamp) for p in points])
        for r, points in batch.items()
    ]


def exact_columns(columns: BatchColumns) -> list[tuple[str, str, int, int, int]]:
    rids, keys, values, steps, stamps = columns
    return list(zip(rids, keys, map(float_bits, values), steps, stamps, strict=True))


@settings(max_examples=150, deadline=None)
@given(calls=batch_calls())
def test_the_batch_groups_by_resource_in_arrival_order_and_its_columns_agree(
    calls: list[Call],
) -> None:
    """Points of ``log_metric`` and rows of ``log_metrics`` (lone points, several resources,
    duplicates) reach the backend as one batch: as a mapping, exactly the plain grouping;
    as columns, every point in arrival order; a plain dict's columns are its points'."""
    backend = Keeping()
    with Tracker(backend, **QUIET) as tracker:
        log(tracker, calls)
        tracker.flush()
        want = grouped(points_of(calls))
        if not want:
            assert backend.batches == []
            return
        (batch,) = backend.batches
        assert type(batch) is ColumnBatch
        assert exact(batch) == exact(want)
        assert len(batch) == len(want)
        assert list(batch) == list(want)
        arrival = [
            (rid, p.key, float_bits(p.value), p.step, p.timestamp) for rid, p in points_of(calls)
        ]
        assert exact_columns(batch.columns()) == arrival
        assert exact_columns(batch_columns(want)) == sorted(
            arrival, key=lambda p: list(want).index(Resource(p[0]))
        )


@pytest.mark.parametrize("url", ["memory://", "sqlite://"])
def test_the_backends_we_ship_write_the_columns_without_building_points(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The memory and SQL backends read a batch's columns: its mapping (a Resource, a list
    and a MetricPoint per point) is never built."""

    def refused(self: ColumnBatch) -> None:
        raise AssertionError("the batch was read as a mapping")

    monkeypatch.setattr(ColumnBatch, "_grouped", refused)
    with connect(url, **QUIET) as tracker:
        tracker.log_metric("a", "loss", 0.5, step=1)
        tracker.log_metrics("b", {"loss": 0.25, "acc": 0.75}, step=2)
        for index in range(3):
            tracker.log_metric(f"lone-{index}", "loss", float(index))
        tracker.flush()
        assert tracker.latest("b") == {"loss": 0.25, "acc": 0.75}
        assert tracker.get_metric("lone-2", "loss") == 2.0


def test_a_failed_batch_goes_back_in_front_counted_by_points() -> None:
    """After a failed write the batch's entries lead the buffer again, counted by points
    (a row counts its keys), and the next write delivers them first, in arrival order."""
    backend = Keeping()
    with Tracker(backend, **QUIET) as tracker:
        tracker.log_metric("a", "loss", 1.0, step=1, timestamp=5)
        tracker.log_metrics("b", {"x": 1.0, "y": 2.0}, step=1, timestamp=5)
        backend.failing = True
        with pytest.raises(ConnectionError):
            tracker.flush()
        backend.failing = False
        assert tracker._buffer._count == 3
        tracker.log_metric("a", "loss", 2.0, step=2, timestamp=5)
        assert tracker._buffer._count == 4
        tracker.flush()
        (batch,) = backend.batches
        assert exact_columns(batch.columns()) == [  # type: ignore[attr-defined]
            ("a", "loss", float_bits(1.0), 1, 5),
            ("b", "x", float_bits(1.0), 1, 5),
            ("b", "y", float_bits(2.0), 1, 5),
            ("a", "loss", float_bits(2.0), 2, 5),
        ]
        assert [len(points) for points in batch.values()] == [2, 2]
