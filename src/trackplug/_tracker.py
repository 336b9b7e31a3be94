"""The facade users call: ``Tracker`` and ``connect``.

Everything that is the same for every backend happens here, once: resources are
normalized, input is validated, lolpop's nested metrics are flattened, predictions are
summarized, and point writes are buffered (:mod:`trackplug._buffer`). A call flows::

    log_metric -> validate -> buffer --(size / interval / flush / read / close / exit)-->
        log_metric hook of every backend, in batches

Reads drain the buffer first (a caller always reads its own writes) and are answered by
the primary backend, the first one given. Writes go to every backend, each under its own
failure policy (:mod:`trackplug._fanout`). ``connect`` opens backends from URLs
(:mod:`trackplug._opening`).
"""

from __future__ import annotations

import atexit
import enum
import numbers
import os
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from . import _validation as check
from ._buffer import Buffer, Row
from ._errors import (
    ClosedError,
    CloseWarning,
    InvalidTypeError,
    UnsupportedValueError,
    ValidationError,
)
from ._model import Batch, Capabilities, Columns, MetricPoint, PerfRecord, Resource
from ._validation import flatten, perf_value
from ._writes import CopyMetrics, LogBatch, LogMetrics, LogParams, LogPredictions, SetTags, Write

# The machinery of opening a tracker is imported by the first connect(), not by
# ``import trackplug`` (its budget is 60 ms); log_metric needs none of it.
if TYPE_CHECKING:
    from ._fanout import Destination, Policy
    from ._hooks import BackendHooks, ColumnArrays
    from ._model import ParamValue
    from ._opening import Slot
    from ._outbox import Outbox
    from ._predictions import ProblemType
    from ._registry import Registry
    from ._runs import Run, Runs, RunStatus

__all__ = ["CloseWarning", "Tracker", "connect", "flatten", "perf_value"]

#: What ``_read`` gets for reads of no resource (``None`` is a resource, and invalid).
_NO_RESOURCE: Any = object()


class _Settings(NamedTuple):
    """How a tracker runs (see :class:`Tracker`'s parameters)."""

    outbox: str | Outbox | None
    retry_interval: float
    flush_interval: float
    buffer_size: int
    max_buffer: int


def _checked(settings: _Settings) -> _Settings:
    """``settings`` if each is of a type and in a range a tracker can run with."""
    from ._outbox import Outbox

    outbox, retry_interval, flush_interval, buffer_size, max_buffer = settings
    if not (outbox is None or isinstance(outbox, Outbox) or _is_file_path(outbox)):
        raise InvalidTypeError(
            f"outbox {check.short_repr(outbox)} is invalid: give a file path (str or Path)"
        )
    _check_seconds("retry_interval", retry_interval, 0.0)
    _check_seconds("flush_interval", flush_interval, 0.001)
    sizes = (
        check.check_limit(buffer_size, "buffer_size"),
        check.check_limit(max_buffer, "max_buffer"),
    )
    if sizes[0] > sizes[1]:
        raise ValidationError("need buffer_size <= max_buffer")
    return _Settings(outbox, float(retry_interval), float(flush_interval), *sizes)


def _is_file_path(path: object) -> bool:
    from pathlib import Path

    return isinstance(path, str | os.PathLike) and Path(path).name not in ("", "..")


def _check_seconds(name: str, seconds: object, least: float) -> None:
    """A number of seconds from ``least`` to a year (a thread waits that long at most)."""
    if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real):
        raise InvalidTypeError(
            f"{name} {check.short_repr(seconds)} of type {type(seconds).__name__} is invalid: "
            "give a number of seconds"
        )
    if not least <= seconds <= _YEAR:  # type: ignore[operator]  # NaN too
        raise ValidationError(
            f"{name} {check.short_repr(seconds)} is invalid: give {least:g} to {_YEAR:g} seconds"
        )


_YEAR = 365 * 24 * 3600.0


class State(enum.Enum):
    OPEN = "open"  # accepting writes and reads
    CLOSED = "closed"  # flushed and released; every call raises ClosedError


