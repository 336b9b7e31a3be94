"""The in-memory reference backend (``memory://``): the contract, small enough to read.

Every other backend is judged against this one: the contract suite's model is built on it.
Each ``connect("memory://")`` gets a new, empty store that lives as long as the tracker.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from ._batch import batch_columns
from ._model import (
    Batch,
    Capabilities,
    ColumnsPage,
    HistoryPage,
    MetricPoint,
    ParamValue,
    PerfRecord,
    Resource,
    columns_page,
    float_bits,
    page_after,
    page_of,
    point_order,
)
from ._params import raise_on_conflict
from ._urls import redact_url
from .spec import BackendFactory, Register, UrlForm, hookimpl

__all__ = ["MemoryBackend", "MemoryFactory"]

# A point's identity: two points with the same one are exact duplicates and collapse.
PointId = tuple[int, int, int]


def _identity(point: MetricPoint) -> PointId:
    return (point.step, point.timestamp, float_bits(point.value))


class MemoryBackend:
    """Metrics in dictionaries: ``{resource: {key: {point identity: point}}}``.

    It implements the eight required hooks and the params and tags hooks; ``best``,
    ``flush`` and ``close`` are the facade's (the contract's ranking over ``get_metric``;
    nothing to make durable or to release)."""

    #: Nothing to declare: the reference keeps every value exactly.
    CAPABILITIES = Capabilities(persistent=False)

    def __init__(self, url: str = "memory://") -> None:
        self.url = redact_url(url)
        self._points: dict[Resource, dict[str, dict[PointId, MetricPoint]]] = {}
        self._perf: dict[Resource, PerfRecord] = {}
        self._params: dict[Resource, dict[str, ParamValue]] = {}
        self._tags: dict[Resource, dict[str, str]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryBackend({self.url!r})"

    # -- writes ---------------------------------------------------------------------------

    @hookimpl
    def log_metric(self, batch: Batch) -> None:
        """Reads the batch's columns (a plain mapping's too): no grouping by resource."""
        rids, keys, values, steps, stamps = batch_columns(batch)
        points = map(MetricPoint, keys, values, steps, stamps)
        with self._lock:
            for rid, point in zip(rids, points, strict=True):
                self._add(Resource(rid), (point,))

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
    def history_page(
        self, resource: Resource, key: str, cursor: str | None, limit: int
    ) -> HistoryPage:
        return page_of(self.history(resource, key), cursor, limit)

    @hookimpl
    def history_columns_page(
        self, resource: Resource, key: str, cursor: str | None, limit: int
    ) -> ColumnsPage:
        return columns_page(page_of(self.history(resource, key), cursor, limit))

    @hookimpl
    def history_page_after(
        self, resource: Resource, key: str, after: tuple[int, int, int], limit: int
    ) -> HistoryPage:
        return page_after(self.history(resource, key), after, limit)

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

    # -- params and tags ------------------------------------------------------------------

    @hookimpl
    def log_params(self, resource: Resource, params: Mapping[str, ParamValue]) -> None:
        with self._lock:
            held = self._params.setdefault(resource, {})
            raise_on_conflict(resource, held, params, self.CAPABILITIES)
            held.update(params)

    @hookimpl
    def get_params(self, resource: Resource) -> dict[str, ParamValue]:
        with self._lock:
            return dict(sorted(self._params.get(resource, {}).items()))

    @hookimpl
    def set_tags(self, resource: Resource, tags: Mapping[str, str]) -> None:
        with self._lock:
            self._tags.setdefault(resource, {}).update(tags)

    @hookimpl
    def get_tags(self, resource: Resource) -> dict[str, str]:
        with self._lock:
            return dict(sorted(self._tags.get(resource, {}).items()))

    @hookimpl
    def tagged(self, key: str, value: str | None) -> list[str]:
        with self._lock:
            return sorted(
                resource.id
                for resource, tags in self._tags.items()
                if key in tags and (value is None or tags[key] == value)
            )

    # -- lifecycle ------------------------------------------------------------------------

    @hookimpl
    def capabilities(self) -> Capabilities:
        return self.CAPABILITIES


class MemoryFactory(BackendFactory):
    """``memory://``: a new, empty store per backend."""

    def open(self, url: str, **options: Any) -> MemoryBackend:
        return MemoryBackend(url)

    def forms(self) -> list[UrlForm]:
        return [UrlForm("memory://", MemoryBackend.CAPABILITIES)]


@hookimpl
def trackplug_register_backends(register: Register) -> None:
    register("memory", MemoryFactory())
