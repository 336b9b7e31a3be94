"""The facade users call: ``Tracker`` and ``connect``.

Everything that is the same for every backend happens here, once: resources are
normalized, input is validated, lolpop's nested metrics are flattened, predictions are
summarized, and point writes are buffered. A call flows::

    log_metric -> validate -> buffer --(size / interval / flush / read / close / exit)-->
        log_metric hook of every backend, in batches

Reads drain the buffer first (a caller always reads its own writes) and are answered by
the primary backend, the first one given. Writes go to every backend, each under its own
failure policy (:mod:`trackplug.fanout`).
"""

from __future__ import annotations

import atexit
import enum
import threading
import warnings
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from . import validation as check
from .errors import ClosedError, UnsupportedValueError, ValidationError
from .model import Capabilities, MetricPoint, PerfRecord, Resource
from .writes import CopyMetrics, LogBatch, LogMetrics, LogPredictions, Write

# The machinery of opening a tracker is imported by the first connect(), not by
# ``import trackplug`` (its budget is 60 ms); log_metric needs none of it.
if TYPE_CHECKING:
    from .fanout import Destination, Policy
    from .hooks import BackendHooks
    from .outbox import Outbox
    from .predictions import ProblemType
    from .registry import Registry

__all__ = ["CloseWarning", "Tracker", "connect"]

#: Splits whose value ranks a resource in ``log_metrics(..., perf_metric=...)``, in order.
PERF_SPLITS = ("valid", "train")


class State(enum.Enum):
    OPEN = "open"  # accepting writes and reads
    CLOSED = "closed"  # flushed and released; every call raises ClosedError


