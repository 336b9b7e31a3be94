"""Points logged but not written yet, and the thread that writes them in the background.

``log_metric`` only appends to the buffer (microseconds); so does ``log_metrics`` without a
performance record, all its points as one entry (a :class:`Row`). The buffer goes to the backends,
as one batch, when it holds ``size`` points (the flusher thread wakes), every ``interval``
seconds, and whenever the tracker flushes, reads, writes anything else or closes. Memory is
bounded: at ``max_size`` points the logging thread waits until the flusher has taken the
buffer.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from itertools import chain, repeat
from typing import NamedTuple, cast

from ._model import Batch, MetricPoint, PointFields, Resource, gc_paused

__all__ = ["Buffer", "Row"]


class Row(NamedTuple):
    """The points of one ``log_metrics`` call, as the buffer holds them: its keys and
    values, at one step and timestamp. One entry per call, not a point per key: building a
    MetricPoint per key cost the caller 0.28 µs a point, most of it collections walking the
    buffered points (each a tuple subclass the collector never untracks); the points are
    built when the buffer is drained, with the collector paused."""

    keys: tuple[str, ...]
    values: tuple[float, ...]
    step: int
    timestamp: int


#: What the buffer holds of one resource: its entries (points of ``log_metric``, rows of
#: ``log_metrics``), or its first point alone (a list per new resource was an object the
#: collector tracked: 0.8 µs of each ``log_metric`` into a new resource went to
#: collections walking them).
_Entry = PointFields | Row
_Held = list[_Entry] | PointFields


class Buffer:
    """The points of one tracker waiting for their batch.

    :param deliver: writes a batch to every backend; called with the write lock held.
    :param name: names the flusher thread.
    """

    def __init__(
        self,
        deliver: Callable[[Batch], None],
        size: int,
        max_size: int,
        interval: float,
        name: str,
    ) -> None:
        self._deliver = deliver
        self._size = size
        self._max_size = max_size
        self._interval = interval
        self._name = name
        # By resource id (a string the collector never tracks; the batch's Resources are
        # built when it is taken). Plain tuples from log_metric (see check_fields), Rows
        # from log_metrics; a resource's first point from log_metric alone, not in a list
        # (_Held).
        self._points: dict[str, _Held] = {}
        self._with_rows: set[str] = set()  # the resources whose entries include a Row
        self._count = 0  # points, not entries
        self._lock = threading.Lock()  # guards _points, _with_rows and _count
        self._taken = threading.Condition(self._lock)  # a drain took the buffer
        #: One drain-and-write at a time, in order: held by every write of the tracker.
        self.write_lock = threading.RLock()
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None
        self._stopped = False
        #: What the background flush raised; the tracker raises it in the caller's thread.
        self.error: BaseException | None = None

    def add(self, rid: str, point: PointFields) -> None:
        """Buffer one point of the resource ``rid`` (the hot path of ``log_metric``)."""
        with self._lock:
            held = self._points.get(rid)
            if type(held) is list:  # the usual case: a resource that has points here
                held.append(point)
            elif held is None:  # a new resource: its point alone, no list to collect
                self._points[rid] = point
            else:  # its second point
                self._points[rid] = [held, point]  # type: ignore[list-item]  # a point
            self._count = count = self._count + 1
        if count >= self._size:
            self._wake_flusher(count)
        elif self._flusher is None:
            self._start_flusher()

    def add_row(self, rid: str, row: Row) -> None:
        """Buffer the points of one ``log_metrics`` call as one entry: a drain takes all of
        them or none, and they go in the same batch."""
        if not row.keys:
            return
        with self._lock:
            held = self._points.get(rid)
            if type(held) is list:
                held.append(row)
            else:
                self._points[rid] = [*_as_list(held), row]
            self._with_rows.add(rid)
            self._count = count = self._count + len(row.keys)
        if count >= self._size:
            self._wake_flusher(count)
        elif self._flusher is None:
            self._start_flusher()

    def drain(self) -> None:
        """Send the buffer to every backend. Holding the write lock while taking the
        buffer keeps batches in order and makes a reader wait for a write in flight."""
        with self.write_lock:
            with self._lock:
                batch, self._points, self._count = self._points, {}, 0
                with_rows, self._with_rows = self._with_rows, set()
                if batch:  # else no one waits (_make_room waits for a full buffer to go)
                    self._taken.notify_all()
            if not batch:
                return
            # The collector paused until the batch is written and freed: its points, and
            # what the backends build from them, are new objects that die young; re-enabled
            # while they lived, its next pass walked every one of them in vain (9 ms of the
            # CPU of a 100,000-point batch, on top of the backend's own pause).
            with gc_paused():
                try:
                    self._deliver(_as_batch(batch, with_rows))
                except BaseException:
                    self._requeue(batch, with_rows)
                    raise
                finally:
                    del batch

    def stop(self) -> None:
        """Stop the flusher thread (what is buffered stays: drain first)."""
        self._stopped = True
        flusher, self._flusher = self._flusher, None
        self._wake.set()
        if flusher is not None and flusher is not threading.current_thread():
            flusher.join()

    def _requeue(self, batch: dict[str, _Held], with_rows: set[str]) -> None:
        """Put a batch that failed back in front of the buffer (replays collapse), each
        resource's entries in a list (a lone point too)."""
        with self._lock:
            requeued = {rid: _as_list(held) for rid, held in batch.items()}
            for rid, held in self._points.items():
                requeued.setdefault(rid, []).extend(_as_list(held))
            self._points = cast(dict[str, _Held], requeued)
            self._with_rows |= with_rows
            self._count = sum(map(_size, chain.from_iterable(requeued.values())))

    def _wake_flusher(self, count: int) -> None:
        if count >= self._max_size:
            self._make_room()
        elif self._flusher is None:
            self._start_flusher()
        if not self._wake.is_set():  # while the flusher writes, every add lands here
            self._wake.set()  # (takes the event's lock and notifies: ~10x the test)

    def _make_room(self) -> None:
        """Back-pressure at ``max_size``, so memory stays bounded: wait until the flusher
        takes the buffer (it is writing the batch before it), rather than writing it here
        behind that batch; without a flusher to wait for, write it here."""
        with self._taken:
            while self._count >= self._max_size:
                flusher = self._flusher
                if (
                    flusher is None
                    or not flusher.is_alive()
                    or flusher is threading.current_thread()
                ):
                    break
                if self.error is not None or self._stopped:
                    return  # the next call raises it
                self._wake.set()
                self._taken.wait(timeout=0.05)  # and look again: the flusher may have died
            else:
                return
        self.drain()

    def _start_flusher(self) -> None:
        with self._lock:
            if self._flusher is not None or self._stopped:
                return
            self._flusher = threading.Thread(
                target=_flush_in_background,
                args=(weakref.ref(self), self._wake, self._interval),
                name=f"trackplug-flusher {self._name}",
                daemon=True,
            )
            self._flusher.start()

    def _background_flush(self) -> bool:
        """One round of the flusher; False once stopped."""
        if self._stopped:
            return False
        try:
            self.drain()
        except Exception as exc:  # raised again by the next call in the user's thread
            self.error = exc
        return True


