"""The batch the ``log_metric`` hook receives from the tracker's buffer: a
:data:`~trackplug.plugin.Batch` (points grouped by resource, in arrival order) that also
offers its points as columns, so a backend that writes columns never has them built.

The buffer keeps what was logged as flat entries (a point of ``log_metric`` as a plain
``(resource id, key, value, step, timestamp)`` tuple, a ``log_metrics`` call as one
:class:`Row`). A SQL backend transposes them into columns in C; building a
:class:`Resource`, a list and a :class:`MetricPoint` per point for it to unzip again cost
~1.4 µs of each point logged into a new resource (docs/performance.md, "A batch as
columns"). A backend that iterates the batch as a mapping gets the points grouped then,
once, by :meth:`ColumnBatch._grouped`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from itertools import chain, repeat
from typing import NamedTuple

from ._model import Batch, MetricPoint, Resource

__all__ = ["BatchColumns", "ColumnBatch", "PointEntry", "Row", "batch_columns"]

#: One point of ``log_metric`` as the buffer holds it: ``(resource id, key, value, step,
#: timestamp)``, a plain tuple of a string and numbers that the collector untracks.
PointEntry = tuple[str, str, float, int, int]


class Row(NamedTuple):
    """The points of one ``log_metrics`` call, as the buffer holds them: its keys and
    values, at one step and timestamp. One entry per call, not a point per key: building a
    MetricPoint per key cost the caller 0.28 µs a point, most of it collections walking the
    buffered points (each a tuple subclass the collector never untracks)."""

    resource: str
    keys: tuple[str, ...]
    values: tuple[float, ...]
    step: int
    timestamp: int


Entry = PointEntry | Row


class BatchColumns(NamedTuple):
    """A batch's points as five columns of equal length, in arrival order: point ``i`` is
    ``keys[i]`` of the resource ``resources[i]`` (an id) at ``steps[i]`` and
    ``timestamps[i]`` with ``values[i]``. The order of points within each resource is the
    batch's; points of different resources may interleave (``log_metric`` into several)."""

    resources: Sequence[str]
    keys: Sequence[str]
    values: Sequence[float]
    steps: Sequence[int]
    timestamps: Sequence[int]


_EMPTY = BatchColumns((), (), (), (), ())


class ColumnBatch(Mapping[Resource, Sequence[MetricPoint]]):
    """Buffered entries as a :data:`~trackplug.plugin.Batch`: a read-only mapping of each
    resource to its points in arrival order, built the first time it is read as one, and
    :meth:`columns`, built without a point object. The two views hold the same points.

    :param entries: points (:data:`PointEntry`) and rows (:class:`Row`), in arrival order.
    :param rows: whether any entry is a Row (else the columns are one transpose, in C).
    """

    __slots__ = ("_columns", "_entries", "_groups", "_rows")

    def __init__(self, entries: Sequence[Entry], rows: bool) -> None:
        self._entries = entries
        self._rows = rows
        self._columns: BatchColumns | None = None
        self._groups: dict[Resource, tuple[MetricPoint, ...]] | None = None

    def columns(self) -> BatchColumns:
        """The points as columns, in arrival order (computed once)."""
        if self._columns is None:
            self._columns = _transpose(self._entries, self._rows)
        return self._columns

    def __getitem__(self, resource: Resource) -> Sequence[MetricPoint]:
        return self._grouped()[resource]

    def __iter__(self) -> Iterator[Resource]:
        return iter(self._grouped())

    def __len__(self) -> int:
        return len(self._grouped())

    def __repr__(self) -> str:
        return f"ColumnBatch({self._grouped()!r})"

    def _grouped(self) -> dict[Resource, tuple[MetricPoint, ...]]:
        """The points by resource, in arrival order (built once, from the columns)."""
        if self._groups is None:
            self._groups = _group(self.columns())
        return self._groups


def batch_columns(batch: Batch) -> BatchColumns:
    """The points of any batch as columns: a :class:`ColumnBatch`'s own, or a plain
    mapping's (a dict a test or another caller built) unzipped, in its order."""
    if isinstance(batch, ColumnBatch):
        return batch.columns()
    rids: list[str] = []
    points: list[MetricPoint] = []
    for resource, part in batch.items():
        rids += repeat(resource.id, len(part))
        points += part
    if not points:
        return _EMPTY
    keys, values, steps, stamps = zip(*points, strict=True)
    return BatchColumns(rids, keys, values, steps, stamps)


def _transpose(entries: Sequence[Entry], rows: bool) -> BatchColumns:
    if not entries:
        return _EMPTY
    if not rows:  # log_metric's points alone: one transpose in C, no call per point
        return BatchColumns(*zip(*entries, strict=True))
    if all(type(entry) is Row for entry in entries):  # log_metrics alone: a dict per step
        return _row_columns(entries)  # type: ignore[arg-type]  # all Rows
    return BatchColumns(*zip(*chain.from_iterable(map(_points_of, entries)), strict=True))


def _row_columns(rows: Sequence[Row]) -> BatchColumns:
    """Rows' columns by concatenation: a call per row, none per point."""
    sizes = [len(row.keys) for row in rows]
    return BatchColumns(  # tuples: every backend of a tracker reads these same columns
        tuple(chain.from_iterable(map(repeat, [row.resource for row in rows], sizes))),
        tuple(chain.from_iterable(row.keys for row in rows)),
        tuple(chain.from_iterable(row.values for row in rows)),
        tuple(chain.from_iterable(map(repeat, [row.step for row in rows], sizes))),
        tuple(chain.from_iterable(map(repeat, [row.timestamp for row in rows], sizes))),
    )


def _points_of(entry: Entry) -> Sequence[PointEntry] | Iterator[PointEntry]:
    """An entry's points as point entries."""
    if type(entry) is not Row:
        return (entry,)  # type: ignore[return-value]  # a point entry
    rid, keys, values, step, stamp = entry
    return zip(repeat(rid), keys, values, repeat(step), repeat(stamp))


def _group(columns: BatchColumns) -> dict[Resource, tuple[MetricPoint, ...]]:
    """Points by resource in arrival order, built in C but for one dict look-up a point."""
    rids, keys, values, steps, stamps = columns
    points = map(tuple.__new__, repeat(MetricPoint), zip(keys, values, steps, stamps, strict=True))
    groups: dict[str, list[MetricPoint]] = {}
    for rid, point in zip(rids, points, strict=True):
        held = groups.get(rid)
        if held is None:
            groups[rid] = [point]
        else:
            held.append(point)
    new = tuple.__new__
    # tuples: every backend of a tracker reads these same groups
    return {new(Resource, (rid,)): tuple(held) for rid, held in groups.items()}