class Tracker:
    """Logs metrics to one or more backends and reads them back from the first.

    Build one with :func:`connect`; ``Tracker(backend, ...)`` takes backend objects
    directly (tests, the contract suite, embedded use).

    :param urls: the URLs the backends were built from (names, outbox keys).
    :param on_error: ``"raise"``, ``"warn"`` or ``"spool"`` for every backend, or a
        ``{url: policy}`` mapping; by default the primary raises and the others spool.
    :param outbox: where spooled writes wait (default ``$TRACKPLUG_OUTBOX``, else
        ``.trackplug/outbox.db``); created only when something is spooled.
    :param retry_interval: seconds before a failed backend is tried again.
    :param flush_interval: seconds between background flushes of buffered points.
    :param buffer_size: buffered points that wake the background flush.
    :param max_buffer: buffered points at which ``log_metric`` waits until the background
        flusher takes the buffer (bounded memory: the buffer never holds more); it writes
        the buffer in the caller's thread only when no flusher is running.
    """

    def __init__(
        self,
        *backends: object,
        urls: Sequence[str] | None = None,
        on_error: Policy | Mapping[str, Policy] | None = None,
        outbox: str | Outbox | None = None,
        retry_interval: float = 5.0,
        flush_interval: float = 1.0,
        buffer_size: int = 20_000,
        max_buffer: int = 50_000,
    ) -> None:
        if not backends:
            raise ValidationError("a tracker needs at least one backend")
        if not 0 < buffer_size <= max_buffer:
            raise ValidationError("need 0 < buffer_size <= max_buffer")
        from .fanout import Unavailable, resolve_policies
        from .hooks import new_plugin_manager
        from .outbox import Outbox

        if isinstance(backends[0], Unavailable):
            raise backends[0].error
        keys = list(urls) if urls else [_describe(b) for b in backends]
        policies = resolve_policies(keys, on_error)
        self._outbox = outbox if isinstance(outbox, Outbox) else Outbox(outbox)
        self._pm = new_plugin_manager()
        self._destinations: list[Destination] = []
        # Backends that refuse some values or steps; usually none, so the check is free.
        self._limited: list[tuple[str, Capabilities]] = []
        for backend, key, policy in zip(backends, keys, policies, strict=True):
            self._destinations.append(self._destination(backend, key, policy, retry_interval))
        self._primary = self._destinations[0].backend()  # never Unavailable: checked above
        self.url: str = self._destinations[0].name
        """Where the primary backend keeps the data, password redacted."""

        self._state = State.OPEN
        self._buffer: dict[Resource, list[MetricPoint]] = {}
        self._buffered = 0
        self._buffer_lock = threading.Lock()  # guards _buffer and _buffered
        self._taken = threading.Condition(self._buffer_lock)  # a drain took the buffer
        self._write_lock = threading.RLock()  # one drain-and-write at a time, in order
        self._buffer_size = buffer_size
        self._max_buffer = max_buffer
        self._flush_interval = flush_interval
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None
        self._background_error: BaseException | None = None
        _open_trackers.add(self)
        for destination in self._destinations:
            if destination.waiting:
                self._replay_at_start(destination)

    def __repr__(self) -> str:
        more = f" +{len(self._destinations) - 1}" if len(self._destinations) > 1 else ""
        return f"<Tracker {self.url}{more} {self._state.value}>"

    @property
    def capabilities(self) -> Capabilities:
        """What the primary backend keeps and how it deviates."""
        return self._primary.caps

    @property
    def outbox(self) -> Outbox:
        """Where writes that a backend could not take wait (see ``on_error``)."""
        return self._outbox

    def _destination(
        self, backend: object, key: str, policy: Policy, retry_interval: float
    ) -> Destination:
        from .fanout import Destination, Unavailable
        from .urls import redact_url

        name = redact_url(key)
        if isinstance(backend, Unavailable):  # opened when first needed
            hooks, build = None, backend.build
        else:
            hooks, build = self._attach(backend, name), (lambda: backend)
        attach = lambda: self._attach(build(), name)  # noqa: E731
        return Destination(key, name, policy, attach, self._outbox, retry_interval, hooks)

    def _attach(self, backend: object, name: str) -> BackendHooks:
        """Register a backend in this tracker's plugin manager and hand out its hooks."""
        from .hooks import BackendHooks, check_hooks

        self._pm.register(backend, name=f"{len(self._pm.get_plugins())}:{name}")
        check_hooks(self._pm, backend, name)
        for destination in self._destinations:
            if destination.hooks is not None:
                destination.hooks.refresh()  # keep each caller to its own backend
        hooks = BackendHooks(self._pm, backend, name)
        if hooks.caps.limited:
            self._limited.append((name, hooks.caps))
        return hooks

    def _replay_at_start(self, destination: Destination) -> None:
        try:
            destination.replay()
        except Exception:
            if destination.policy == "raise":
                raise

    # -- lolpop's operations -----------------------------------------------------------------

    def log_metric(
        self,
        resource: object,
        key: str,
        value: float,
        step: int = 0,
        timestamp: int | None = None,
    ) -> None:
        """Log ``value`` for ``key`` at ``step`` (default 0) and ``timestamp`` (ms, default
        now). Validated now, written in the next batch; reads see it at once."""
        if self._state is not State.OPEN or self._background_error is not None:
            self._ensure_open()  # the hot path tests the two conditions inline
        resource = check.to_resource(resource)
        if self._limited:
            point = self._point(key, value, step, timestamp)
        else:  # the usual case: no backend refuses any valid value
            point = check.check_point(key, value, step, timestamp)
        with self._buffer_lock:
            self._buffer.setdefault(resource, []).append(point)
            self._buffered += 1
            buffered = self._buffered
        if buffered >= self._buffer_size:
            self._wake_flusher(buffered)
        elif self._flusher is None:
            self._start_flusher()

    def get_metric(self, resource: object, key: str) -> float | None:
        """The latest value of ``key`` (greatest ``(step, timestamp, value)``), or None."""
        resource = self._read(resource)
        return self._primary.get_metric(resource, check.check_key(key))

    def log_metrics(
        self,
        resource: object,
        metrics: Mapping[str, float | Mapping[str, float]],
        perf_metric: str | None = None,
        *,
        step: int = 0,
        timestamp: int | None = None,
    ) -> None:
        """Log a flat ``{name: value}`` or lolpop's ``{split: {name: value}}`` (stored as
        ``<split>_<name>``) at one step and timestamp. With ``perf_metric``, its value
        (valid split, else train) becomes the resource's performance record. All or
        nothing: a bad value or a missing perf metric writes nothing."""
        self._ensure_open()
        resource = check.to_resource(resource)
        flat = flatten(metrics)
        timestamp = check.check_timestamp("log_metrics", timestamp)
        points = [self._point(key, value, step, timestamp) for key, value in flat.items()]
        perf = None
        if perf_metric is not None:
            perf = PerfRecord(check.check_key(perf_metric), perf_value(metrics, perf_metric))
        self._write(LogMetrics(resource, points, perf))

    def log_points(
        self, resource: object, points: Iterable[MetricPoint], perf: PerfRecord | None = None
    ) -> None:
        """Log points as they are (e.g. another tracker's history) and, unless ``perf`` is
        None, set the performance record, in one all-or-nothing write."""
        self._ensure_open()
        resource = check.to_resource(resource)
        checked = [self._point(*point) for point in points]
        if perf is not None:
            perf = PerfRecord(
                check.check_key(perf.metric), check.check_value(perf.metric, perf.value)
            )
        self._write(LogMetrics(resource, checked, perf))

    def copy_metrics(self, source: object, target: object) -> None:
        """Copy the full history and the performance record of exactly ``source`` into
        ``target`` (which may already have metrics), in every backend."""
        self._ensure_open()
        src, dst = check.to_resource(source), check.to_resource(target)
        if src != dst:
            self._write(CopyMetrics(src, dst))

    def log_prediction_metrics(
        self,
        job: object,
        predictions: object,
        problem_type: ProblemType | None = None,
        *,
        step: int = 0,
        timestamp: int | None = None,
    ) -> dict[str, float]:
        """Log the summary metrics of ``predictions`` (list, numpy array, pandas Series)
        for the prediction ``job``, at one step and timestamp, and return them (see
        :mod:`trackplug.predictions`)."""
        self._ensure_open()
        from .predictions import summarize

        resource = check.to_resource(job)
        summary = summarize(predictions, problem_type)
        timestamp = check.check_timestamp("log_prediction_metrics", timestamp)
        points = [self._point(key, value, step, timestamp) for key, value in summary.items()]
        self._write(LogPredictions(resource, points))
        return summary

    # -- reads ----------------------------------------------------------------------------

    def history(self, resource: object, key: str) -> list[MetricPoint]:
        """Every point of ``key``, ordered by ``(step, timestamp, value)``."""
        resource = self._read(resource)
        return self._primary.history(resource, check.check_key(key))

    def latest(self, resource: object) -> dict[str, float]:
        """``{key: latest value}`` for every key of ``resource``, sorted by key."""
        return self._primary.latest(self._read(resource))

    def resources(self) -> list[str]:
        """The ids of every resource that has metrics, sorted."""
        self._read()
        return self._primary.resources()

    def perf(self, resource: object) -> PerfRecord | None:
        """The performance record that ``log_metrics(..., perf_metric=...)`` last set."""
        return self._primary.get_perf(self._read(resource))

    def best(
        self, key: str, order: Literal["max", "min"] = "max", limit: int = 1
    ) -> list[tuple[str, float]]:
        """Up to ``limit`` ``(resource id, latest value of key)``, best first; ties by id.
        Resources without ``key`` or whose latest value is NaN are not ranked."""
        key = check.check_key(key)
        if order not in ("max", "min"):
            raise ValidationError(f"order {order!r} is invalid: use 'max' or 'min'")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValidationError(f"limit {limit!r} is invalid: use a positive integer")
        self._read()
        return self._primary.best(key, order, limit)

    # -- lifecycle ------------------------------------------------------------------------

    def flush(self) -> None:
        """Write every buffered point to every backend and make it durable there (or in
        the outbox, for a failing backend whose policy is ``spool``)."""
        self._ensure_open()
        with self._write_lock:
            self._drain()
            _raise_first([destination.flush() for destination in self._destinations])

    def sync(self) -> int:
        """Replay every write waiting in the outbox for this tracker's backends, in order;
        returns how many were sent. Raises on the first that still fails."""
        self._ensure_open()
        with self._write_lock:
            self._drain()
            return sum(d.replay() for d in self._destinations if d.waiting)

    def close(self) -> None:
        """Flush, stop the background flusher and close every backend. Idempotent."""
        if self._state is State.CLOSED:
            return
        try:
            self.flush()
        finally:
            self._state = State.CLOSED
            _open_trackers.discard(self)
            self._stop_flusher()
            for destination in self._destinations:
                if destination.hooks is not None:
                    destination.hooks.close()
            self._outbox.close()

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_state", State.CLOSED) is State.OPEN:
            self.close()

    # -- internals ------------------------------------------------------------------------

    def _ensure_open(self) -> None:
        if self._state is not State.OPEN:
            raise ClosedError(f"tracker {self.url} is closed; open a new one with connect()")
        error, self._background_error = self._background_error, None
        if error is not None:
            raise error

    def _redact(self, text: str) -> str:
        """``text`` (an error message, which may quote a backend's URL) with every
        backend's URL password redacted."""
        from .urls import secrets_of

        for destination in self._destinations:
            for secret, shown in secrets_of(destination.url).items():
                text = text.replace(secret, shown)
        return text

    def _point(self, key: str, value: object, step: object, timestamp: object) -> MetricPoint:
        """Validate one point against the contract and every backend's capabilities."""
        point = check.check_point(key, value, step, timestamp)
        for name, caps in self._limited:
            if caps.rejects(point.value) or caps.rejects_step(point.step):
                raise UnsupportedValueError(
                    f"metric {point.key!r}: value {point.value!r} at step {point.step} cannot "
                    f"be kept by backend {name} (see its capabilities); nothing was written"
                )
        return point

    def _read(self, resource: object = None) -> Resource:
        """Prepare a read: check state, normalize, and drain so reads see every write."""
        self._ensure_open()
        normalized = check.to_resource(resource) if resource is not None else None
        self._drain()
        return normalized  # type: ignore[return-value]  # None only when none was given

    def _write(self, write: Write) -> None:
        """Drain the buffer, then give one write to every backend, in order."""
        with self._write_lock:
            self._drain()
            self._deliver(write)

    def _deliver(self, write: Write) -> None:
        """Every backend gets the write, whatever another one does; then the first error
        of a backend whose policy is ``raise`` is raised."""
        _raise_first([destination.deliver(write) for destination in self._destinations])

    def _drain(self) -> None:
        """Send the buffer to every backend. Holding the write lock while taking the
        buffer keeps batches in order and makes a reader wait for a write in flight."""
        with self._write_lock:
            with self._buffer_lock:
                batch, self._buffer, self._buffered = self._buffer, {}, 0
                self._taken.notify_all()
            if not batch:
                return
            try:
                self._deliver(LogBatch(batch))
            except BaseException:
                self._requeue(batch)
                raise

    def _requeue(self, batch: dict[Resource, list[MetricPoint]]) -> None:
        """Put a batch that failed back in front of the buffer (replays collapse)."""
        with self._buffer_lock:
            for resource, points in self._buffer.items():
                batch.setdefault(resource, []).extend(points)
            self._buffer = batch
            self._buffered = sum(len(points) for points in batch.values())

    def _wake_flusher(self, buffered: int) -> None:
        if buffered >= self._max_buffer:
            self._make_room()
        elif self._flusher is None:
            self._start_flusher()
        self._wake.set()

    def _make_room(self) -> None:
        """Back-pressure at ``max_buffer``, so memory stays bounded: wait until the flusher
        takes the buffer (it is writing the batch before it), rather than writing it here
        behind that batch; without a flusher to wait for, write it here."""
        with self._taken:
            while self._buffered >= self._max_buffer:
                flusher = self._flusher
                if (
                    flusher is None
                    or not flusher.is_alive()
                    or flusher is threading.current_thread()
                ):
                    break
                if self._background_error is not None or self._state is not State.OPEN:
                    return  # the next call raises it
                self._wake.set()
                self._taken.wait(timeout=0.05)  # and look again: the flusher may have died
            else:
                return
        self._drain()

    def _start_flusher(self) -> None:
        with self._buffer_lock:
            if self._flusher is not None:
                return
            self._flusher = threading.Thread(
                target=_flush_in_background,
                args=(weakref.ref(self), self._wake, self._flush_interval),
                name=f"trackplug-flusher {self.url}",
                daemon=True,
            )
            self._flusher.start()

    def _stop_flusher(self) -> None:
        flusher, self._flusher = self._flusher, None
        self._wake.set()
        if flusher is not None and flusher is not threading.current_thread():
            flusher.join()

    def _background_flush(self) -> bool:
        """One round of the flusher; False once the tracker is closed."""
        if self._state is not State.OPEN:
            return False
        try:
            self._drain()
        except Exception as exc:  # raised again by the next call in the user's thread
            self._background_error = exc
        return True


