"""The values that cross the hook boundary, and the one ordering rule of the contract.

Backends only ever see these types: a :class:`Resource` (never a user's raw object),
:class:`MetricPoint` batches, :class:`PerfRecord` and :class:`Capabilities`.
"""

from __future__ import annotations

import bisect
import gc
import math
import struct
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import Any, Literal, NamedTuple

__all__ = [
    "Batch",
    "Capabilities",
    "Columns",
    "ColumnsPage",
    "HistoryPage",
    "MetricPoint",
    "ParamValue",
    "PerfRecord",
    "Resource",
    "columns_page",
    "cursor_order",
    "float_bits",
    "gc_paused",
    "order_before",
    "order_cursor",
    "page_after",
    "point_order",
    "rank",
    "sample_buckets",
    "sample_edges",
    "sample_history",
    "sample_points",
    "value_order",
]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
FLOAT_MAX = 1.7976931348623157e308


class Resource(NamedTuple):
    """What metrics belong to: a model, a training run, a prediction job.

    Users pass a string id, an object with an ``id`` attribute, or lolpop's
    ``(id, run)`` tuple; the facade turns each into this, once. (A named tuple: hashing
    it is on the hot path of every ``log_metric``.)
    """

    id: str

    def __str__(self) -> str:
        return self.id


class MetricPoint(NamedTuple):
    """One logged value: ``key`` at ``step`` and ``timestamp`` (ms since the epoch)."""

    key: str
    value: float
    step: int
    timestamp: int


class PerfRecord(NamedTuple):
    """Which metric ranks a resource (``metric``, as the user named it) and its value."""

    metric: str
    value: float


class HistoryPage(NamedTuple):
    """One page of a history (the ``history_page`` hook): points in ``point_order`` and
    where the next page starts, or None when no point follows them."""

    points: list[MetricPoint]
    cursor: str | None


class ColumnsPage(NamedTuple):
    """One page of a history as columns (the ``history_columns_page`` hook), in
    ``point_order``: the steps, timestamps (ms) and values of its points, the same length
    (``array("q")``, ``array("q")`` and ``array("d")`` are taken as they are, other
    sequences of ints and floats are copied into them), and where the next page starts, or
    None when no point follows them."""

    steps: Sequence[int]
    timestamps: Sequence[int]
    values: Sequence[float]
    cursor: str | None


class Columns(NamedTuple):
    """A history as three columns, in history order (``Tracker.history_columns``): the
    standard library's compact ``array("q")``, ``array("q")`` and ``array("d")`` (8 bytes a
    value, exact: NaN, ±inf, -0.0), or numpy ``int64``, ``int64`` and ``float64`` arrays."""

    steps: Any
    timestamps: Any
    values: Any


#: A param's value: a JSON scalar (``docs/semantics.md``, Params and tags).
ParamValue = str | int | float | bool | None

#: A write as backends receive it: points grouped by resource, in arrival order.
Batch = Mapping[Resource, Sequence[MetricPoint]]
#: A point's fields ``(key, value, step, timestamp)``, as the tracker's buffer holds them.
PointFields = tuple[str, float, int, int]


def float_bits(value: float) -> int:
    """The IEEE-754 bit pattern of ``value`` as a signed 64-bit integer (exact, NaN too)."""
    bits: int = struct.unpack("<q", struct.pack("<d", value))[0]
    return bits


def value_order(value: float) -> int:
    """A signed 64-bit integer whose order is the contract's order of values.

    Numbers keep their numeric order; ``-0.0`` ranks just below ``0.0``; every NaN ranks
    below ``-inf``. Equal floats (same bits) give equal keys. This is the tie-break of the
    latest rule and the last sort key of a history, so a SQL backend can store it as a
    plain ``BIGINT`` and ``ORDER BY`` it.
    """
    if math.isnan(value):
        return INT64_MIN
    bits = float_bits(value)
    return bits if bits >= 0 else -(bits & INT64_MAX) - 1


def point_order(point: MetricPoint) -> tuple[int, int, int]:
    """The sort key of the contract: ``(step, timestamp, value_order)``.

    History is ordered by it, and the latest value is the point with the greatest key.
    """
    return (point.step, point.timestamp, value_order(point.value))


