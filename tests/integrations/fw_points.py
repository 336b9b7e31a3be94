"""Comparing what a framework reported with what the store holds (the adapters' tests)."""

from __future__ import annotations

import trackplug

#: ``(key, step, value)``: a metric as a framework reports it and as the store holds it.
Point = tuple[str, int, float]


def stored_points(tracker: trackplug.Tracker, run_id: str) -> list[Point]:
    """Every point of every key of a run."""
    return [
        (key, point.step, point.value)
        for key in tracker.latest(run_id)
        for point in tracker.history(run_id, key)
    ]


def assert_same_points(stored: list[Point], reported: list[Point]) -> None:
    """The same points; a point reported twice (Lightning's ``epoch`` with the train and the
    validation metrics of one step) is one point where both landed in the same millisecond
    (exact duplicates collapse: docs/semantics.md)."""
    assert sorted(set(stored)) == sorted(set(reported))
    assert len(set(reported)) <= len(stored) <= len(reported)
