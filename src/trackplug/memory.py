"""The in-memory reference backend (``memory://``): the contract, small enough to read.

Every other backend is judged against this one: the contract suite's model is built on it.
Each ``connect("memory://")`` gets a new, empty store that lives as long as the tracker.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Literal

from .model import (
    Batch,
    Capabilities,
    MetricPoint,
    PerfRecord,
    Resource,
    float_bits,
    point_order,
)
from .spec import Register, hookimpl
from .urls import redact_url

__all__ = ["MemoryBackend"]

# A point's identity: two points with the same one are exact duplicates and collapse.
PointId = tuple[int, int, int]


def _identity(point: MetricPoint) -> PointId:
    return (point.step, point.timestamp, float_bits(point.value))


class MemoryBackend:
    """Metrics in dictionaries: ``{resource: {key: {point identity: point}}}``."""

    #: Nothing to declare: the reference keeps every value exactly.
    CAPABILITIES = Capabilities(persistent=False)

    def __init__(self, url: str = "memory://", **options: object) -> None:
        """``options`` meant for other backends of the same tracker are ignored."""
        self.url = redact_url(url)
        self._points: dict[Resource, dict[str, dict[PointId, MetricPoint]]] = {}
        self._perf: dict[Resource, PerfRecord] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryBackend({self.url!r})"

    # -- writes ---------------------------------------------------------------------------

    @hookimpl
    def log_metric(self, batch: Batch) -> None:
        with self._lock:
            for resource, points in batch.items():
                self._add(resource, points)

    @hookimpl
    def log_metrics(
        self, resource: Resource, points: Sequence[MetricPoint], perf: PerfRecord | None
    ) -> None:
        with self._lock:
            self._add(resource, points)
            if perf is not None:
                self._perf[resource] = perf

    def _add(self, resource: Resource, points: Sequence[MetricPoint]) -> None:
        keys = self._points.setdefault(resource, {})
        for point in points:
            keys.setdefault(point.key, {})[_identity(point)] = point

    # -- reads ----------------------------------------------------------------------------

    @hookimpl
    def history(self, resource: Resource, key: str) -> list[MetricPoint]:
        with self._lock:
            points = list(self._points.get(resource, {}).get(key, {}).values())
        return sorted(points, key=point_order)

    @hookimpl
    def get_metric(self, resource: Resource, key: str) -> float | None:
        with self._lock:
            points = list(self._points.get(resource, {}).get(key, {}).values())
        return max(points, key=point_order).value if points else None

    @hookimpl
    def latest(self, resource: Resource) -> dict[str, float]:
        with self._lock:
            keys = {key: list(pts.values()) for key, pts in self._points.get(resource, {}).items()}
        return {key: max(pts, key=point_order).value for key, pts in sorted(keys.items())}

    @hookimpl
    def resources(self) -> list[str]:
        with self._lock:
            return sorted(resource.id for resource, keys in self._points.items() if keys)

    @hookimpl
    def get_perf(self, resource: Resource) -> PerfRecord | None:
        with self._lock:
            return self._perf.get(resource)

    @hookimpl
    def best(self, key: str, order: Literal["max", "min"], limit: int) -> list[tuple[str, float]]:
        ranked = [
            (rid, value)
            for rid in self.resources()
            if (value := self.get_metric(Resource(rid), key)) is not None and value == value
        ]
        sign = -1.0 if order == "max" else 1.0
        ranked.sort(key=lambda item: (sign * item[1], item[0]))
        return ranked[:limit]

    # -- lifecycle ------------------------------------------------------------------------

    @hookimpl
    def capabilities(self) -> Capabilities:
        return self.CAPABILITIES

    @hookimpl
    def flush(self) -> None:
        """Nothing to do: every write is already where reads find it."""

    @hookimpl
    def close(self) -> None:
        """Nothing to release; the data goes with the tracker."""


@hookimpl
def trackplug_register_backends(register: Register) -> None:
    register("memory", MemoryBackend)
