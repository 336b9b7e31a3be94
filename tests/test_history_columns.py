"""``Tracker.history_columns``: a history as three columns, read a page at a time, exact,
as compact arrays or (asked for) numpy arrays, numpy imported only then."""

from __future__ import annotations

import math
import subprocess
import sys
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trackplug_contract.strategies import points

import trackplug
from trackplug import MetricPoint, ValidationError
from trackplug.plugin import HistoryPage, MemoryBackend, Resource, float_bits


class CountingPages(MemoryBackend):
    """Counts the pages the facade asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.pages = 0

    @trackplug.hookimpl
    def history_page(
        self, resource: Resource, key: str, cursor: str | None, limit: int
    ) -> HistoryPage:
        self.pages += 1
        return super().history_page(resource, key, cursor, limit)


@settings(max_examples=50, deadline=None)
@given(logged=st.lists(points(st.just("m")), max_size=30), size=st.integers(1, 8))
def test_columns_are_the_history_exactly(logged: list[MetricPoint], size: int) -> None:
    with trackplug.connect("memory://") as tracker:
        tracker.log_points("r", logged)
        whole = tracker.history("r", "m")
        columns = tracker.history_columns("r", "m", page_size=size)
    assert (columns.steps.typecode, columns.timestamps.typecode) == ("q", "q")
    assert columns.values.typecode == "d"
    assert list(columns.steps) == [p.step for p in whole]
    assert list(columns.timestamps) == [p.timestamp for p in whole]
    assert list(map(float_bits, columns.values)) == [float_bits(p.value) for p in whole]


def test_numpy_columns_are_int64_int64_float64_and_exact() -> None:
    np = pytest.importorskip("numpy")
    values = [math.nan, -math.inf, math.inf, -0.0, 0.5]
    with trackplug.connect("memory://") as tracker:
        tracker.log_points("r", [MetricPoint("m", v, s, 10 + s) for s, v in enumerate(values)])
        steps, stamps, read = tracker.history_columns("r", "m", numpy=True)
    assert (steps.dtype, stamps.dtype, read.dtype) == (np.int64, np.int64, np.float64)
    assert steps.tolist() == [0, 1, 2, 3, 4]
    assert stamps.tolist() == [10, 11, 12, 13, 14]
    assert read.view(np.int64).tolist() == [float_bits(v) for v in values]


def test_columns_are_read_a_page_at_a_time() -> None:
    backend = CountingPages()
    with trackplug.Tracker(backend) as tracker:
        tracker.log_points("r", [MetricPoint("m", 0.5, s, 1) for s in range(10)])
        assert list(tracker.history_columns("r", "m", page_size=3).steps) == list(range(10))
    assert backend.pages == 4  # 10 points in pages of 3


def test_an_unknown_series_gives_empty_columns() -> None:
    with trackplug.connect("memory://") as tracker:
        columns = tracker.history_columns("r", "never")
    assert columns == (array("q"), array("q"), array("d"))


def test_a_bad_page_size_is_refused() -> None:
    with (
        trackplug.connect("memory://") as tracker,
        pytest.raises(ValidationError, match="page_size"),
    ):
        tracker.history_columns("r", "m", page_size=0)


def test_numpy_is_imported_only_when_asked_for() -> None:
    code = (
        "import sys, trackplug\n"
        "t = trackplug.connect('memory://')\n"
        "t.log_metric('r', 'm', 0.5)\n"
        "t.history_columns('r', 'm')\n"
        "assert 'numpy' not in sys.modules, 'numpy imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
