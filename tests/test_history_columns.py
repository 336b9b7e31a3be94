"""``Tracker.history_columns``: a history as three columns, read a page at a time, exact,
as compact arrays or (asked for) numpy arrays, numpy imported only then; from the backend's
``history_columns_page`` hook where it has one (checked so that a broken backend cannot
loop forever or reorder a history), else from its pages of points."""

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
from trackplug import BackendError, MetricPoint, ValidationError
from trackplug.plugin import ColumnsPage, MemoryBackend, Resource, float_bits


class CountingPages(MemoryBackend):
    """Counts the pages of columns the facade asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.pages = 0

    @trackplug.hookimpl
    def history_columns_page(
        self, resource: Resource, key: str, cursor: str | None, limit: int
    ) -> ColumnsPage:
        self.pages += 1
        return super().history_columns_page(resource, key, cursor, limit)


class PointPagesOnly(MemoryBackend):
    """A backend written before the columns hook: the facade reads its pages of points."""

    history_columns_page = None  # type: ignore[assignment]


class HistoryOnly(PointPagesOnly):
    """A backend with neither paging hook: the facade pages ``history()``."""

    history_page = None  # type: ignore[assignment]


BACKENDS = [MemoryBackend, PointPagesOnly, HistoryOnly]


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.__name__)
@settings(max_examples=50, deadline=None)
@given(logged=st.lists(points(st.just("m")), max_size=30), size=st.integers(1, 8))
def test_columns_are_the_history_exactly(
    backend: type[MemoryBackend], logged: list[MetricPoint], size: int
) -> None:
    with trackplug.Tracker(backend()) as tracker:
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


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.__name__)
def test_an_unknown_series_gives_empty_columns(backend: type[MemoryBackend]) -> None:
    with trackplug.Tracker(backend()) as tracker:
        tracker.log_metric("r", "m", 0.5)
        for resource, key in (("r", "never"), ("never", "m")):
            columns = tracker.history_columns(resource, key)
            assert columns == (array("q"), array("q"), array("d"))
            assert [c.typecode for c in columns] == ["q", "q", "d"]


def test_a_write_between_pages_is_read_if_it_sorts_after() -> None:
    """Read-your-writes page by page: the buffer is drained after each page (a write by
    another thread while the columns are read, here made within the backend's read)."""

    class WritesWhileRead(MemoryBackend):
        tracker: trackplug.Tracker

        @trackplug.hookimpl
        def history_columns_page(
            self, resource: Resource, key: str, cursor: str | None, limit: int
        ) -> ColumnsPage:
            if cursor is None:
                self.tracker.log_metric("r", "m", 9.0, step=99, timestamp=99)  # buffered
            return super().history_columns_page(resource, key, cursor, limit)

    backend = WritesWhileRead()
    with trackplug.Tracker(backend) as tracker:
        backend.tracker = tracker
        tracker.log_points("r", [MetricPoint("m", 0.5, s, 1) for s in range(4)])
        assert list(tracker.history_columns("r", "m", page_size=2).steps) == [0, 1, 2, 3, 99]


def _columns(backend: MemoryBackend, resource: Resource, key: str) -> ColumnsPage:
    return MemoryBackend.history_columns_page(backend, resource, key, None, 100)


class TooMany(MemoryBackend):
    @trackplug.hookimpl
    def history_columns_page(
        self, resource: Resource, key: str, cursor: object, limit: int
    ) -> object:
        return _columns(self, resource, key)


class StuckCursor(MemoryBackend):
    @trackplug.hookimpl
    def history_columns_page(
        self, resource: Resource, key: str, cursor: object, limit: int
    ) -> object:
        steps, stamps, values, _ = _columns(self, resource, key)
        return ColumnsPage(steps[:limit], stamps[:limit], values[:limit], "same")


class EmptyButMore(MemoryBackend):
    @trackplug.hookimpl
    def history_columns_page(
        self, resource: Resource, key: str, cursor: object, limit: int
    ) -> object:
        return ColumnsPage(array("q"), array("q"), array("d"), "more")


class GoesBack(MemoryBackend):
    @trackplug.hookimpl
    def history_columns_page(
        self, resource: Resource, key: str, cursor: object, limit: int
    ) -> object:
        page = super().history_columns_page(resource, key, None, limit)  # always the first
        return page._replace(cursor=f"{cursor}+" if page.cursor else None)


class ValueMissing(MemoryBackend):
    @trackplug.hookimpl
    def history_columns_page(
        self, resource: Resource, key: str, cursor: object, limit: int
    ) -> object:
        page = super().history_columns_page(resource, key, cursor, limit)
        return page._replace(values=page.values[1:])


class ValuesAsText(MemoryBackend):
    @trackplug.hookimpl
    def history_columns_page(
        self, resource: Resource, key: str, cursor: object, limit: int
    ) -> object:
        page = super().history_columns_page(resource, key, cursor, limit)
        return page._replace(values=[str(v) for v in page.values])


class NotAPage(MemoryBackend):
    @trackplug.hookimpl
    def history_columns_page(
        self, resource: Resource, key: str, cursor: object, limit: int
    ) -> object:
        return tuple(_columns(self, resource, key))


class CursorNotText(MemoryBackend):
    @trackplug.hookimpl
    def history_columns_page(
        self, resource: Resource, key: str, cursor: object, limit: int
    ) -> object:
        return super().history_columns_page(resource, key, cursor, limit)._replace(cursor=3)


@pytest.mark.parametrize(
    ("backend", "error"),
    [
        (TooMany, "5 points, more than the 2 asked for"),
        (StuckCursor, "cursor to go on without a point"),
        (EmptyButMore, "cursor to go on without a point"),
        (GoesBack, "starting before the previous one ended"),
        (ValueMissing, r"different lengths \(2 steps, 2 timestamps, 1 values\)"),
        (ValuesAsText, "not .* of signed 64-bit integers and floats"),
        (NotAPage, "tuple, expected ColumnsPage"),
        (CursorNotText, "not \\(steps, timestamps, values, cursor or None\\)"),
    ],
)
def test_a_broken_page_of_columns_is_a_backend_error_not_a_loop(backend: type, error: str) -> None:
    with trackplug.Tracker(backend()) as tracker:
        tracker.log_points("r", [MetricPoint("m", 0.5, s, 1) for s in range(5)])
        with pytest.raises(BackendError, match=f"history_columns_page returned .*{error}"):
            tracker.history_columns("r", "m", page_size=2)


def test_columns_of_any_sequences_are_taken() -> None:
    """A page of lists (or tuples) is copied into arrays of the column types."""

    class Lists(MemoryBackend):
        @trackplug.hookimpl
        def history_columns_page(
            self, resource: Resource, key: str, cursor: str | None, limit: int
        ) -> ColumnsPage:
            page = super().history_columns_page(resource, key, cursor, limit)
            return ColumnsPage(
                list(page.steps), tuple(page.timestamps), list(page.values), page.cursor
            )

    with trackplug.Tracker(Lists()) as tracker:
        tracker.log_points("r", [MetricPoint("m", -0.0, s, 1) for s in range(3)])
        columns = tracker.history_columns("r", "m", page_size=2)
    assert [c.typecode for c in columns] == ["q", "q", "d"]
    assert list(map(float_bits, columns.values)) == [float_bits(-0.0)] * 3


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