def _as_list(held: _Held | None) -> list[_Entry]:
    """What the buffer holds of a resource as a new list of its entries."""
    if held is None:
        return []
    return list(held) if type(held) is list else [held]  # type: ignore[list-item]


def _size(entry: _Entry) -> int:
    """The points an entry holds."""
    return len(entry.keys) if type(entry) is Row else 1


def _fields(entry: _Entry) -> Iterable[PointFields]:
    """The fields of an entry's points."""
    if type(entry) is Row:
        return zip(entry.keys, entry.values, repeat(entry.step), repeat(entry.timestamp))
    return (entry,)  # type: ignore[return-value]  # a point's fields


def _as_batch(buffered: dict[str, _Held], with_rows: set[str]) -> Batch:
    """The buffered entries as the points a batch holds, by :class:`Resource` (built here,
    with the collector paused, not per ``log_metric`` of a new resource). A resource's lone
    point (one point into each of many resources) becomes a list of one MetricPoint without
    a ``map`` built for it; several convert in C, no Python call per point (a Python call
    per entry where rows are among them: one per ``log_metrics`` call). The collector is
    paused by the caller, :meth:`Buffer.drain` (3.6 -> 2.7 µs per logged point), as all of
    it is new."""
    new = tuple.__new__  # as_resource's Resource and as MetricPoints, in C
    return {
        new(Resource, (rid,)): _points(held, rid in with_rows)
        if type(held) is list
        else [new(MetricPoint, held)]
        for rid, held in buffered.items()
    }


def _points(entries: list[_Entry], rows: bool) -> list[MetricPoint]:
    fields = chain.from_iterable(map(_fields, entries)) if rows else entries
    return list(map(tuple.__new__, repeat(MetricPoint), fields))


def _flush_in_background(
    ref: weakref.ReferenceType[Buffer], wake: threading.Event, interval: float
) -> None:
    """The flusher thread: holds the buffer (and so its tracker) only while flushing, so
    an abandoned tracker can be collected."""
    while True:
        wake.wait(interval)
        wake.clear()
        buffer = ref()
        if buffer is None or not buffer._background_flush():
            return
        del buffer