# A plain global for log_metric's test: ``State.OPEN`` is an enum descriptor lookup (0.15 µs,
# about a tenth of the call).
_OPEN = State.OPEN


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
        from ._fanout import resolve_policies
        from ._opening import Slot

        keys = (None if urls is None else _names(urls)) or [_describe(b) for b in backends]
        if len(keys) != len(backends):
            raise ValidationError(f"{len(backends)} backends but {len(keys)} urls")
        policies = resolve_policies(keys, on_error)
        slots = [
            Slot(key, policy, backend, _given(backend))
            for key, policy, backend in zip(keys, policies, backends, strict=True)
        ]
        settings = _Settings(outbox, retry_interval, flush_interval, buffer_size, max_buffer)
        self._open(slots, settings)

    @classmethod
    def _of_slots(cls, slots: list[Slot], settings: _Settings) -> Tracker:
        """A tracker on backends ``connect`` opened (some maybe not yet)."""
        tracker = cls.__new__(cls)
        tracker._open(slots, settings)
        return tracker

    def _open(self, slots: list[Slot], settings: _Settings) -> None:
        outbox, retry_interval, flush_interval, buffer_size, max_buffer = _checked(settings)
        from ._hooks import new_plugin_manager
        from ._outbox import Outbox

        if slots[0].backend is None and slots[0].error is not None:
            raise slots[0].error
        self._outbox = outbox if isinstance(outbox, Outbox) else Outbox(outbox)
        self._pm = new_plugin_manager()
        self._destinations: list[Destination] = []
        # Backends that refuse some values or steps; usually none, so the check is free.
        self._limited: list[tuple[str, Capabilities]] = []
        # What no exception leaving a backend may show: every URL, passwords and all.
        self._secrets = tuple(slot.url for slot in slots)
        for slot in slots:
            self._destinations.append(self._destination(slot, retry_interval))
        self._primary = self._destinations[0].backend()  # opened: checked above
        self.url: str = self._destinations[0].name
        """Where the primary backend keeps the data, password redacted."""

        self._state = State.OPEN
        self._open_runs: dict[str, Run] = {}
        self._buffer = Buffer(
            self._deliver_batch, buffer_size, max_buffer, flush_interval, self.url
        )
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

    def _destination(self, slot: Slot, retry_interval: float) -> Destination:
        from ._fanout import Destination
        from ._urls import redact_url

        name = redact_url(slot.url)
        hooks = None if slot.backend is None else self._attach(slot.backend, name)
        attach = lambda: self._attach(slot.build(), name)  # noqa: E731
        return Destination(slot.url, name, slot.policy, attach, self._outbox, retry_interval, hooks)

    def _attach(self, backend: object, name: str) -> BackendHooks:
        """Register a backend in this tracker's plugin manager and hand out its hooks."""
        from ._hooks import BackendHooks, check_backend_object, check_hooks

        check_backend_object(backend, name)
        self._pm.register(backend, name=f"{len(self._pm.get_plugins())}:{name}")
        check_hooks(self._pm, backend, name)
        for destination in self._destinations:
            if destination.hooks is not None:
                destination.hooks.refresh()  # keep each caller to its own backend
        hooks = BackendHooks(self._pm, backend, name, self._secrets)
        if hooks.caps.limited:
            self._limited.append((name, hooks.caps))
        return hooks

    def _replay_at_start(self, destination: Destination) -> None:
        try:  # a backend that must not fail waits for a replay under way elsewhere
            destination.replay(wait=destination.policy == "raise")
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
        if self._state is not _OPEN or self._buffer.error is not None:
            self._ensure_open()  # the hot path tests the two conditions inline
        rid = check.resource_id(resource)
        if self._limited:
            self._buffer.add((rid, *self._point(key, value, step, timestamp)))
        else:  # the usual case: no backend refuses any valid value
            self._buffer.add(check.check_entry(rid, key, value, step, timestamp))

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
        nothing: a bad value or a missing perf metric writes nothing. Without
        ``perf_metric`` the points are buffered as ``log_metric``'s are (durable after
        ``flush()``); with it, they and the record are written before the call returns."""
        self._ensure_open()
        resource = check.to_resource(resource)
        plain = None  # the common case: a flat {key: float}, buffered
        if perf_metric is None and not self._limited:
            plain = check.plain_row(metrics)
        flat = metrics if plain is not None else flatten(metrics)
        step = check.check_step("log_metrics", step)  # checked even when there is no point
        timestamp = check.check_timestamp("log_metrics", timestamp)
        if plain is not None:
            self._buffer.add_row(Row(resource.id, *plain, step, timestamp))
            return
        points = [self._point(key, value, step, timestamp) for key, value in flat.items()]
        if perf_metric is None:
            # Buffered like log_metric, as one entry (a batch holds all of the points or
            # none); writing each call as its own transaction cost 6x per point
            # (docs/performance.md).
            keys, values = [p.key for p in points], [p.value for p in points]
            self._buffer.add_row(Row(resource.id, tuple(keys), tuple(values), step, timestamp))
            return
        perf = PerfRecord(check.check_key(perf_metric), perf_value(metrics, perf_metric))
        self._write(LogMetrics(resource, tuple(points), perf))

    def log_points(
        self, resource: object, points: Iterable[MetricPoint], perf: PerfRecord | None = None
    ) -> None:
        """Log points as they are (e.g. another tracker's history) and, unless ``perf`` is
        None, set the performance record, in one all-or-nothing write."""
        self._ensure_open()
        resource = check.to_resource(resource)
        checked = [self._point(*check.check_point_row(row)) for row in check.check_rows(points)]
        if perf is not None:
            perf = check.check_perf(perf)
        self._write(LogMetrics(resource, tuple(checked), perf))

    def copy_metrics(self, source: object, target: object) -> None:
        """Copy the full history and the performance record of exactly ``source`` into
        ``target`` (which may already have metrics), in every backend."""
        self._ensure_open()
        src, dst = check.to_resource(source), check.to_resource(target)
        if src == dst:
            return
        if self._primary.has_params:  # a param the target holds otherwise: refused first
            self._check_params(dst, self._primary.get_params(src))
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
        :mod:`trackplug._predictions`)."""
        self._ensure_open()
        from ._predictions import summarize

        resource = check.to_resource(job)
        step = check.check_step("log_prediction_metrics", step)
        timestamp = check.check_timestamp("log_prediction_metrics", timestamp)
        summary = summarize(predictions, problem_type)
        points = [self._point(key, value, step, timestamp) for key, value in summary.items()]
        self._write(LogPredictions(resource, tuple(points)))
        return summary

    # -- params, tags and runs --------------------------------------------------------------

    def log_params(self, resource: object, params: Mapping[str, ParamValue]) -> None:
        """Log write-once params (JSON scalars): the same value again does nothing, another
        value raises :class:`~trackplug.ParamConflictError` and nothing is written."""
        from ._params import check_params

        self._ensure_open()
        resource = check.to_resource(resource)
        checked = check_params(params)
        self._require_params("params")
        if checked:
            self._check_params(resource, checked)
            self._write(LogParams(resource, checked))

    def set_tags(self, resource: object, tags: Mapping[str, str]) -> None:
        """Set string tags, replacing earlier values of the same keys."""
        from ._params import check_tags

        self._ensure_open()
        self._set_tags(check.to_resource(resource), check_tags(tags))

    def params(self, resource: object) -> dict[str, ParamValue]:
        """``{key: value}`` of every param of ``resource``, sorted; typed where the store
        keeps types (``capabilities.params``)."""
        resource = self._read(resource)
        self._require_params("a read of params")
        return self._primary.get_params(resource)

    def tags(self, resource: object) -> dict[str, str]:
        """``{key: value}`` of every tag a user set on ``resource``, sorted."""
        from ._params import user_tags

        resource = self._read(resource)
        self._require_params("a read of tags")
        return user_tags(self._primary.get_tags(resource))

    def start_run(
        self,
        name: str,
        params: Mapping[str, ParamValue] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Run:
        """Start a new run of ``name`` (see :mod:`trackplug._runs`): a new resource with a
        generated id, status ``running``; ``with`` ends it ``finished``, or ``failed`` on
        an exception. Never merges into an earlier run of the same name."""
        from ._params import check_params, check_tags
        from ._runs import Run, check_run_name, new_run_id, next_start_ms, start_tags

        self._ensure_open()
        name = check_run_name(name)
        checked_params = check_params({} if params is None else params)
        checked_tags = check_tags({} if tags is None else tags)
        self._require_params("runs")
        start = next_start_ms()
        run_id = new_run_id(name, start)
        while self._primary.get_tags(Resource(run_id)):  # taken in the same millisecond
            run_id = new_run_id(name, start)
        resource = Resource(run_id)
        self._set_tags(resource, {**checked_tags, **start_tags(name, start)})
        if checked_params:
            self._write(LogParams(resource, checked_params))
        run = Run(self, run_id, name, start)
        self._open_runs[run_id] = run
        return run

    def runs(
        self,
        name: str | None = None,
        *,
        status: RunStatus | None = None,
        params: Mapping[str, ParamValue] | None = None,
    ) -> Runs:
        """Every run (of ``name``, with ``status``, whose params include ``params``), oldest
        first, each with its params, user tags and latest metrics; ``.to_pandas()`` makes
        a DataFrame."""
        from ._params import RUN_NAME_TAG, check_params, param_text, user_tags
        from ._runs import Runs, check_run_name, check_status, run_info

        wanted = check_params({} if params is None else params)
        name = None if name is None else check_run_name(name)
        status = None if status is None else check_status(status)
        self._read()
        self._require_params("a list of runs")
        stored = {k: param_text(self._primary.caps.stored_param(v)) for k, v in wanted.items()}
        found = Runs()
        for rid in self._primary.tagged(RUN_NAME_TAG, name):
            resource = Resource(rid)
            held = self._primary.get_params(resource)
            if any(k not in held or param_text(held[k]) != t for k, t in stored.items()):
                continue
            tags = self._primary.get_tags(resource)
            info = run_info(rid, tags, held, user_tags(tags), self._primary.latest(resource))
            if status is None or info.status == status:
                found.append(info)
        found.sort(key=lambda run: (run.start, run.id))
        return found

    def _run_ids(self) -> list[str]:
        """Every run's id ([] for a backend without tags)."""
        from ._params import RUN_NAME_TAG

        self._read()
        return self._primary.tagged(RUN_NAME_TAG, None) if self._primary.has_params else []

    def _params_and_tags(self, resource: str) -> tuple[dict[str, ParamValue], dict[str, str]]:
        """Every param and tag (a run's own included); none for a backend without them."""
        normalized = self._read(resource)
        if not self._primary.has_params:
            return {}, {}
        return self._primary.get_params(normalized), self._primary.get_tags(normalized)

    def _end_run(self, run: Run, status: str, end_ms: int) -> None:
        from ._params import RUN_END_TAG, RUN_STATUS_TAG

        self._ensure_open()
        self._set_tags(Resource(run.id), {RUN_STATUS_TAG: status, RUN_END_TAG: str(end_ms)})
        self._open_runs.pop(run.id, None)

    def _set_tags(self, resource: Resource, tags: Mapping[str, str]) -> None:
        self._require_params("tags")
        if tags:
            self._write(SetTags(resource, tags))

    def _require_params(self, what: str) -> None:
        """Refuse params, tags and runs unless every open backend keeps them."""
        for destination in self._destinations:
            if destination.hooks is not None:
                destination.hooks.require_params(what)

    def _check_params(self, resource: Resource, params: Mapping[str, ParamValue]) -> None:
        """With several backends, a conflict with what the primary holds is refused before
        any of them is written, so they stay in step; one backend enforces the rule itself."""
        from ._params import raise_on_conflict

        if params and len(self._destinations) > 1:
            held = self._primary.get_params(resource)
            raise_on_conflict(resource, held, params, self._primary.caps)

    # -- reads ----------------------------------------------------------------------------

    def history(self, resource: object, key: str) -> list[MetricPoint]:
        """Every point of ``key``, ordered by ``(step, timestamp, value)``."""
        resource = self._read(resource)
        return self._primary.history(resource, check.check_key(key))

    def iter_history(
        self,
        resource: object,
        key: str,
        *,
        page_size: int = 10_000,
        since: tuple[int, int] | None = None,
    ) -> Iterator[MetricPoint]:
        """The points of :meth:`history`, in its order, read ``page_size`` at a time: a
        history of millions of points in bounded memory, on backends that page natively
        (the ``history_page`` hook; others read it whole). With ``since=(step,
        timestamp)``, only the points at or after it in that order (``(point.step,
        point.timestamp) >= since``): a reader that follows a live run asks for what is
        new, and a backend that seeks (``history_page_after``) reads nothing before it.
        Arguments are checked at the call; a point logged while iterating appears if it
        sorts after the current page."""
        resource = self._read(resource)
        key = check.check_key(key)
        size = check.check_limit(page_size, "page_size")
        start = None if since is None else check.check_since(since)
        return self._iter_pages(resource, key, size, start)

    def _iter_pages(
        self, resource: Resource, key: str, size: int, since: tuple[int, int] | None = None
    ) -> Iterator[MetricPoint]:
        for page in self._pages(resource, key, size, since):
            yield from page

    def _pages(
        self, resource: object, key: str, size: int, since: tuple[int, int] | None = None
    ) -> Iterator[list[MetricPoint]]:
        """:meth:`iter_history` a page at a time (``copy`` writes each before the next)."""
        resource = self._read(resource)
        for page in self._primary.history_pages(resource, check.check_key(key), size, since):
            yield page
            self._buffer.drain()  # read-your-writes holds page by page

    def history_columns(
        self, resource: object, key: str, *, numpy: bool = False, page_size: int = 10_000
    ) -> Columns:
        """The points of :meth:`history` as three columns, ``steps``, ``timestamps`` (ms)
        and ``values``, for analysis code: compact ``array.array`` columns (8 bytes a value, no
        object per point; numpy reads them without a copy), or with ``numpy=True`` numpy
        arrays (int64, int64, float64; numpy is imported here). Values are exact (NaN,
        ±inf, -0.0). Read ``page_size`` points at a time, as columns where the backend
        reads them so (the ``history_columns_page`` hook: no object per point), else as
        :meth:`iter_history`'s pages; either way a long history costs its columns and a page."""
        from array import array

        as_numpy = check.check_flag(numpy, "numpy")
        steps, stamps, values = array("q"), array("q"), array("d")
        for page_steps, page_stamps, page_values in self._column_pages(resource, key, page_size):
            steps.extend(page_steps)
            stamps.extend(page_stamps)
            values.extend(page_values)
        if not as_numpy:
            return Columns(steps, stamps, values)
        try:
            import numpy as np
        except ImportError:
            raise ImportError(
                "history_columns(numpy=True) needs numpy: pip install numpy"
            ) from None
        return Columns(
            *(np.frombuffer(column, dtype=column.typecode) for column in (steps, stamps, values))
        )

    def _column_pages(
        self, resource: object, key: str, page_size: int = 10_000
    ) -> Iterator[ColumnArrays]:
        """The pages of :meth:`history_columns` as they are read (``array`` columns of at
        most ``page_size`` points each), for readers that hold one page at a time."""
        size = check.check_limit(page_size, "page_size")
        resource = self._read(resource)
        for page in self._primary.history_columns(resource, check.check_key(key), size):
            yield page
            self._buffer.drain()  # read-your-writes holds page by page, as in iter_history

    def frame(
        self,
        resources: object | Iterable[object] | None = None,
        keys: str | Iterable[str] | None = None,
    ) -> Any:
        """The metrics as a long ("tidy") pandas DataFrame, one row per point, with the
        columns ``resource``, ``run`` (the run's name for a run's resource, else None),
        ``key``, ``step`` (int64), ``timestamp`` (int64 ms since the epoch, exact; see
        ``pd.to_datetime(df.timestamp, unit="ms")``) and ``value`` (float64): the rows of
        ``trackplug export``. ``resources`` is one resource or several (default: all),
        ``keys`` one key or several (default: all). Rows are sorted by resource and key,
        then in history order. Wide, one column per key:
        ``df.pivot_table(index=["resource", "step"], columns="key", values="value")``.
        Needs pandas (imported here); histories are read a page of columns at a time
        (no object per point)."""
        from ._export import frame_of

        try:
            import pandas as pd  # type: ignore[import-untyped]  # an optional dependency
        except ImportError:
            raise ImportError("Tracker.frame() needs pandas: pip install pandas") from None
        chosen = None if resources is None else [r.id for r in self._resources_of(resources)]
        wanted = None if keys is None else {check.check_key(k) for k in _several_keys(keys)}
        return frame_of(pd, self, chosen, None if wanted is None else wanted.__contains__)

    def _resources_of(self, resources: object) -> list[Resource]:
        """One resource, or an iterable of them, normalized."""
        single = isinstance(resources, tuple) or hasattr(resources, "id")
        items = [resources] if single else check.several(resources, "resources", "resources")
        return [self._read(resource) for resource in items]

    def history_sampled(self, resource: object, key: str, max_points: int) -> list[MetricPoint]:
        """At most ``max_points`` (at least 4) points of ``key``'s history, for a chart: all
        of them when there are no more; else, in history order, the first and last points
        and the least and greatest value of each bucket of the step range, so no spike
        disappears (docs/semantics.md, "Sampled history"). Done in the store where the
        backend can (SQLite, PostgreSQL); else sampled here from :meth:`history`."""
        resource = self._read(resource)
        key = check.check_key(key)
        return self._primary.history_sampled(resource, key, check.check_max_points(max_points))

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
        self,
        key: str,
        order: Literal["max", "min"] = "max",
        limit: int = 1,
        *,
        run_name: str | None = None,
    ) -> list[tuple[str, float]]:
        """Up to ``limit`` ``(resource id, latest value of key)``, best first; ties by id.
        Resources without ``key`` or whose latest value is NaN are not ranked. With
        ``run_name``, only the runs of that name are ranked."""
        key = check.check_key(key)
        order = check.check_order(order)
        limit = check.check_limit(limit)
        if run_name is None:
            self._read()
            return self._primary.best(key, order, limit)
        from ._model import rank

        latest = [(run.id, run.metrics.get(key)) for run in self.runs(run_name)]
        return rank(((rid, v) for rid, v in latest if v is not None), order, limit)

    # -- lifecycle ------------------------------------------------------------------------

    def flush(self) -> None:
        """Write every buffered point to every backend and make it durable there (or in
        the outbox, for a failing backend whose policy is ``spool``)."""
        self._ensure_open()
        with self._buffer.write_lock:
            self._buffer.drain()
            _raise_first([destination.flush() for destination in self._destinations])

    def sync(self) -> int:
        """Replay every write waiting in the outbox for this tracker's backends, in order;
        returns how many were sent. Raises on the first that still fails."""
        self._ensure_open()
        with self._buffer.write_lock:
            self._buffer.drain()
            return sum(d.replay() for d in self._destinations if d.waiting)

    def close(self) -> None:
        """Flush, stop the background flusher and close every backend. Idempotent."""
        if self._state is State.CLOSED:
            return
        try:
            for run in list(self._open_runs.values()):
                run.end()  # a script that never ended its run finished it (MLflow's rule)
            self.flush()
        finally:
            self._state = State.CLOSED
            _open_trackers.discard(self)
            self._buffer.stop()
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
            _close_or_warn(self, "when it was garbage-collected")

    # -- internals ------------------------------------------------------------------------

    def _ensure_open(self) -> None:
        if self._state is not State.OPEN:
            raise ClosedError(f"tracker {self.url} is closed; open a new one with connect()")
        error, self._buffer.error = self._buffer.error, None
        if error is not None:
            raise error

    def _redact(self, text: str) -> str:
        """``text`` (an error message, which may quote a backend's URL) with every
        backend's URL password redacted."""
        from ._urls import secrets_of

        for destination in self._destinations:
            for secret, shown in secrets_of(destination.url).items():
                text = text.replace(secret, shown)
        return text

    def _point(self, key: object, value: object, step: object, timestamp: object) -> MetricPoint:
        """Validate one point against the contract and every backend's capabilities."""
        point = check.check_point(key, value, step, timestamp)
        for name, caps in self._limited:
            if caps.rejects(point.value) or caps.rejects_step(point.step):
                raise UnsupportedValueError(
                    f"metric {point.key!r}: value {point.value!r} at step {point.step} cannot "
                    f"be kept by backend {name} (see its capabilities); nothing was written"
                )
        return point

    def _read(self, resource: object = _NO_RESOURCE) -> Resource:
        """Prepare a read: check state, normalize, and drain so reads see every write."""
        self._ensure_open()
        normalized = check.to_resource(resource) if resource is not _NO_RESOURCE else None
        self._buffer.drain()
        return normalized  # type: ignore[return-value]  # None only when none was given

    def _write(self, write: Write) -> None:
        """Drain the buffer, then give one write to every backend, in order."""
        with self._buffer.write_lock:
            self._buffer.drain()
            self._deliver(write)

    def _deliver(self, write: Write) -> None:
        """Every backend gets the write, whatever another one does; then the first error
        of a backend whose policy is ``raise`` is raised."""
        _raise_first([destination.deliver(write) for destination in self._destinations])

    def _deliver_batch(self, batch: Batch) -> None:
        self._deliver(LogBatch(batch))


def _raise_first(errors: list[Exception | None]) -> None:
    for error in errors:
        if error is not None:
            raise error


def _names(urls: object) -> list[str]:
    """``Tracker(urls=…)``: a sequence of strings, one a backend."""
    names = check.several(urls, "urls", "a sequence of URL strings")
    if not all(isinstance(name, str) for name in names):
        raise InvalidTypeError(f"urls {check.short_repr(urls)} are not all strings")
    return names  # type: ignore[return-value]


def _given(backend: object) -> Callable[[], object]:
    """Builds a backend given as an object: that object."""
    return lambda: backend


def _describe(backend: object) -> str:
    from ._urls import redact_url

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
    Each backend's factory gets the ``options`` it declares (e.g. ``experiment=`` for
    MLflow); an option that no backend takes is a :class:`~trackplug.ValidationError`.
    While a test captures metrics (``trackplug.testing``), the capture decides where the
    tracker writes (:mod:`trackplug.redirect`).
    """
    from ._fanout import resolve_policies
    from ._registry import default_registry, default_url
    from .redirect import installed

    chosen = list(urls) or [default_url()]
    found = registry or default_registry()
    # checked here too, not only when backends open: a capture opens none of them
    resolve_policies(chosen, on_error)
    settings = _checked(_Settings(outbox, retry_interval, flush_interval, buffer_size, max_buffer))

    def open_urls(*extra: tuple[str, object]) -> Tracker:
        """The tracker on ``chosen`` (and ``extra`` ``(url, backend)`` destinations, whose
        failures are raised)."""
        from ._opening import Slot, close_slots, open_slots

        slots = open_slots(chosen, on_error, found, options)
        added = [Slot(url, "raise", backend, _given(backend)) for url, backend in extra]
        try:
            return Tracker._of_slots([*slots, *added], settings)
        except BaseException:
            close_slots(slots)
            raise

    redirect = installed()  # trackplug.testing's capture, while a test has it on
    return open_urls() if redirect is None else redirect.connect(chosen, open_urls, found)


_open_trackers: weakref.WeakSet[Tracker] = weakref.WeakSet()


def _close_or_warn(tracker: Tracker, when: str) -> None:
    """Close a tracker nobody closed; a failure is a :class:`CloseWarning` naming it (an
    exception here would print an "Exception ignored" traceback, or skip other trackers)."""
    try:
        tracker.close()
    except Exception as exc:
        error = tracker._redact(f"{type(exc).__name__}: {exc}")
        warnings.warn(
            f"tracker {tracker.url} could not be flushed and closed {when} (points it had "
            f"not written may be lost): {error}",
            CloseWarning,
            stacklevel=2,
        )


@atexit.register
def _close_open_trackers() -> None:
    """Interpreter exit flushes and closes every tracker still open; one that fails is
    reported and the others are still closed."""
    for tracker in list(_open_trackers):
        _close_or_warn(tracker, "at exit")


def _several_keys(keys: object) -> list[object]:
    """One key, or an iterable of them."""
    return check.several(keys, "keys", "metric keys")
