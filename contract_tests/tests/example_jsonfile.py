"""A complete trackplug backend: metrics in one JSON file, ``jsonfile:///path/runs.json``.

The worked example of docs/plugin-authors.md, checked by the contract suite
(test_example_jsonfile.py). Values are stored as their IEEE-754 bits, so NaN, ±inf and
-0.0 round-trip exactly; points are kept in sets, so exact duplicates collapse.
"""

from __future__ import annotations

import json
import os
import struct
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trackplug.plugin import (
    BackendFactory,
    Batch,
    Capabilities,
    LocalStore,
    MetricPoint,
    PerfRecord,
    Register,
    Resource,
    UrlForm,
    hookimpl,
    point_order,
    redact_url,
)

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
        self.url = redact_url(url)
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
                self._perf[resource.id] = (perf.metric, to_bits(perf.value))

    # -- reads ----------------------------------------------------------------------------

    @hookimpl
    def history(self, resource: Resource, key: str) -> list[MetricPoint]:
        with self._lock:
            stored = list(self._points.get(resource.id, {}).get(key, ()))
        points = [MetricPoint(key, from_bits(bits), step, ts) for step, ts, bits in stored]
        return sorted(points, key=point_order)

    @hookimpl
    def get_metric(self, resource: Resource, key: str) -> float | None:
        points = self.history(resource, key)
        return points[-1].value if points else None

    @hookimpl
    def latest(self, resource: Resource) -> dict[str, float]:
        with self._lock:
            keys = sorted(self._points.get(resource.id, {}))
        return {key: self.history(resource, key)[-1].value for key in keys}

    @hookimpl
    def resources(self) -> list[str]:
        with self._lock:
            return sorted(rid for rid, keys in self._points.items() if keys)

    @hookimpl
    def get_perf(self, resource: Resource) -> PerfRecord | None:
        with self._lock:
            record = self._perf.get(resource.id)
        return None if record is None else PerfRecord(record[0], from_bits(record[1]))

    # -- lifecycle ------------------------------------------------------------------------

    @hookimpl
    def capabilities(self) -> Capabilities:
        return self.CAPABILITIES

    @hookimpl
    def flush(self) -> None:
        with self._lock:
            points = {
                r: {k: sorted(p) for k, p in keys.items()} for r, keys in self._points.items()
            }
            data = json.dumps({"points": points, "perf": self._perf})
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(data)
        os.replace(partial, self.path)  # atomic: a crash leaves the old file or the new one

    @hookimpl
    def close(self) -> None:
        self.flush()


class JsonFileFactory(BackendFactory):
    """What the plugin registers: how to open a backend, its one form of URL and what it
    keeps, and the file a URL names (so reading commands refuse a misspelled path)."""

    def open(self, url: str, **options: Any) -> JsonFileBackend:
        return JsonFileBackend(url)

    def forms(self) -> list[UrlForm]:
        return [UrlForm("jsonfile:///PATH", JsonFileBackend.CAPABILITIES)]

    def local_store(self, url: str) -> LocalStore:
        return LocalStore("file", Path(url.removeprefix("jsonfile://")))


@hookimpl
def trackplug_register_backends(register: Register) -> None:
    register("jsonfile", JsonFileFactory())