def order_cursor(page: Sequence[MetricPoint], previous: str | None = None) -> str:
    """A keyset cursor after ``page`` (not empty), the page read from ``previous``: the
    ``point_order`` of its last point, and how many points of that order were read so far
    (a store keeping duplicates or clamped values may hold several). A store whose points
    are unique by their order starts the next page right after it
    (``WHERE (step, timestamp, value_order) > (?, ?, ?)``) and never needs the count."""
    last = point_order(page[-1])
    seen = 0
    for point in reversed(page):
        if point_order(point) != last:
            break
        seen += 1
    if seen == len(page) and previous is not None:  # the page is all one order: go on counting
        order, before = cursor_order(previous)
        if order == last:
            seen += before
    step, timestamp, value = last
    return f"{step}:{timestamp}:{value}:{seen}"


def cursor_order(cursor: str) -> tuple[tuple[int, int, int], int]:
    """The ``point_order`` an :func:`order_cursor` holds, and how many points of that
    order were read."""
    step, timestamp, value, seen = map(int, cursor.split(":"))
    return (step, timestamp, value), seen


def page_of(points: Sequence[MetricPoint], cursor: str | None, limit: int) -> HistoryPage:
    """The ``history_page`` of a whole history ``points`` (in ``point_order``): the page
    after ``cursor`` (an :func:`order_cursor`), for a store that cannot page itself."""
    start = 0
    if cursor is not None:
        order, seen = cursor_order(cursor)
        start = bisect_left(points, order, key=point_order) + seen
    page = list(points[start : start + limit])
    more = start + limit < len(points)
    return HistoryPage(page, order_cursor(page, cursor) if more else None)


def columns_page(page: HistoryPage) -> ColumnsPage:
    """``page`` as columns (exact: a value's bits are kept), for a store whose pages are
    points: its ``history_columns_page`` is its ``history_page`` turned into columns."""
    _, values, steps, stamps = zip(*page.points, strict=True) if page.points else ((),) * 4
    return ColumnsPage(array("q", steps), array("q", stamps), array("d", values), page.cursor)


def page_after(
    points: Sequence[MetricPoint], after: tuple[int, int, int], limit: int
) -> HistoryPage:
    """The ``history_page_after`` of a whole history ``points`` (in ``point_order``): the
    first ``limit`` points whose order follows ``after``, and the :func:`page_of` cursor
    of the rest, for a store that cannot seek itself."""
    start = bisect.bisect_right(points, after, key=point_order)
    page = list(points[start : start + limit])
    more = start + limit < len(points)
    return HistoryPage(page, order_cursor(page) if more else None)


def order_before(step: int, timestamp: int) -> tuple[int, int, int] | None:
    """The greatest ``point_order`` before every point at or after ``(step, timestamp)``
    (any ``value_order`` is at most :data:`INT64_MAX`), or None when no order of signed
    64-bit integers precedes them all: the history's first point is the start."""
    if timestamp > INT64_MIN:
        return (step, timestamp - 1, INT64_MAX)
    if step > INT64_MIN:
        return (step - 1, INT64_MAX, INT64_MAX)
    return None


def rank(
    latest: Iterable[tuple[str, float]], order: Literal["max", "min"], limit: int
) -> list[tuple[str, float]]:
    """The contract's leaderboard of ``(resource id, latest value)`` pairs: up to ``limit``,
    best first by value in ``order``, ties by id ascending; NaN values are not ranked
    (MLflow's ``search_runs(order_by=...)``)."""
    sign = -1.0 if order == "max" else 1.0
    ranked = sorted(
        ((rid, value) for rid, value in latest if not math.isnan(value)),
        key=lambda item: (sign * item[1], item[0]),
    )
    return ranked[:limit]


#: The fewest points a sampled history may be asked for: first, last, min and max.
MIN_SAMPLE = 4


def sample_buckets(max_points: int) -> int:
    """How many buckets a sample of at most ``max_points`` points splits a history into:
    each keeps up to two points (its min and max), plus the history's first and last."""
    return (max_points - 2) // 2


