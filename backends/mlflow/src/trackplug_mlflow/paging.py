"""A tracking server's history in the contract's order, a page at a time, in bounded memory.

MLflow's REST ``get-history`` pages (25,000 points at most, by offset) come in
``(timestamp, step, value)`` order and cannot be filtered by step, while a ``history_page``
is in the contract's ``(step, timestamp, value)`` order. The two agree whenever steps rise
with time (a training loop), so the first page reads the whole history once, holding one
MLflow page and one trackplug page, to learn whether they agree:

- they do: each page is the next ``limit`` points of MLflow's own pages, from the offset
  its cursor holds (``OFFSET@HELD@ORDER``), checked to still follow the previous page, and
  the history's last point of the first page's time (``HELD``: how many there were, and the
  last one's order) checked to be still at its offset. Points are never removed, so then
  none was logged before it since: every point held then keeps its offset, and whatever
  was logged later streams after them all;
- they do not (steps logged out of time order), or the history changed under a cursor:
  each page is the ``limit`` smallest points after the cursor's, kept in a bounded heap
  while the whole history streams past (the time of reading it whole per page, as before,
  but the memory of one page). No point held when paging began is lost by the change: every
  page before it came from offsets those points still held.

No mlflow import here: :meth:`.store.RunStore.history_page` hands in the stream.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from itertools import islice, pairwise

from trackplug import MetricPoint
from trackplug.plugin import HistoryPage, cursor_order, order_cursor, point_order

__all__ = ["WHOLE", "Stream", "server_page"]

#: ``stream(offset, size)``: the points from MLflow's position ``offset`` on, in its
#: order, read ``size`` per request (at most MLflow's 25,000).
Stream = Callable[[int, int], Iterator[MetricPoint]]
#: MLflow's largest page of a history (``GET_METRIC_HISTORY_MAX_RESULTS``).
WHOLE = 25_000
_IN_ORDER = "@"


def server_page(stream: Stream, cursor: str | None, limit: int) -> HistoryPage:
    """The ``history_page`` after ``cursor`` (see the module)."""
    if cursor is None:
        return _first_page(stream, limit)
    *in_order, after = cursor.split(_IN_ORDER)
    if in_order:
        offset, held = in_order
        page = list(islice(stream(int(offset), min(limit + 1, WHOLE)), limit + 1))
        if _follows(page, after) and _held_in_place(stream, held):  # checked after the read
            return _page(page, limit, after, int(offset), held)
    return _smallest_after(stream, after, limit)


def _first_page(stream: Stream, limit: int) -> HistoryPage:
    first: list[MetricPoint] = []
    previous = None
    held = 0
    for point in stream(0, WHOLE):
        order = point_order(point)
        if previous is not None and order < previous:
            return _smallest_after(stream, None, limit)
        previous = order
        held += 1
        if len(first) <= limit:
            first.append(point)
    if previous is None:
        return HistoryPage([], None)
    return _page(first, limit, None, 0, ":".join(map(str, (held, *previous))))


def _page(
    points: list[MetricPoint], limit: int, previous: str | None, offset: int, held: str
) -> HistoryPage:
    """The first ``limit`` of ``points`` (read in order from MLflow's ``offset``)."""
    page = points[:limit]
    if len(points) <= limit:
        return HistoryPage(page, None)
    after = order_cursor(page, previous)
    return HistoryPage(page, _IN_ORDER.join((str(offset + len(page)), held, after)))


def _held_in_place(stream: Stream, held: str) -> bool:
    """Whether the last of the ``count`` points the first page saw (``count:ORDER``) is
    still the ``count``-th in MLflow's order: nothing was logged before it since."""
    count, *order = map(int, held.split(":"))
    now = list(islice(stream(count - 1, 1), 1))
    return bool(now) and point_order(now[0]) == tuple(order)


def _follows(page: list[MetricPoint], cursor: str) -> bool:
    """Whether ``page`` is in order and after ``cursor``: nothing was logged in between."""
    orders = [point_order(point) for point in page]
    return all(a <= b for a, b in pairwise(orders)) and (
        not orders or orders[0] > cursor_order(cursor)[0]
    )


def _smallest_after(stream: Stream, cursor: str | None, limit: int) -> HistoryPage:
    """The ``limit`` first points after ``cursor`` in the contract's order, however MLflow
    orders them (a server's points are unique by their order: MLflow's primary key)."""
    after = None if cursor is None else cursor_order(cursor)[0]
    wanted = (p for p in stream(0, WHOLE) if after is None or point_order(p) > after)
    smallest = heapq.nsmallest(limit + 1, wanted, key=point_order)
    page = smallest[:limit]
    more = len(smallest) > limit
    return HistoryPage(page, order_cursor(page, cursor) if more else None)
