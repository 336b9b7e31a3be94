"""Moving data: ``trackplug.copy(src, dst)`` between stores, ``trackplug.sync()`` from the
outbox to the backends it holds writes for.

Works between any two backends (memory, SQLite, PostgreSQL, MLflow) because it only uses
the facade. Each key's points are sent in batches, minus the points the target already
holds, so a copy that was interrupted resumes where it stopped and running it twice writes
nothing the second time — even into a backend that keeps duplicates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import ExitStack
from typing import NamedTuple

from .model import MetricPoint, float_bits
from .outbox import Outbox
from .registry import Registry
from .tracker import Tracker, connect

__all__ = ["CopySummary", "copy", "sync"]

#: ``progress(done, total, resource_id)``, called after each resource.
Progress = Callable[[int, int, str], None]
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
) -> CopySummary:
    """Copy the full history and performance record of ``resources`` (default: all) from
    ``source`` to ``target``, URLs or open trackers. Idempotent and resumable."""
    with ExitStack() as stack:
        src = _open(source, stack)
        dst = _open(target, stack)
        chosen = sorted(resources) if resources is not None else src.resources()
        written = skipped = 0
        for done, resource in enumerate(chosen, start=1):
            new, old = _copy_resource(src, dst, resource)
            written, skipped = written + new, skipped + old
            if progress is not None:
                progress(done, len(chosen), resource)
        dst.flush()
        return CopySummary(len(chosen), written, skipped)


def _open(store: str | Tracker, stack: ExitStack) -> Tracker:
    return store if isinstance(store, Tracker) else stack.enter_context(connect(store))


def _identity(point: MetricPoint) -> tuple[str, int, int, int]:
    return (point.key, point.step, point.timestamp, float_bits(point.value))


def _copy_resource(src: Tracker, dst: Tracker, resource: str) -> tuple[int, int]:
    """Copy one resource; returns (points written, points the target already had)."""
    written = skipped = 0
    for key in src.latest(resource):
        present = {_identity(p) for p in dst.history(resource, key)}
        history = src.history(resource, key)
        points = [p for p in history if _identity(p) not in present]
        skipped += len(history) - len(points)
        for start in range(0, len(points), BATCH):
            dst.log_points(resource, points[start : start + BATCH])
        written += len(points)
    perf = src.perf(resource)
    if perf is not None and dst.perf(resource) != perf:
        dst.log_points(resource, [], perf)
    return written, skipped


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
    targets = list(urls) or box.urls()
    sent: dict[str, int] = {}
    for done, url in enumerate(targets, start=1):
        before = box.pending(url)
        with connect(url, on_error="raise", outbox=box, registry=registry):
            pass  # connecting replays: a backend with waiting writes gets them first
        sent[url] = before - box.pending(url)
        if progress is not None:
            progress(done, len(targets), url)
    return sent
