"""Assertions on captured metrics whose failure messages show what was logged."""

from __future__ import annotations

import contextlib
import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Literal

from .. import InvalidTypeError, MetricPoint, Tracker
from .._validation import check_step, several, short_repr, to_resource

__all__ = ["MetricAssertions"]

#: Points of a history shown in a message: the first and last few.
SHOWN_POINTS = 6


class MetricAssertions(ABC):
    """``assert_*`` helpers over a store read through a :class:`~trackplug.Tracker`.

    Each raises ``AssertionError`` with what was logged (values and steps), so a failing
    test says why without a debugger: ``expected valid_f1 ≥ 0.8 for resource `sgd-1`,
    logged: 0.71 at step 9``.
    """

    @abstractmethod
    def _tracker(self) -> Tracker:
        """The tracker that reads the store, up to date."""

    @property
    @abstractmethod
    def connections(self) -> list[list[str]]:
        """The URLs of every ``connect()`` seen (for messages when nothing was logged)."""

    def assert_latest(
        self,
        resource: object,
        key: str,
        expected: object = None,
        *,
        at_least: float | None = None,
        at_most: float | None = None,
    ) -> float:
        """The latest value of ``key`` for ``resource``, asserted to equal ``expected``
        (``==``: pass ``pytest.approx(0.9)`` for a tolerance; NaN equals NaN), to be
        ``≥ at_least`` and ``≤ at_most``, each when given. Returns it."""
        __tracebackhide__ = True  # pytest shows the test's line, not this one
        at_least, at_most = _bound("at_least", at_least), _bound("at_most", at_most)
        rid, points = self._points(resource, key)
        last = points[-1]  # history's order ends with the latest point
        failed = [
            f"{op} {_number(bound)}"
            for op, bound, ok in (
                ("==", expected, expected is None or _equal(last.value, expected)),
                ("≥", at_least, at_least is None or last.value >= at_least),
                ("≤", at_most, at_most is None or last.value <= at_most),
            )
            if not ok
        ]
        if failed:
            raise AssertionError(
                f"expected {key} {' and '.join(failed)} for resource `{rid}`, "
                f"logged: {_point(last)}{_history(key, points)}"
            )
        return last.value

    def assert_logged(
        self, resource: object, key: str, *, steps: Iterable[int] | None = None
    ) -> list[MetricPoint]:
        """Assert that ``key`` was logged for ``resource`` — at exactly ``steps`` (an
        iterable of integers, or one), when given (each step once or more). Returns its
        history."""
        __tracebackhide__ = True  # pytest shows the test's line, not this one
        wanted = None if steps is None else _steps_of(key, steps)
        rid, points = self._points(resource, key)
        if wanted is not None:
            expected, logged = wanted, {point.step for point in points}
            if expected != logged:
                raise AssertionError(
                    f"expected {key} for resource `{rid}` at steps {_steps(expected)}, "
                    f"logged at steps {_steps(logged)} (missing: {_steps(expected - logged)}, "
                    f"not expected: {_steps(logged - expected)})"
                )
        return points

    def assert_best(
        self, key: str, resource: object, *, order: Literal["max", "min"] = "max"
    ) -> None:
        """Assert that ``resource`` ranks first by the latest value of ``key`` (``best``)."""
        __tracebackhide__ = True  # pytest shows the test's line, not this one
        rid = to_resource(resource).id
        tracker = self._tracker()
        ranking = tracker.best(key, order, limit=max(1, len(tracker.resources())))
        if not ranking or ranking[0][0] != rid:
            ranked = ", ".join(f"`{r}` {_number(v)}" for r, v in ranking) or "nothing"
            raise AssertionError(
                f"expected `{rid}` to have the {'highest' if order == 'max' else 'lowest'} "
                f"{key}, ranking: {ranked}{self._unranked(tracker, key, ranking)}"
            )

    def assert_nothing_logged(self) -> None:
        """Assert that no metric at all was logged."""
        __tracebackhide__ = True  # pytest shows the test's line, not this one
        if self._tracker().resources():
            raise AssertionError(f"expected no metrics, logged:\n{self.summary()}")

    def summary(self) -> str:
        """Everything logged, a line per resource: each key's latest value and step."""
        tracker = self._tracker()
        lines = [f"`{rid}`: {self._keys_of(tracker, rid)}" for rid in tracker.resources()]
        return "\n".join(lines) or self._nothing()

    # -- messages -------------------------------------------------------------------------

    def _points(self, resource: object, key: str) -> tuple[str, list[MetricPoint]]:
        """``resource``'s id and the history of ``key``, or an error saying what there is."""
        __tracebackhide__ = True  # pytest shows the test's line, not this one
        rid = to_resource(resource).id
        tracker = self._tracker()
        points = tracker.history(resource, key)
        if points:
            return rid, points
        if tracker.latest(resource):
            raise AssertionError(
                f"no metric {key} for resource `{rid}`; it has: {self._keys_of(tracker, rid)}"
            )
        known = ", ".join(f"`{r}`" for r in tracker.resources())
        where = f"resources with metrics: {known}" if known else self._nothing()
        raise AssertionError(f"nothing was logged for resource `{rid}`; {where}")

    @staticmethod
    def _keys_of(tracker: Tracker, rid: str) -> str:
        parts = []
        for key in tracker.latest(rid):
            points = tracker.history(rid, key)
            parts.append(f"{key} = {_point(points[-1])} ({_count(len(points))})")
        return "; ".join(parts)

    @staticmethod
    def _unranked(tracker: Tracker, key: str, ranking: Sequence[tuple[str, float]]) -> str:
        ranked = {rid for rid, _ in ranking}
        others = [f"`{rid}`" for rid in tracker.resources() if rid not in ranked]
        return f" (not ranked, without a {key} or with NaN: {', '.join(others)})" if others else ""

    def _nothing(self) -> str:
        connections = self.connections
        if not connections:
            return "no metrics at all, and no tracker was opened while capturing"
        urls = ", ".join(" + ".join(urls) for urls in connections)
        return f"no metrics at all from the trackers opened on: {urls}"


