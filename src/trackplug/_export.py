"""The tables a store exports (``trackplug export``, ``Tracker.frame``): tidy rows, streamed.

Three tables, which join on the resource id (a run's resource is its run id):

- ``metrics``: one row per point, ``resource, run, key, step, timestamp, value`` (``run``
  is the run's name when the resource is a run, else None; ``timestamp`` in ms since the
  epoch), resources sorted, then keys sorted, then each history in its order. Histories
  are read as columns (the pages of ``Tracker.history_columns``), a page at a time, so a
  table of millions of points never sits in memory and no object is built per point
  unless a row is asked for (:func:`metric_rows`); :func:`metric_pages` gives the pages.
- ``runs``: one row per run, oldest first: ``run_id, name, status, start, end, params,
  tags`` (``start``/``end`` in ms, ``end`` None while running; ``params`` and ``tags`` are
  the run's, as dicts).
- ``params``: one row per param or user tag of every resource that has metrics or is a
  run: ``resource, kind ("param" or "tag"), key, value`` (a param keeps its type).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator
from itertools import repeat, starmap
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

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
    "MetricPage",
    "MetricRow",
    "ParamRow",
    "RunRow",
    "TableName",
    "frame_of",
    "metric_pages",
    "metric_rows",
    "page_rows",
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


class MetricPage(NamedTuple):
    """A page of one history as columns: the points of its rows of the ``metrics`` table."""

    resource: str
    run: str | None
    key: str
    steps: array[int]
    timestamps: array[int]
    values: array[float]


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


def metric_pages(
    tracker: Tracker,
    resources: list[str] | None = None,
    keys: KeyFilter = None,
    *,
    page_size: int = 10_000,
) -> Iterator[MetricPage]:
    """Every point of ``resources`` (default: all) whose key passes ``keys``, as pages of
    columns of at most ``page_size`` points, in the table's order."""
    names = {run.id: run.name for run in _runs(tracker)}
    for resource in sorted(tracker.resources() if resources is None else resources):
        run = names.get(resource)
        for key in tracker.latest(resource):
            if keys is not None and not keys(key):
                continue
            for steps, stamps, values in tracker._column_pages(resource, key, page_size):
                yield MetricPage(resource, run, key, steps, stamps, values)


def page_rows(page: MetricPage) -> Iterator[tuple[str, str | None, str, int, int, float]]:
    """A page's rows, as plain tuples."""
    named = repeat(page.resource), repeat(page.run), repeat(page.key)
    return zip(*named, page.steps, page.timestamps, page.values, strict=False)  # names repeat


def metric_rows(
    tracker: Tracker,
    resources: list[str] | None = None,
    keys: KeyFilter = None,
    *,
    page_size: int = 10_000,
) -> Iterator[MetricRow]:
    """The rows of :func:`metric_pages`, one at a time."""
    for page in metric_pages(tracker, resources, keys, page_size=page_size):
        yield from starmap(MetricRow, page_rows(page))


def frame_of(pd: Any, tracker: Tracker, resources: list[str] | None, keys: KeyFilter) -> Any:
    """:func:`metric_pages` as a pandas DataFrame (``Tracker.frame``): the numeric columns
    gathered into one array each, the names repeated per page (``np.repeat``), so no
    object is built per point; resource, run and key stay object columns."""
    import numpy as np

    steps, stamps, values = array("q"), array("q"), array("d")
    named: list[tuple[str, str | None, str]] = []
    sizes: list[int] = []
    for page in metric_pages(tracker, resources, keys):
        steps.extend(page.steps)
        stamps.extend(page.timestamps)
        values.extend(page.values)
        named.append(page[:3])
        sizes.append(len(page.steps))
    names = [
        np.repeat(np.array(column, dtype=object), sizes) for column in zip(*named, strict=True)
    ]
    if not named:
        names = [np.empty(0, dtype=object)] * 3
    numbers = [
        np.frombuffer(column, dtype=kind)
        for column, kind in ((steps, np.int64), (stamps, np.int64), (values, np.float64))
    ]
    data = {
        name: pd.Series(column, dtype=column.dtype, copy=False)
        for name, column in zip(METRIC_COLUMNS, [*names, *numbers], strict=True)
    }
    return pd.DataFrame(data)


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