def sample_points(points: Sequence[MetricPoint], max_points: int) -> list[MetricPoint]:
    """The contract's downsampled history (``history_sampled``), from a whole history in
    point order: all of it when it has at most ``max_points`` points; else the first and
    last points and, in each bucket of :func:`sample_edges` over the step range (the
    timestamp range when every point has the same step), the points with the least and
    greatest :func:`value_order` (NaN ranks lowest, so a NaN is kept too). In point order,
    at most ``max_points`` points. The SQL backend uses the same buckets."""
    if len(points) <= max_points:
        return list(points)
    return _sample(points, points[0], points[-1], max_points)


def sample_history(read: Callable[[], Iterable[MetricPoint]], max_points: int) -> list[MetricPoint]:
    """:func:`sample_points` of a history that ``read()`` yields in point order (a page at a
    time, say), in bounded memory: one pass counts it and finds its ends, a second keeps
    each bucket's extremes; at most ``max_points`` points are held. A history that grows
    between the passes is sampled as long as the first pass found it."""
    count, head, last = 0, [], None
    for last in read():
        count += 1
        if count <= max_points:
            head.append(last)
    if last is None or count <= max_points:
        return head
    return _sample(islice(read(), count), head[0], last, max_points)


def _sample(
    points: Iterable[MetricPoint], first: MetricPoint, last: MetricPoint, max_points: int
) -> list[MetricPoint]:
    """The rule of :func:`sample_points` over ``points`` (more than ``max_points``) from
    ``first`` to ``last``: each bucket's extremes, kept with their positions."""
    by_step = first.step != last.step
    low, high = (first.step, last.step) if by_step else (first.timestamp, last.timestamp)
    edges = sample_edges(low, high, sample_buckets(max_points))
    least: dict[int, tuple[int, int, MetricPoint]] = {}
    greatest: dict[int, tuple[int, int, MetricPoint]] = {}
    index = -1
    for index, point in enumerate(points):
        bucket = bisect.bisect_right(edges, point.step if by_step else point.timestamp)
        order = value_order(point.value)
        if bucket not in least or order < least[bucket][0]:
            least[bucket] = (order, index, point)
        if bucket not in greatest or order > greatest[bucket][0]:
            greatest[bucket] = (order, index, point)
    kept = {0: first, index: last}
    kept.update((i, point) for _, i, point in least.values())
    kept.update((i, point) for _, i, point in greatest.values())
    return [kept[i] for i in sorted(kept)]


