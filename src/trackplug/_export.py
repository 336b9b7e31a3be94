"""The tables a store exports (``trackplug export``, ``Tracker.frame``): tidy rows, streamed.

Three tables, which join on the resource id (a run's resource is its run id):

- ``metrics``: one row per point, ``resource, run, key, step, timestamp, value`` (``run``
  is the run's name when the resource is a run, else None; ``timestamp`` in ms since the
  epoch), resources sorted, then keys sorted, then each history in its order. Histories
  are read with ``Tracker.iter_history``, a page at a time, so a table of millions of
  points never sits in memory.
- ``runs``: one row per run, oldest first: ``run_id, name, status, start, end, params,
  tags`` (``start``/``end`` in ms, ``end`` None while running; ``params`` and ``tags`` are
  the run's, as dicts).
- ``params``: one row per param or user tag of every resource that has metrics or is a
  run: ``resource, kind ("param" or "tag"), key, value`` (a param keeps its type).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Literal, NamedTuple

from ._errors import UnsupportedOperationError
from ._model import ParamValue

if TYPE_CHECKING:  # the tracker imports this module when it exports
    from ._runs import RunInfo
    from ._tracker import Tracker

__all__ = [
    "METRIC_COLUMNS",
    "PARAM_COLUMNS",
    "RUN_COLUMNS",
    "KeyFilter",
    "MetricRow",
    "ParamRow",
    "RunRow",
    "TableName",
    "metric_rows",
    "param_rows",
    "run_rows",
]

TableName = Literal["metrics", "runs", "params"]
#: Which keys to export: ``None`` for all, else a test of each key.
KeyFilter = Callable[[str], bool] | None


class MetricRow(NamedTuple):
    """One point of the ``metrics`` table."""

    resource: str
    run: str | None
    key: str
    step: int
    timestamp: int
    value: float


class RunRow(NamedTuple):
    """One run of the ``runs`` table."""

    run_id: str
    name: str
    status: str
    start: int
    end: int | None
    params: dict[str, ParamValue]
    tags: dict[str, str]


class ParamRow(NamedTuple):
    """One param or tag of the ``params`` table."""

    resource: str
    kind: Literal["param", "tag"]
    key: str
    value: ParamValue


METRIC_COLUMNS = MetricRow._fields
RUN_COLUMNS = RunRow._fields
PARAM_COLUMNS = ParamRow._fields


def metric_rows(
    tracker: Tracker,
    resources: list[str] | None = None,
    keys: KeyFilter = None,
    *,
    page_size: int = 10_000,
) -> Iterator[MetricRow]:
    """Every point of ``resources`` (default: all) whose key passes ``keys``, a page of a
    history at a time."""
    names = {run.id: run.name for run in _runs(tracker)}
    for resource in sorted(tracker.resources() if resources is None else resources):
        run = names.get(resource)
        for key in tracker.latest(resource):
            if keys is not None and not keys(key):
                continue
            for point in tracker.iter_history(resource, key, page_size=page_size):
                yield MetricRow(resource, run, key, point.step, point.timestamp, point.value)


def run_rows(tracker: Tracker) -> Iterator[RunRow]:
    """Every run, oldest first."""
    for run in _runs(tracker):
        yield RunRow(run.id, run.name, run.status, run.start, run.end, run.params, run.tags)


def param_rows(tracker: Tracker, resources: list[str] | None = None) -> Iterator[ParamRow]:
    """The params, then the user tags, of ``resources`` (default: every resource with
    metrics and every run), by resource; none on a backend without params."""
    chosen = resources if resources is not None else {*tracker.resources(), *tracker._run_ids()}
    for resource in sorted(chosen):
        try:
            held, tags = tracker.params(resource), tracker.tags(resource)
        except UnsupportedOperationError:
            return
        for key, value in held.items():
            yield ParamRow(resource, "param", key, value)
        for key, text in tags.items():
            yield ParamRow(resource, "tag", key, text)


def _runs(tracker: Tracker) -> list[RunInfo]:
    """Every run; none on a backend without params and tags (it has no runs)."""
    try:
        return tracker.runs()
    except UnsupportedOperationError:
        return []
