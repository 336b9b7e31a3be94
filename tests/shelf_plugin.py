"""A third party's backend, written from docs/plugin-authors.md and nothing else: metrics in
a JSON file, ``shelf:///path/metrics.json``. It implements the eight required hooks only
(``best``, ``flush`` and ``close`` are the facade's) and imports only ``trackplug.plugin``.

Every write is written through to the file, so another tracker (another CLI command) on
the same URL sees it. Values are kept as their IEEE-754 bits: NaN, ±inf and -0.0 exactly.
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
    float_bits,
    hookimpl,
    point_order,
)

CAPABILITIES = Capabilities(persistent=True)


def _value(bits: int) -> float:
    found: float = struct.unpack("<d", struct.pack("<q", bits))[0]
    return found


class ShelfBackend:
    """``{resource: {key: [[step, timestamp, bits], …]}}`` and perf records, in one file."""

    def __init__(self, url: str, indent: int | None = None) -> None:
        self.url = url
        self.path = Path(url.removeprefix("shelf://"))
        self._indent = indent
        self._lock = threading.Lock()
        data = json.loads(self.path.read_text()) if self.path.exists() else {}
        self._points: dict[str, dict[str, list[list[int]]]] = data.get("points", {})
        self._perf: dict[str, list[Any]] = data.get("perf", {})
        self._save()

    def _save(self) -> None:
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps({"points": self._points, "perf": self._perf}))
        os.replace(partial, self.path)

    def _add(self, resource: Resource, points: Sequence[MetricPoint]) -> None:
        keys = self._points.setdefault(resource.id, {})
        for p in points:
            stored = keys.setdefault(p.key, [])
            row = [p.step, p.timestamp, float_bits(p.value)]
            if row not in stored:
                stored.append(row)

    @hookimpl
    def log_metric(self, batch: Batch) -> None:
        with self._lock:
            for resource, points in batch.items():
                self._add(resource, points)
            self._save()

    @hookimpl
    def log_metrics(
        self, resource: Resource, points: Sequence[MetricPoint], perf: PerfRecord | None
    ) -> None:
        with self._lock:
            self._add(resource, points)
            if perf is not None:
                self._perf[resource.id] = [perf.metric, float_bits(perf.value)]
            self._save()

    @hookimpl
    def history(self, resource: Resource, key: str) -> list[MetricPoint]:
        with self._lock:
            rows = list(self._points.get(resource.id, {}).get(key, []))
        points = [MetricPoint(key, _value(bits), step, ts) for step, ts, bits in rows]
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
        return None if record is None else PerfRecord(record[0], _value(record[1]))

    @hookimpl
    def capabilities(self) -> Capabilities:
        return CAPABILITIES


class ShelfFactory(BackendFactory):
    options = frozenset({"indent"})

    def open(self, url: str, **options: Any) -> ShelfBackend:
        return ShelfBackend(url, **options)

    def forms(self) -> list[UrlForm]:
        return [UrlForm("shelf:///FILE", CAPABILITIES, "a JSON file")]

    def local_store(self, url: str) -> LocalStore | None:
        return LocalStore("file", Path(url.removeprefix("shelf://")))


@hookimpl
def trackplug_register_backends(register: Register) -> None:
    register("shelf", ShelfFactory())
