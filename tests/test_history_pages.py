"""``Tracker.iter_history``: pages from the backend's ``history_page`` hook, checked so that a
broken backend cannot loop forever or reorder a history; composed from ``history()`` for a
backend without the hook. (The contract suite checks the pages of every backend we ship.)
The facade's own ``history_sampled`` reads such a backend's pages too."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paged_backends import CountingPages, PagesOnly

from trackplug import (
    BackendError,
    MetricPoint,
    Resource,
    Tracker,
    ValidationError,
    _hooks,
    hookimpl,
)
from trackplug.plugin import (
    INT64_MAX,
    INT64_MIN,
    HistoryPage,
    MemoryBackend,
    float_bits,
    point_order,
    sample_points,
)


class NoPages(MemoryBackend):
    """A backend written before the hook: the facade pages ``history()``."""

    history_page = None  # type: ignore[assignment]


class NoSeek(CountingPages):
    """Pages, but no ``history_page_after``: the facade reads from the first page and
    skips."""

    history_page_after = None  # type: ignore[assignment]


def logged(backend: object, n: int) -> Tracker:
    tracker = Tracker(backend)
    for step in range(n):
        tracker.log_metric("r", "loss", 1.0 / (step + 1), step=step, timestamp=step)
    return tracker


def test_pages_come_from_the_hook_a_page_at_a_time() -> None:
    backend = CountingPages()
    with logged(backend, 10) as tracker:
        assert list(tracker.iter_history("r", "loss", page_size=4)) == tracker.history("r", "loss")
    assert [limit for _, limit in backend.calls] == [4, 4, 4]
    assert backend.calls[0][0] is None


def test_a_backend_without_the_hook_is_paged_by_the_facade() -> None:
    with logged(NoPages(), 7) as tracker:
        assert list(tracker.iter_history("r", "loss", page_size=3)) == tracker.history("r", "loss")


def test_a_write_between_pages_is_read_if_it_sorts_after() -> None:
    with logged(MemoryBackend(), 4) as tracker:
        points = tracker.iter_history("r", "loss", page_size=2)
        seen = [next(points), next(points)]
        tracker.log_metric("r", "loss", 9.0, step=99, timestamp=99)  # buffered: drained
        seen += list(points)
        assert [p.step for p in seen] == [0, 1, 2, 3, 99]


@pytest.mark.parametrize("size", [0, -1, 2**63, 1.5, True, "3"])
def test_a_bad_page_size_is_refused_at_the_call(size: object) -> None:
    with logged(MemoryBackend(), 1) as tracker, pytest.raises(ValidationError, match="page_size"):
        tracker.iter_history("r", "loss", page_size=size)  # type: ignore[arg-type]


class TooMany(MemoryBackend):
    @hookimpl
    def history_page(self, resource: Resource, key: str, cursor: str | None, limit: int) -> object:
        return HistoryPage(self.history(resource, key), None)


class StuckCursor(MemoryBackend):
    @hookimpl
    def history_page(self, resource: Resource, key: str, cursor: str | None, limit: int) -> object:
        return HistoryPage(self.history(resource, key)[:limit], "same")


class EmptyButMore(MemoryBackend):
    @hookimpl
    def history_page(self, resource: Resource, key: str, cursor: str | None, limit: int) -> object:
        return HistoryPage([], "more")


class GoesBack(MemoryBackend):
    @hookimpl
    def history_page(self, resource: Resource, key: str, cursor: str | None, limit: int) -> object:
        page = super().history_page(resource, key, None, limit)  # always from the start
        return HistoryPage(page.points, f"{cursor}+" if page.cursor else None)


class NotAPage(MemoryBackend):
    @hookimpl
    def history_page(self, resource: Resource, key: str, cursor: str | None, limit: int) -> object:
        return self.history(resource, key)


@pytest.mark.parametrize(
    ("backend", "error"),
    [
        (TooMany, "more than the 2 asked for"),
        (StuckCursor, "cursor to go on without a point"),
        (EmptyButMore, "cursor to go on without a point"),
        (GoesBack, "started before the previous one ended|starting before the previous"),
        (NotAPage, "returned list, expected HistoryPage"),
    ],
)
def test_a_broken_page_is_a_backend_error_not_a_loop(backend: type, error: str) -> None:
    with logged(backend(), 5) as tracker, pytest.raises(BackendError, match=error):
        list(tracker.iter_history("r", "loss", page_size=2))


def test_the_facade_samples_a_paged_history_a_page_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``history_sampled`` of a backend without the hook but with pages: bounded memory (the
    pages, and at most max_points points held), the contract's sample exactly."""
    monkeypatch.setattr(_hooks, "SAMPLE_PAGE", 64)
    backend = PagesOnly()
    values = [math.nan if step == 333 else math.sin(step / 9) for step in range(1000)]
    with Tracker(backend) as tracker, Tracker(MemoryBackend()) as reference:
        for t in (tracker, reference):
            t.log_points("r", [MetricPoint("m", v, step, 0) for step, v in enumerate(values)])
        for max_points in (4, 57, 1000, 2000):
            expected = sample_points(reference.history("r", "m"), max_points)
            got = tracker.history_sampled("r", "m", max_points)
            assert [(p.step, float_bits(p.value)) for p in got] == [
                (p.step, float_bits(p.value)) for p in expected
            ]
    assert backend.calls
    assert {limit for _, limit in backend.calls} == {64}


