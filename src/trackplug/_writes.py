"""Writes as values: each one can be applied to a backend, or kept in the outbox as JSON.

Every write the facade makes is one of six kinds. Making them data (rather than closures)
is what lets a write that a backend could not take wait in the outbox and be replayed later,
in order, by another process. JSON keeps NaN, ±inf and -0.0 exactly (Python writes the
shortest repr that reads back to the same bits); nothing stored is ever evaluated. (Named
tuples rather than frozen dataclasses: as immutable, and far cheaper to define at import.)
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ._model import Batch, MetricPoint, ParamValue, PerfRecord, Resource, group
from ._params import user_tags
from ._validation import perf_keys

if TYPE_CHECKING:
    from ._hooks import BackendHooks

__all__ = [
    "CopyMetrics",
    "LogBatch",
    "LogMetrics",
    "LogParams",
    "LogPredictions",
    "SetTags",
    "Write",
    "from_json",
]


def _points_to_json(points: Sequence[MetricPoint]) -> list[list[Any]]:
    return [list(point) for point in points]


def _points_from_json(rows: list[list[Any]]) -> list[MetricPoint]:
    return [MetricPoint(str(k), float(v), int(s), int(t)) for k, v, s, t in rows]


# A write goes to every backend of a tracker in turn, and to the outbox after a failure:
# what one backend may change in place (a list of points, a batch's lists) would reach the
# next one changed. Writes therefore hold points in tuples, and a ColumnBatch hands out
# tuples (docs/plugin-authors.md: a hook's arguments are read-only).


class LogBatch(NamedTuple):
    """Buffered ``log_metric`` calls, sent in parts of the backend's ``max_batch_size``."""

    batch: Batch

    def apply(self, backend: BackendHooks) -> None:
        size = backend.caps.max_batch_size
        if size is None:  # not counted: a backend reading the columns never groups them
            backend.log_metric(self.batch)
            return
        total = sum(len(points) for points in self.batch.values())
        if total <= size:
            backend.log_metric(self.batch)
            return
        pairs = [(resource, point) for resource, points in self.batch.items() for point in points]
        for start in range(0, total, size):
            backend.log_metric(group(pairs[start : start + size]))

    def to_json(self) -> dict[str, Any]:
        rows = [[r.id, _points_to_json(points)] for r, points in self.batch.items()]
        return {"op": "log_metric", "batch": rows}


class LogMetrics(NamedTuple):
    """Points and a performance record for one resource, written atomically."""

    resource: Resource
    points: Sequence[MetricPoint]
    perf: PerfRecord | None

    def apply(self, backend: BackendHooks) -> None:
        backend.log_metrics(self.resource, self.points, self.perf)

    def to_json(self) -> dict[str, Any]:
        perf = list(self.perf) if self.perf is not None else None
        points = _points_to_json(self.points)
        return {"op": "log_metrics", "resource": self.resource.id, "points": points, "perf": perf}


class CopyMetrics(NamedTuple):
    """``copy_metrics``: native where the backend has it, else composed from reads. The
    target's performance record then takes the target's latest value of its metric, so that
    ``perf`` and ``get_metric`` agree where the target had newer points (docs/semantics.md).
    The params come first (one the target holds with another value refuses the whole copy)
    and the user's tags last (not a run's status: the target is no copy of the run), where
    the backend keeps them."""

    source: Resource
    target: Resource

    def apply(self, backend: BackendHooks) -> None:
        if backend.has_params:
            self._copy_params(backend)
        perf = backend.get_perf(self.source)
        if not backend.copy_metrics(self.source, self.target):
            points = [
                p for key in backend.latest(self.source) for p in backend.history(self.source, key)
            ]
            if points or perf is not None:
                backend.log_metrics(self.target, points, perf)
        if perf is not None:
            self._value_perf_at_latest(backend, perf)
        if backend.has_params:
            self._copy_tags(backend)

    def _copy_params(self, backend: BackendHooks) -> None:
        params = backend.get_params(self.source)
        if params:
            backend.log_params(self.target, params)

    def _copy_tags(self, backend: BackendHooks) -> None:
        tags = user_tags(backend.get_tags(self.source))
        if tags:
            backend.set_tags(self.target, tags)

    def _value_perf_at_latest(self, backend: BackendHooks, perf: PerfRecord) -> None:
        latest = backend.latest(self.target)
        key = next((k for k in perf_keys(perf.metric) if k in latest), None)
        if key is None or _same(latest[key], perf.value):
            return
        backend.log_metrics(self.target, [], perf._replace(value=latest[key]))

    def to_json(self) -> dict[str, Any]:
        return {"op": "copy_metrics", "source": self.source.id, "target": self.target.id}


class LogPredictions(NamedTuple):
    """Prediction summary metrics: the backend's own hook where it has one."""

    job: Resource
    points: Sequence[MetricPoint]

    def apply(self, backend: BackendHooks) -> None:
        if not backend.log_prediction_metrics(self.job, self.points):
            backend.log_metric({self.job: self.points})

    def to_json(self) -> dict[str, Any]:
        return {
            "op": "log_prediction_metrics",
            "job": self.job.id,
            "points": _points_to_json(self.points),
        }


class LogParams(NamedTuple):
    """Write-once params of one resource."""

    resource: Resource
    params: Mapping[str, ParamValue]

    def apply(self, backend: BackendHooks) -> None:
        backend.log_params(self.resource, self.params)

    def to_json(self) -> dict[str, Any]:
        return {"op": "log_params", "resource": self.resource.id, "params": dict(self.params)}


class SetTags(NamedTuple):
    """Tags of one resource, replacing earlier values."""

    resource: Resource
    tags: Mapping[str, str]

    def apply(self, backend: BackendHooks) -> None:
        backend.set_tags(self.resource, self.tags)

    def to_json(self) -> dict[str, Any]:
        return {"op": "set_tags", "resource": self.resource.id, "tags": dict(self.tags)}


Write = LogBatch | LogMetrics | CopyMetrics | LogPredictions | LogParams | SetTags


def _same(a: float, b: float) -> bool:
    """Equal to the bit (NaN equals NaN; 0.0 is not -0.0)."""
    return struct.pack("<d", a) == struct.pack("<d", b)


def to_json(write: Write) -> str:
    """The outbox's text for ``write``."""
    import json  # only the outbox needs it: not loaded by ``import trackplug``

    return json.dumps(write.to_json(), separators=(",", ":"))


def from_json(text: str) -> Write:
    """The write that :func:`to_json` stored."""
    import json

    data = json.loads(text)
    op = data["op"]
    if op == "log_metric":
        return LogBatch({Resource(rid): _points_from_json(rows) for rid, rows in data["batch"]})
    if op == "log_metrics":
        perf = PerfRecord(str(data["perf"][0]), float(data["perf"][1])) if data["perf"] else None
        return LogMetrics(Resource(data["resource"]), _points_from_json(data["points"]), perf)
    if op == "copy_metrics":
        return CopyMetrics(Resource(data["source"]), Resource(data["target"]))
    if op == "log_prediction_metrics":
        return LogPredictions(Resource(data["job"]), _points_from_json(data["points"]))
    if op == "log_params":
        return LogParams(Resource(data["resource"]), dict(data["params"]))
    if op == "set_tags":
        return SetTags(
            Resource(data["resource"]), {str(k): str(v) for k, v in data["tags"].items()}
        )
    raise ValueError(f"outbox entry has an unknown operation {op!r}")
