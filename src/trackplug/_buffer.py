"""Points logged but not written yet, and the thread that writes them in the background.

``log_metric`` only appends to the buffer (microseconds); so does ``log_metrics`` without a
performance record, all its points as one entry (a :class:`Row`). The buffer goes to the backends,
as one batch, when it holds ``size`` points (the flusher thread wakes), every ``interval``
seconds, and whenever the tracker flushes, reads, writes anything else or closes. Memory is
bounded: at ``max_size`` points the logging thread waits until the flusher has taken the
buffer. Before that, while the buffer is over ``size`` (the flusher is behind), the logging
thread hands the GIL to the flusher every :data:`HANDOVER_EVERY` points (:func:`_hand_over`).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable

from ._batch import ColumnBatch, Entry, PointEntry, Row
from ._model import Batch, gc_paused

__all__ = ["HANDOVER_EVERY", "Buffer", "Row"]

#: While the buffer is over its size, the logging thread hands the GIL over once per this many
#: points (docs/performance.md, "The GIL handed to the flusher"): ~60 us of a ~500 us stretch.
HANDOVER_EVERY = 500
#: How long the logging thread sleeps to hand the GIL over: any sleep releases it, and on
#: Linux this one lasts ~60 us (the timer slack), long enough for the flusher to take it.
_HANDOVER_SECONDS = 1e-5


def _hand_over() -> None:
    """Let the flusher have the GIL now. A thread that waits for the GIL (the flusher, back
    from a database round trip) gets it only when the holder lets go, and a logging thread in
    a loop of Python lets go only when asked, after the interpreter's switch interval (5 ms):
    a delay on every round trip of every batch while the logging thread keeps logging."""
    time.sleep(_HANDOVER_SECONDS)


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
        # One flat list in arrival order: plain tuples from log_metric (check_entry; no
        # object per resource for the collector to walk: a string id in each), Rows from
        # log_metrics. The batch groups them by resource only if a backend asks for it.
        self._entries: list[Entry] = []
        self._rows = False  # whether any entry is a Row
        self._count = 0  # points, not entries
        self._lock = threading.Lock()  # guards _entries, _rows and _count
        self._taken = threading.Condition(self._lock)  # a drain took the buffer
        #: One drain-and-write at a time, in order: held by every write of the tracker.
        self.write_lock = threading.RLock()
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None
        self._stopped = False
        #: What the background flush raised; the tracker raises it in the caller's thread.
        self.error: BaseException | None = None

    def add(self, point: PointEntry) -> None:
        """Buffer one point (the hot path of ``log_metric``)."""
        with self._lock:
            self._entries.append(point)
            self._count = count = self._count + 1
        if count >= self._size:
            self._wake_flusher(count, 1)
        elif self._flusher is None:
            self._start_flusher()

    def add_row(self, row: Row) -> None:
        """Buffer the points of one ``log_metrics`` call as one entry: a drain takes all of
        them or none, and they go in the same batch."""
        if not row.keys:
            return
        with self._lock:
            self._entries.append(row)
            self._rows = True
            self._count = count = self._count + len(row.keys)
        if count >= self._size:
            self._wake_flusher(count, len(row.keys))
        elif self._flusher is None:
            self._start_flusher()

    def drain(self) -> None:
        """Send the buffer to every backend. Holding the write lock while taking the
        buffer keeps batches in order and makes a reader wait for a write in flight."""
        with self.write_lock:
            with self._lock:
                entries, self._entries, self._count = self._entries, [], 0
                rows, self._rows = self._rows, False
                if entries:  # else no one waits (_make_room waits for a full buffer to go)
                    self._taken.notify_all()
            if not entries:
                return
            # The collector paused until the batch is written and freed: its points, and
            # what the backends build from them, are new objects that die young; re-enabled
            # while they lived, its next pass walked every one of them in vain (9 ms of the
            # CPU of a 100,000-point batch, on top of the backend's own pause).
            with gc_paused():
                try:
                    self._deliver(ColumnBatch(entries, rows))
                except BaseException:
                    self._requeue(entries, rows)
                    raise
                finally:
                    del entries

    def stop(self) -> None:
        """Stop the flusher thread (what is buffered stays: drain first)."""
        self._stopped = True
        flusher, self._flusher = self._flusher, None
        self._wake.set()
        if flusher is not None and flusher is not threading.current_thread():
            flusher.join()

    def _requeue(self, entries: list[Entry], rows: bool) -> None:
        """Put a batch that failed back in front of the buffer (replays collapse)."""
        with self._lock:
            self._entries[:0] = entries
            self._rows |= rows
            self._count = sum(len(e.keys) if type(e) is Row else 1 for e in self._entries)

    def _wake_flusher(self, count: int, added: int) -> None:
        """The buffer holds ``count`` points (at least its size), the last ``added`` just
        now: wake the flusher, hand it the GIL at each multiple of :data:`HANDOVER_EVERY`
        points the buffer passes, and wait at ``max_size``."""
        if count % HANDOVER_EVERY < added:
            _hand_over()
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