def _flush_in_background(
    ref: weakref.ReferenceType[Tracker], wake: threading.Event, interval: float
) -> None:
    """The flusher thread: holds the tracker only while flushing, so it can be collected."""
    while True:
        wake.wait(interval)
        wake.clear()
        tracker = ref()
        if tracker is None or not tracker._background_flush():
            return
        del tracker


def _raise_first(errors: list[Exception | None]) -> None:
    for error in errors:
        if error is not None:
            raise error


def flatten(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """``{split: {name: value}}`` -> ``{"<split>_<name>": value}``; flat entries stay."""
    if not isinstance(metrics, Mapping):
        raise check.InvalidTypeError(
            f"metrics of type {type(metrics).__name__} are not a mapping: "
            "pass {name: value} or {split: {name: value}}"
        )
    flat: dict[str, Any] = {}
    for name, value in metrics.items():
        if isinstance(value, Mapping):
            flat.update({f"{name}_{inner}": v for inner, v in value.items()})
        else:
            flat[name] = value
    return flat


def perf_value(metrics: Mapping[str, Any], perf_metric: str) -> float:
    """The value that ranks a resource: the valid split's, else the train split's (nested
    metrics), or the flat entry itself. Raises before anything is written."""
    for split in PERF_SPLITS:
        inner = metrics.get(split)
        if isinstance(inner, Mapping) and perf_metric in inner:
            return check.check_value(f"{split}_{perf_metric}", inner[perf_metric])
    if perf_metric in metrics and not isinstance(metrics[perf_metric], Mapping):
        return check.check_value(perf_metric, metrics[perf_metric])
    raise ValidationError(
        f"perf_metric {perf_metric!r} is not among the metrics: looked for "
        f"{', '.join(perf_keys(perf_metric))}; nothing was written"
    )


def perf_keys(perf_metric: str) -> list[str]:
    """The stored keys a perf metric's value comes from, in the order they are looked at."""
    return [f"{split}_{perf_metric}" for split in PERF_SPLITS] + [perf_metric]


def _describe(backend: object) -> str:
    from .urls import redact_url

    url = getattr(backend, "url", None)
    return redact_url(url) if isinstance(url, str) else type(backend).__name__


def connect(
    *urls: str,
    on_error: Policy | Mapping[str, Policy] | None = None,
    outbox: str | Outbox | None = None,
    registry: Registry | None = None,
    retry_interval: float = 5.0,
    flush_interval: float = 1.0,
    buffer_size: int = 20_000,
    max_buffer: int = 50_000,
    **options: Any,
) -> Tracker:
    """Open a tracker on one or more URLs; the first is the primary (reads come from it).

    With no URL: ``$TRACKPLUG_URL``, else ``sqlite:///trackplug.db``. ``on_error`` sets
    each backend's failure policy (see :class:`Tracker`); a secondary backend that cannot
    even be opened under ``warn`` or ``spool`` is opened again when it is next needed.
    ``options`` go to every backend's factory (e.g. ``experiment=`` for MLflow).
    While a test captures metrics (``trackplug.testing``), the capture decides where the
    tracker writes (:mod:`trackplug.redirect`).
    """
    from .redirect import installed
    from .registry import default_url

    chosen = list(urls) or [default_url()]

    found = registry or _default_registry()

    def open_urls(*extra: tuple[str, object]) -> Tracker:
        """The tracker on ``chosen`` (and ``extra`` ``(url, backend)`` destinations)."""
        from .fanout import resolve_policies

        policies = resolve_policies(chosen, on_error)
        backends: list[object] = []
        try:
            for url, policy in zip(chosen, policies, strict=True):
                backends.append(_open_backend(found, url, policy, not backends, options))
        except BaseException:
            for backend in backends:
                close = getattr(backend, "close", None)
                if callable(close):
                    close()
            raise
        extra_policies: dict[str, Policy] = {url: "raise" for url, _ in extra}
        return Tracker(
            *backends,
            *(backend for _, backend in extra),
            urls=[*chosen, *extra_policies],
            on_error={**dict(zip(chosen, policies, strict=True)), **extra_policies},
            outbox=outbox,
            retry_interval=retry_interval,
            flush_interval=flush_interval,
            buffer_size=buffer_size,
            max_buffer=max_buffer,
        )

    redirect = installed()  # trackplug.testing's capture, while a test has it on
    return open_urls() if redirect is None else redirect.connect(chosen, open_urls, found)


def _open_backend(
    registry: Registry, url: str, policy: Policy, primary: bool, options: dict[str, Any]
) -> object:
    """The backend for ``url``; for a secondary that may fail, a placeholder if it can't
    be opened now (an unknown scheme is still an error: no retry will fix it)."""
    entry = registry.lookup(url)
    try:
        return entry.factory(url, **options)
    except Exception as exc:
        if primary or policy == "raise":
            raise
        from .fanout import BackendWarning, Unavailable
        from .urls import redact_url

        warnings.warn(
            f"backend {redact_url(url)} cannot be opened ({type(exc).__name__}: {exc}); "
            f"on_error={policy!r}: trying again when it is needed",
            BackendWarning,
            stacklevel=3,
        )
        return Unavailable(url, lambda: entry.factory(url, **options), exc)


_registry: Registry | None = None


def _default_registry() -> Registry:
    """The registry of installed plugins, discovered on first use."""
    global _registry
    if _registry is None:
        from .registry import Registry

        _registry = Registry()
    return _registry


_open_trackers: weakref.WeakSet[Tracker] = weakref.WeakSet()


class CloseWarning(UserWarning):
    """A tracker still open at interpreter exit could not be flushed and closed: points it
    had not written yet may be lost. The other open trackers are closed all the same."""


@atexit.register
def _close_open_trackers() -> None:
    """Interpreter exit flushes and closes every tracker still open; one that fails is
    reported and the others are still closed (an exception here would skip them)."""
    for tracker in list(_open_trackers):
        try:
            tracker.close()
        except Exception as exc:
            error = tracker._redact(f"{type(exc).__name__}: {exc}")
            warnings.warn(
                f"tracker {tracker.url} could not be flushed and closed at exit (points it "
                f"had not written may be lost): {error}",
                CloseWarning,
                stacklevel=1,
            )