# -- since: reading from a point on (a live reader asks for what is new) ---------------------


def test_since_seeks_and_reads_no_point_before() -> None:
    backend = CountingPages()
    with logged(backend, 10) as tracker:
        got = list(tracker.iter_history("r", "loss", page_size=3, since=(6, 6)))
        assert [p.step for p in got] == [6, 7, 8, 9]
    assert backend.calls[0] == ((6, 5, INT64_MAX), 3), "one seek to the first point at (6, 6)"
    assert [limit for _, limit in backend.calls] == [3, 3]
    assert backend.points_read == 4, "no point before since was read"


def test_since_without_the_seek_reads_from_the_start_and_skips() -> None:
    backend = NoSeek()
    with logged(backend, 10) as tracker:
        got = list(tracker.iter_history("r", "loss", page_size=3, since=(6, 6)))
        assert [p.step for p in got] == [6, 7, 8, 9]
    assert backend.calls[0] == (None, 3)


def test_since_before_every_order_starts_at_the_first_page() -> None:
    backend = CountingPages()
    with logged(backend, 3) as tracker:
        got = tracker.iter_history("r", "loss", since=(INT64_MIN, INT64_MIN))
        assert [p.step for p in got] == [0, 1, 2]
    assert backend.calls == [(None, 10_000)], "no order precedes it: the first page"


STAMPS = st.integers(INT64_MIN, INT64_MAX) | st.integers(-3, 3)
POINTS = st.lists(
    st.builds(MetricPoint, st.just("m"), st.floats(), st.integers(-3, 3), st.integers(0, 3)),
    max_size=12,
)


# No deadline: each example opens and closes three trackers (their flusher threads), which
# a loaded shared machine can stall past 200 ms (285 ms once, 19 ms on the replay).
@settings(deadline=None)
@given(points=POINTS, since=st.tuples(STAMPS, STAMPS), size=st.integers(1, 5))
def test_since_is_the_history_from_that_point_on(
    points: list[MetricPoint], since: tuple[int, int], size: int
) -> None:
    """Whichever way the backend pages (a seek, pages from the start, no pages), the same
    points: those at or after ``since`` in history order."""
    for backend in (CountingPages(), NoSeek(), NoPages()):
        with Tracker(backend) as tracker:
            tracker.log_points("r", points)
            history = tracker.history("r", "m")
            want = [p for p in history if (p.step, p.timestamp) >= since]
            got = list(tracker.iter_history("r", "m", page_size=size, since=since))
            assert [(point_order(p), float_bits(p.value)) for p in got] == [
                (point_order(p), float_bits(p.value)) for p in want
            ], type(backend).__name__


@pytest.mark.parametrize("since", [5, (1,), (1, 2, 3), (1, 2.0), (True, 1), (2**63, 0), [1, 2]])
def test_a_bad_since_is_refused_at_the_call(since: object) -> None:
    with logged(MemoryBackend(), 1) as tracker, pytest.raises(ValidationError, match="since"):
        tracker.iter_history("r", "loss", since=since)  # type: ignore[arg-type]


class SeeksBack(MemoryBackend):
    @hookimpl
    def history_page_after(
        self, resource: Resource, key: str, after: tuple[int, int, int], limit: int
    ) -> object:
        return super().history_page(resource, key, None, limit)  # ignores after


def test_a_seek_that_does_not_follow_after_is_a_backend_error() -> None:
    with logged(SeeksBack(), 5) as tracker, pytest.raises(BackendError, match="history_page_after"):
        list(tracker.iter_history("r", "loss", since=(3, 3)))