def _bound(name: str, bound: float | None) -> float | None:
    """``at_least`` or ``at_most``: None, or a real number (not bool)."""
    if bound is None or (isinstance(bound, numbers.Real) and not isinstance(bound, bool)):
        return bound
    raise InvalidTypeError(
        f"{name} {short_repr(bound)} of type {type(bound).__name__} is invalid: give a number"
    )


def _steps_of(key: str, steps: object) -> set[int]:
    """``steps``: an iterable of integers (numpy's too), each checked as a logged step is."""
    return {check_step(key, step) for step in several(steps, "steps", "an iterable of steps")}


def _number(value: object) -> str:
    if isinstance(value, int | float):
        with contextlib.suppress(OverflowError):  # an int of 400 digits
            return repr(float(value))
    return short_repr(value)


def _point(point: MetricPoint) -> str:
    return f"{_number(point.value)} at step {point.step}"


def _count(n: int) -> str:
    return f"{n} point" if n == 1 else f"{n} points"


def _history(key: str, points: Sequence[MetricPoint]) -> str:
    """``; history of key (n points): 0.5 at step 0, …`` when there is more than one."""
    if len(points) < 2:
        return ""
    half = SHOWN_POINTS // 2
    shown = [_point(p) for p in points]
    if len(points) > SHOWN_POINTS:
        shown = [*shown[:half], "…", *shown[-half:]]
    return f"; history of {key} ({_count(len(points))}): {', '.join(shown)}"


def _steps(steps: set[int]) -> str:
    """``[0..9, 12, 15..20]``: runs of three or more consecutive steps as ranges."""
    runs: list[list[int]] = []
    for step in sorted(steps):
        if runs and step == runs[-1][-1] + 1:
            runs[-1].append(step)
        else:
            runs.append([step])
    parts = [f"{run[0]}..{run[-1]}" if len(run) >= 3 else ", ".join(map(str, run)) for run in runs]
    return "[" + ", ".join(parts) + "]"


def _equal(value: float, expected: object) -> bool:
    if isinstance(expected, float) and math.isnan(expected):
        return math.isnan(value)
    try:
        return bool(value == expected)
    except (TypeError, ValueError, ArithmeticError):  # an array of several: no one truth
        raise InvalidTypeError(
            f"expected {short_repr(expected)} of type {type(expected).__name__} cannot be "
            "compared with a metric: give a number or pytest.approx(number)"
        ) from None