def sample_edges(low: int, high: int, buckets: int) -> list[int]:
    """Where the buckets of a sample over ``[low, high]`` (steps or timestamps) begin,
    after the first, which begins at ``low``: at most ``buckets - 1`` distinct integers
    splitting the range evenly. A value ``x`` falls in bucket
    ``bisect_right(edges, x)``. Exact integers, so signed 64-bit ranges never overflow."""
    width = high - low + 1
    return sorted({low + width * b // buckets for b in range(1, buckets)} - {low})


_CHOICES = {
    "infinity": ("keep", "clamp", "reject"),
    "nan": ("keep", "reject"),
    "negative_zero": ("keep", "positive"),
    "duplicates": ("collapse", "keep"),
    "params": ("typed", "string"),
}


def _capabilities_problem(caps: Capabilities) -> str | None:
    """What is wrong with a declaration (``field=value: why``), or None."""
    for name, choices in _CHOICES.items():
        value = getattr(caps, name)
        if not isinstance(value, str) or value not in choices:
            return f"{name}={value!r}: use one of {', '.join(choices)}"
    if not isinstance(caps.persistent, bool):
        return f"persistent={caps.persistent!r}: use True or False"
    low, high = caps.min_step, caps.max_step
    if not (type(low) is int and type(high) is int and INT64_MIN <= low <= high <= INT64_MAX):
        return f"min_step={low!r}, max_step={high!r}: signed 64-bit, min <= max"
    size = caps.max_batch_size
    if size is not None and (type(size) is not int or size < 1):
        return f"max_batch_size={size!r}: use None or a positive int"
    return None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can keep, declared once; the contract suite checks it exactly.

    The defaults describe a perfect backend (the in-memory reference). A backend that
    cannot keep something declares how it deviates instead of deviating silently.
    """

    #: Data survives ``close()`` and a new backend on the same URL sees it.
    persistent: bool = False
    #: ``"keep"``: ±inf round-trips; ``"clamp"``: stored as ±1.7976931348623157e308
    #: (MLflow); ``"reject"``: logging ±inf raises :class:`~trackplug.UnsupportedValueError`.
    infinity: Literal["keep", "clamp", "reject"] = "keep"
    #: ``"keep"``: NaN round-trips; ``"reject"``: logging NaN raises.
    nan: Literal["keep", "reject"] = "keep"
    #: ``"keep"``: -0.0 round-trips with its sign; ``"positive"``: read back as 0.0.
    negative_zero: Literal["keep", "positive"] = "keep"
    #: ``"collapse"``: an exact duplicate point (same resource, key, step, timestamp and
    #: value bits) is stored once; ``"keep"``: each copy appears in the history.
    duplicates: Literal["collapse", "keep"] = "collapse"
    #: The smallest and greatest step the backend keeps; others raise on logging.
    min_step: int = INT64_MIN
    max_step: int = INT64_MAX
    #: Most points the backend takes in one ``log_metric`` call; the facade splits batches.
    max_batch_size: int | None = None
    #: ``"typed"``: a param reads back as the JSON scalar logged; ``"string"``: as its
    #: ``str(value)`` (MLflow keeps params as text).
    params: Literal["typed", "string"] = "typed"

    def __post_init__(self) -> None:
        """A declaration the facade cannot act on is the plugin's error, said at once (a
        ``max_batch_size`` of 0 made every batch a raw ValueError from ``range``)."""
        if problem := _capabilities_problem(self):
            from ._errors import PluginError

            raise PluginError(f"Capabilities({problem}) is invalid")

    @property
    def limited(self) -> bool:
        """Whether some valid value or step is refused (the facade then checks each)."""
        return (
            self.infinity == "reject"
            or self.nan == "reject"
            or (self.min_step, self.max_step) != (INT64_MIN, INT64_MAX)
        )

    def stored(self, value: float) -> float:
        """The value this backend reads back after ``value`` was logged."""
        if self.infinity == "clamp" and math.isinf(value):
            return math.copysign(FLOAT_MAX, value)
        if self.negative_zero == "positive" and value == 0.0:
            return 0.0
        return value

    def stored_key(self, value: float) -> int:
        """Equal for two values exactly when this backend keeps them as the same value:
        compares a value about to be written with one read back (bits after :meth:`stored`,
        every NaN one)."""
        return value_order(self.stored(value))

    def stored_param(self, value: ParamValue) -> ParamValue:
        """The param this backend reads back after ``value`` was logged."""
        return str(value) if self.params == "string" else value

    def rejects(self, value: float) -> bool:
        """Whether logging ``value`` raises :class:`~trackplug.UnsupportedValueError`."""
        return (self.infinity == "reject" and math.isinf(value)) or (
            self.nan == "reject" and math.isnan(value)
        )

    def rejects_step(self, step: int) -> bool:
        """Whether logging at ``step`` raises :class:`~trackplug.UnsupportedValueError`."""
        return not self.min_step <= step <= self.max_step


def group(points: Sequence[tuple[Resource, MetricPoint]]) -> dict[Resource, list[MetricPoint]]:
    """Group ``(resource, point)`` pairs into a :data:`Batch`, keeping arrival order."""
    batch: dict[Resource, list[MetricPoint]] = {}
    for resource, point in points:
        batch.setdefault(resource, []).append(point)
    return batch


@contextmanager
def gc_paused(*, kept: bool = False) -> Iterator[None]:
    """Pause the cyclic garbage collector while building a long list of tuples: the
    allocations would trigger collections that traverse everything and can free nothing
    (a 100,000-point history builds twice as fast; a 20,000-point batch's columns 3x).

    With ``kept`` (what the block builds outlives it: a history handed to the caller),
    the objects the collector has not examined yet move to its oldest generation when
    the block succeeds, unexamined (``freeze`` then ``unfreeze`` splice its lists): else
    the next collections of the young generations walk all of them, twice, to free
    nothing (~40 ms per million points each). Not when the application has frozen
    objects (``gc.freeze``): unfreezing would hand them back to the collector."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
        if kept and not gc.get_freeze_count():
            gc.freeze()
            gc.unfreeze()
    finally:
        gc.enable()
