"""Moving data: ``trackplug.copy(src, dst)`` between stores (metrics, params, tags and
runs), ``trackplug.sync()`` from the outbox to the backends it holds writes for.

Works between any two backends (memory, SQLite, PostgreSQL, MLflow) because it only uses
the facade. Each key's points are sent in batches, minus the points the target already
holds, so a copy that was interrupted resumes where it stopped and running it twice writes
nothing the second time — even into a backend that keeps duplicates, and even into one that
stores some values differently (MLflow: ±inf clamped, -0.0 as 0.0): a point counts as held
when the target holds what it would store for it (:meth:`Capabilities.stored_key`).

Memory: the source is read a page at a time (:meth:`Tracker.iter_history`: the backend's
``history_page`` hook where it has one, else its whole history cut up), each page written
before the next is read, so a key the target does not hold yet (a migration) goes across in
memory bounded by one page, however long its history. A key the target already holds (a
copy resumed) also keeps the target's point identities of that key, to skip them. Keys and
resources are copied one after another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import ExitStack
from typing import NamedTuple

from ._model import Capabilities, MetricPoint, PerfRecord
from ._outbox import Outbox
from ._registry import Registry
from ._tracker import Tracker, connect
from ._validation import to_resource, to_resource_ids

__all__ = ["CopySummary", "copy", "sync"]

#: ``progress(done, total, resource_id)``, called after each resource.
Progress = Callable[[int, int, str], None]
#: ``points(read)``: the source points read so far (written or skipped), after each page.
PointsProgress = Callable[[int], None]
#: Points per page read from the source, and so per write to the target.
BATCH = 10_000


class CopySummary(NamedTuple):
    """What a copy did: resources visited, points written, points already there."""

    resources: int
    points: int
    skipped: int


def copy(
    source: str | Tracker,
    target: str | Tracker,
    resources: Iterable[str] | None = None,
    progress: Progress | None = None,
    points: PointsProgress | None = None,
) -> CopySummary:
    """Copy the full history and performance record of ``resources`` (default: all) from
    ``source`` to ``target``, URLs or open trackers. Idempotent and resumable.
    ``progress`` is told after each resource, ``points`` after each page of points."""
    given = to_resource_ids(resources) if resources is not None else None  # before opening
    with ExitStack() as stack:
        src = _open(source, stack)
        dst = _open(target, stack)
        chosen = given if given is not None else _every_resource(src)
        written = skipped = 0
        for done, resource in enumerate(chosen, start=1):
            new, old = _copy_resource(src, dst, resource, _counter(points, written + skipped))
            written, skipped = written + new, skipped + old
            if progress is not None:
                progress(done, len(chosen), resource)
        dst.flush()
        return CopySummary(len(chosen), written, skipped)


def _every_resource(src: Tracker) -> list[str]:
    """Every resource with metrics, and every run (a run may have none yet)."""
    return sorted({*src.resources(), *src._run_ids()})


def _open(store: str | Tracker, stack: ExitStack) -> Tracker:
    return store if isinstance(store, Tracker) else stack.enter_context(connect(store))


def _identity(caps: Capabilities, point: MetricPoint) -> tuple[str, int, int, int]:
    """What the target keeps of ``point``: equal for a point to copy and its stored copy."""
    return (point.key, point.step, point.timestamp, caps.stored_key(point.value))


def _same_perf(caps: Capabilities, held: PerfRecord | None, wanted: PerfRecord) -> bool:
    """Whether the target's record is what it would store for ``wanted`` (NaN included)."""
    if held is None or held.metric != wanted.metric:
        return False
    return caps.stored_key(held.value) == caps.stored_key(wanted.value)


def _counter(points: PointsProgress | None, before: int) -> PointsProgress:
    """``points`` told the total read so far, given the points read in one resource."""
    if points is None:
        return lambda read: None
    return lambda read: points(before + read)


def _copy_resource(
    src: Tracker, dst: Tracker, resource: str, read: PointsProgress
) -> tuple[int, int]:
    """Copy one resource, page by page; returns (points written, points the target
    already had). ``read`` is told the points of the resource read so far."""
    caps = dst.capabilities  # the primary's: reads, so "already there", come from it
    written = skipped = 0
    held_keys = dst.latest(resource)
    for key in src.latest(resource):
        # Only a key the target holds needs its identities (a migration holds none).
        present = (
            {_identity(caps, p) for p in dst.iter_history(resource, key, page_size=BATCH)}
            if key in held_keys
            else set()
        )
        for page in src._pages(resource, key, BATCH):
            points = [p for p in page if _identity(caps, p) not in present]
            if points:
                dst.log_points(resource, points)
            written, skipped = written + len(points), skipped + len(page) - len(points)
            read(written + skipped)
    perf = src.perf(resource)
    if perf is not None and not _same_perf(caps, dst.perf(resource), perf):
        dst.log_points(resource, [], perf)
    _copy_params_and_tags(src, dst, resource)
    return written, skipped


def _copy_params_and_tags(src: Tracker, dst: Tracker, resource: str) -> None:
    """Params (write-once: the same ones again change nothing) and every tag, a run's own
    included, so a run moves whole. A target that keeps none refuses them: never dropped."""
    params, tags = src._params_and_tags(resource)
    held_tags = dst._params_and_tags(resource)[1] if tags else {}
    if params:
        dst.log_params(resource, params)
    changed = {k: v for k, v in tags.items() if held_tags.get(k) != v}
    if changed:
        dst._set_tags(to_resource(resource), changed)


def sync(
    *urls: str,
    outbox: str | Outbox | None = None,
    registry: Registry | None = None,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Replay the outbox's waiting writes to ``urls`` (default: every URL it holds writes
    for), oldest first; ``{url: writes sent}``. Raises on the first backend still failing,
    whose writes stay for the next try; the ones before it are done."""
    box = outbox if isinstance(outbox, Outbox) else Outbox(outbox)
    sent: dict[str, int] = {}
    with box.replaying():  # another sync of this outbox finishes first: none sends twice
        targets = list(urls) or box.urls()
        for done, url in enumerate(targets, start=1):
            before = box.pending(url)
            with connect(url, on_error="raise", outbox=box, registry=registry):
                pass  # connecting replays: a backend with waiting writes gets them first
            sent[url] = before - box.pending(url)
            if progress is not None:
                progress(done, len(targets), url)
    return sent
