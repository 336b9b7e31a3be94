"""A tracking server's history, paged in the contract's order in bounded memory
(:mod:`trackplug_mlflow.paging`): the algorithm over every order MLflow may stream in, and
the real thing over HTTP."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trackplug_mlflow.backend import MLflowBackend
from trackplug_mlflow.paging import WHOLE, server_page

from trackplug import MetricPoint
from trackplug.plugin import Resource, point_order

#: Points unique by their order, as a server keeps them (MLflow's primary key).
histories = st.lists(
    st.builds(
        MetricPoint,
        st.just("m"),
        st.sampled_from([0.0, 1.5, -2.0, math.nan, 1e308]),
        st.integers(-3, 3),
        st.integers(0, 5),
    ),
    max_size=40,
    unique_by=point_order,
)


def streaming(points: list[MetricPoint]) -> Any:
    """MLflow's order: by timestamp, then step (the server's OFFSET pages)."""
    ordered = sorted(points, key=lambda p: (p.timestamp, p.step, repr(p.value)))

    def stream(offset: int, size: int) -> Iterator[MetricPoint]:
        assert 0 < size <= WHOLE
        yield from ordered[offset:]

    return stream


def read_all(stream: Any, limit: int) -> list[MetricPoint]:
    found, cursor = [], None
    while True:
        page = server_page(stream, cursor, limit)
        assert len(page.points) <= limit
        found += page.points
        cursor = page.cursor
        if cursor is None:
            return found


@settings(max_examples=300, deadline=None)
@given(histories, st.integers(1, 12), st.booleans())
def test_pages_are_the_history_in_the_contracts_order(
    points: list[MetricPoint], limit: int, in_time_order: bool
) -> None:
    if in_time_order:  # a training loop: steps rise with time, both orders agree
        points = [p._replace(timestamp=p.step + 10) for p in points]
        points = list({point_order(p): p for p in points}.values())
    got = read_all(streaming(points), limit)
    assert [repr(p) for p in got] == [repr(p) for p in sorted(points, key=point_order)]


def grown_between_pages(points: list[MetricPoint], limit: int, later: list[MetricPoint]) -> None:
    """The first page of ``points``, then the rest of the pages of ``points`` + ``later``:
    every page follows the one before, and every point first held is read once."""
    first = server_page(streaming(points), None, limit)
    if first.cursor is None:
        return
    grown = list({point_order(p): p for p in [*points, *later]}.values())
    rest = [*first.points]
    cursor: str | None = first.cursor
    while cursor is not None:
        page = server_page(streaming(grown), cursor, limit)
        rest += page.points
        cursor = page.cursor
    orders = [point_order(p) for p in rest]
    assert orders == sorted(orders)
    assert len(set(orders)) == len(orders)
    assert {point_order(p) for p in points} <= set(orders)


@settings(max_examples=300, deadline=None)
@given(histories, st.integers(1, 6), histories)
def test_a_history_that_grows_between_pages_still_pages_in_order(
    points: list[MetricPoint], limit: int, later: list[MetricPoint]
) -> None:
    """Points logged between two pages, at any steps and times (backfilled ones too)."""
    grown_between_pages(points, limit, later)


def test_a_point_backfilled_between_pages_never_hides_a_held_one() -> None:
    """Two points logged before the second held one in MLflow's order shift its offset; the
    page read there still follows its cursor, so only the moved last point tells."""
    points = [MetricPoint("m", 0.0, -1, 0), MetricPoint("m", 0.0, -1, 2)]
    later = [MetricPoint("m", 0.0, 0, 0), MetricPoint("m", 0.0, 0, 1)]
    grown_between_pages(points, 1, later)


@pytest.mark.parametrize("in_time_order", [True, False])
def test_a_servers_history_pages_in_order(mlflow_server: Any, in_time_order: bool) -> None:
    """Over HTTP: steps logged in time order, and out of it (training resumed at an
    earlier step), paged a few points at a time, equal the whole history."""
    backend = MLflowBackend(mlflow_server.new_url())
    steps = list(range(30)) if in_time_order else [*range(20), *range(5, 15)]
    points = [MetricPoint("loss", 1.0 / (i + 1), step, 1_000 + i) for i, step in enumerate(steps)]
    backend.log_metric({Resource("model"): points})
    whole = backend.history(Resource("model"), "loss")
    paged, cursor = [], None
    while True:
        page = backend.history_page(Resource("model"), "loss", cursor, 7)
        paged += page.points
        cursor = page.cursor
        if cursor is None:
            break
    assert paged == whole == sorted(points, key=point_order)
    backend.close()
