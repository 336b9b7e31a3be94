"""The model every backend is compared with, and exact (bit-level) comparisons.

The model is trackplug's in-memory reference backend, wrapped so that it behaves as the
backend under test *declares* it behaves (its :class:`~trackplug.Capabilities`): values are
stored as ``caps.stored(value)`` would read back, exact duplicates are kept when the backend
declares ``duplicates="keep"``, and the wrapper answers ``capabilities`` with the declared
ones, so the facade refuses exactly the values and steps the backend declared it refuses.
Driving the backend and the model through two :class:`~trackplug.Tracker` objects with the
same calls then gives, for every operation, the outcome the contract expects.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from trackplug import Capabilities, Columns, MetricPoint, PerfRecord, Resource, Tracker, hookimpl
from trackplug.plugin import Batch, MemoryBackend, ParamValue, float_bits

__all__ = [
    "ExactPoint",
    "ReferenceBackend",
    "exact",
    "exact_best",
    "exact_columns",
    "exact_history",
    "exact_latest",
    "reference_tracker",
]

#: A point with its value as IEEE-754 bits: equal exactly when the points are identical.
ExactPoint = tuple[str, int, int, int]
_Identity = tuple[str, str, int, int, int]


def exact(value: float | None) -> int | None:
    """``value`` as its bits (NaN-aware, -0.0 distinct from 0.0); None stays None."""
    return None if value is None else float_bits(value)


def exact_history(points: Sequence[MetricPoint]) -> list[ExactPoint]:
    """A history as ``(key, step, timestamp, value bits)``, in its own order."""
    return [(p.key, p.step, p.timestamp, float_bits(p.value)) for p in points]


def exact_columns(columns: Columns, key: str) -> list[ExactPoint]:
    """``history_columns`` of ``key`` as :func:`exact_history` shows a history."""
    steps, stamps, values = columns
    return [(key, *point) for point in zip(steps, stamps, map(float_bits, values), strict=True)]


def exact_latest(latest: dict[str, float]) -> list[tuple[str, int]]:
    """``latest()`` as ``[(key, value bits)]`` in its own key order."""
    return [(key, float_bits(value)) for key, value in latest.items()]


def exact_best(ranking: Sequence[tuple[str, float]]) -> list[tuple[str, int]]:
    """``best()`` as ``[(resource id, value bits)]`` in its own order."""
    return [(rid, float_bits(value)) for rid, value in ranking]


class ReferenceBackend:
    """:class:`~trackplug._memory.MemoryBackend`, keeping what ``caps`` says a backend keeps.
    Like it, it leaves ``best``, ``flush`` and ``close`` to the facade."""

    def __init__(self, caps: Capabilities) -> None:
        self.caps = caps
        self.url = "memory://contract-reference"
        self._memory = MemoryBackend(self.url)
        self._copies: Counter[_Identity] = Counter()

    def _stored(self, resource: Resource, points: Sequence[MetricPoint]) -> list[MetricPoint]:
        kept = [p._replace(value=self.caps.stored(p.value)) for p in points]
        for p in kept:
            self._copies[(resource.id, p.key, p.step, p.timestamp, float_bits(p.value))] += 1
        return kept

    @hookimpl
    def log_metric(self, batch: Batch) -> None:
        self._memory.log_metric({r: self._stored(r, points) for r, points in batch.items()})

    @hookimpl
    def log_metrics(
        self, resource: Resource, points: Sequence[MetricPoint], perf: PerfRecord | None
    ) -> None:
        if perf is not None:
            perf = perf._replace(value=self.caps.stored(perf.value))
        self._memory.log_metrics(resource, self._stored(resource, points), perf)

    @hookimpl
    def history(self, resource: Resource, key: str) -> list[MetricPoint]:
        points = self._memory.history(resource, key)
        if self.caps.duplicates == "collapse":
            return points
        return [p for p in points for _ in range(self._count(resource, p))]

    def _count(self, resource: Resource, p: MetricPoint) -> int:
        return self._copies[(resource.id, p.key, p.step, p.timestamp, float_bits(p.value))]

    @hookimpl
    def get_metric(self, resource: Resource, key: str) -> float | None:
        return self._memory.get_metric(resource, key)

    @hookimpl
    def latest(self, resource: Resource) -> dict[str, float]:
        return self._memory.latest(resource)

    @hookimpl
    def resources(self) -> list[str]:
        return self._memory.resources()

    @hookimpl
    def get_perf(self, resource: Resource) -> PerfRecord | None:
        return self._memory.get_perf(resource)

    @hookimpl
    def log_params(self, resource: Resource, params: Mapping[str, ParamValue]) -> None:
        stored = {key: self.caps.stored_param(value) for key, value in params.items()}
        self._memory.log_params(resource, stored)

    @hookimpl
    def get_params(self, resource: Resource) -> dict[str, ParamValue]:
        return self._memory.get_params(resource)

    @hookimpl
    def set_tags(self, resource: Resource, tags: Mapping[str, str]) -> None:
        self._memory.set_tags(resource, tags)

    @hookimpl
    def get_tags(self, resource: Resource) -> dict[str, str]:
        return self._memory.get_tags(resource)

    @hookimpl
    def tagged(self, key: str, value: str | None) -> list[str]:
        return self._memory.tagged(key, value)

    @hookimpl
    def capabilities(self) -> Capabilities:
        return self.caps


def reference_tracker(caps: Capabilities) -> Tracker:
    """A tracker on the model of a backend that declares ``caps``."""
    return Tracker(ReferenceBackend(caps), flush_interval=3600.0)
