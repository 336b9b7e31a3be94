"""A complete trackplug backend: metrics in one JSON file, ``jsonfile:///path/runs.json``.

The worked example of docs/plugin-authors.md, checked by the contract suite
(test_example_jsonfile.py). Values are stored as their IEEE-754 bits, so NaN, ±inf and
-0.0 round-trip exactly; points are kept in sets, so exact duplicates collapse.
"""

from __future__ import annotations

import json
import math
import os
import struct
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import trackplug
from trackplug import Capabilities, MetricPoint, PerfRecord, Resource
from trackplug.model import Batch, point_order

Stored = tuple[int, int, int]  # (step, timestamp, value bits)


def to_bits(value: float) -> int:
    bits: int = struct.unpack("<q", struct.pack("<d", value))[0]
    return bits


def from_bits(bits: int) -> float:
    value: float = struct.unpack("<d", struct.pack("<q", bits))[0]
    return value


class JsonFileBackend:
    """``{resource: {key: {(step, timestamp, bits)}}}`` in memory, written out on flush."""

    CAPABILITIES = Capabilities(persistent=True)

    def __init__(self, url: str) -> None:
        self.url = trackplug.redact_url(url)
        self.path = Path(url.removeprefix("jsonfile://"))
        self._lock = threading.Lock()
        self._points: dict[str, dict[str, set[Stored]]] = {}
        self._perf: dict[str, tuple[str, int]] = {}
        if self.path.exists():
            data = json.loads(self.path.read_text())
            for rid, keys in data["points"].items():
                self._points[rid] = {k: {tuple(p) for p in pts} for k, pts in keys.items()}
            self._perf = {rid: (metric, bits) for rid, (metric, bits) in data["perf"].items()}

    # -- writes ---------------------------------------------------------------------------

    def _add(self, resource: Resource, points: Sequence[MetricPoint]) -> None:
        keys = self._points.setdefault(resource.id, {})
        for p in points:
            keys.setdefault(p.key, set()).add((p.step, p.timestamp, to_bits(p.value)))

    @trackplug.hookimpl
    def log_metric(self, batch: Batch) -> None:
        with self._lock:
            for resource, points in batch.items():
                self._add(resource, points)

    @trackplug.hookimpl
    def log_metrics(
        self, resource: Resource, points: Sequence[MetricPoint], perf: PerfRecord | None
    ) -> None:
        with self._lock:
            self._add(resource, points)
            if perf is not None:
                self._perf[resource.id] = (perf.metric, to_bits(perf.value))

    # -- reads ----------------------------------------------------------------------------

    @trackplug.hookimpl
    def history(self, resource: Resource, key: str) -> list[MetricPoint]:
        with self._lock:
            stored = list(self._points.get(resource.id, {}).get(key, ()))
        points = [MetricPoint(key, from_bits(bits), step, ts) for step, ts, bits in stored]
        return sorted(points, key=point_order)

    @trackplug.hookimpl
    def get_metric(self, resource: Resource, key: str) -> float | None:
        points = self.history(resource, key)
        return points[-1].value if points else None

    @trackplug.hookimpl
    def latest(self, resource: Resource) -> dict[str, float]:
        with self._lock:
            keys = sorted(self._points.get(resource.id, {}))
        return {key: self.history(resource, key)[-1].value for key in keys}

    @trackplug.hookimpl
    def resources(self) -> list[str]:
        with self._lock:
            return sorted(rid for rid, keys in self._points.items() if keys)

    @trackplug.hookimpl
    def get_perf(self, resource: Resource) -> PerfRecord | None:
        with self._lock:
            record = self._perf.get(resource.id)
        return None if record is None else PerfRecord(record[0], from_bits(record[1]))

    @trackplug.hookimpl
    def best(self, key: str, order: Literal["max", "min"], limit: int) -> list[tuple[str, float]]:
        ranked = []
        for rid in self.resources():
            value = self.get_metric(Resource(rid), key)
            if value is not None and not math.isnan(value):
                ranked.append((rid, value))
        sign = -1.0 if order == "max" else 1.0
        ranked.sort(key=lambda item: (sign * item[1], item[0]))
        return ranked[:limit]

    # -- lifecycle ------------------------------------------------------------------------

    @trackplug.hookimpl
    def capabilities(self) -> Capabilities:
        return self.CAPABILITIES

    @trackplug.hookimpl
    def flush(self) -> None:
        with self._lock:
            points = {
                r: {k: sorted(p) for k, p in keys.items()} for r, keys in self._points.items()
            }
            data = json.dumps({"points": points, "perf": self._perf})
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(data)
        os.replace(partial, self.path)  # atomic: a crash leaves the old file or the new one

    @trackplug.hookimpl
    def close(self) -> None:
        self.flush()


@trackplug.hookimpl
def trackplug_register_backends(register: trackplug.spec.Register) -> None:
    register("jsonfile", JsonFileBackend)
