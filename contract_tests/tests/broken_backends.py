"""Backends that each break one rule of the contract; the suite must fail on every one.

Each is the in-memory reference with one hook changed (or a persistent variant of it,
``JournalBackend``, whose store is a journal of writes replayed on opening). ``MUTANTS``
names them; :func:`contract_for` builds the test class a plugin author would write.
"""

from __future__ import annotations

import itertools
import math
import struct
import unicodedata
import urllib.parse
from array import array
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from trackplug_contract import BackendContract

from trackplug import Capabilities, MetricPoint, PerfRecord, Resource, hookimpl
from trackplug.plugin import (
    FLOAT_MAX,
    INT64_MAX,
    Batch,
    ColumnsPage,
    HistoryPage,
    MemoryBackend,
    batch_columns,
    cursor_order,
    float_bits,
    order_cursor,
    page_after,
    point_order,
    sample_points,
    value_order,
)

Op = tuple[str, tuple[Any, ...]]


class JournalBackend(MemoryBackend):
    """A *correct* persistent backend: every write is appended to a journal (the "store")
    and replayed by the next backend opened on the same journal."""

    CAPABILITIES = Capabilities(persistent=True)

    def __init__(self, journal: list[Op] | None = None) -> None:
        super().__init__("memory://journal")
        self.journal: list[Op] = [] if journal is None else journal
        for name, args in self.journal:
            getattr(MemoryBackend, name)(self, *args)

    def record(self, op: Op) -> None:
        self.journal.append(op)

    @hookimpl
    def log_metric(self, batch: Batch) -> None:
        super().log_metric(batch)
        self.record(("log_metric", ({r: list(p) for r, p in batch.items()},)))

    @hookimpl
    def log_metrics(
        self, resource: Resource, points: Sequence[MetricPoint], perf: PerfRecord | None
    ) -> None:
        super().log_metrics(resource, points, perf)
        self.record(("log_metrics", (resource, list(points), perf)))

    @hookimpl
    def log_params(self, resource: Resource, params: Mapping[str, Any]) -> None:
        super().log_params(resource, params)
        self.record(("log_params", (resource, dict(params))))

    @hookimpl
    def set_tags(self, resource: Resource, tags: Mapping[str, str]) -> None:
        super().set_tags(resource, tags)
        self.record(("set_tags", (resource, dict(tags))))


class ClampingBackend(MemoryBackend):
    """A *correct* backend that declares what MLflow's stores do: ±inf clamped, -0.0 kept as
    0.0, and exact duplicates kept."""

    CAPABILITIES = Capabilities(infinity="clamp", negative_zero="positive", duplicates="keep")

    def _add(self, resource: Resource, points: Sequence[MetricPoint]) -> None:
        keys = self._points.setdefault(resource, {})
        for point in points:
            stored = keys.setdefault(point.key, {})
            stored[(len(stored), 0, 0)] = point._replace(
                value=self.CAPABILITIES.stored(point.value)
            )

    @hookimpl
    def log_metrics(
        self, resource: Resource, points: Sequence[MetricPoint], perf: PerfRecord | None
    ) -> None:
        if perf is not None:
            perf = perf._replace(value=self.CAPABILITIES.stored(perf.value))
        super().log_metrics(resource, points, perf)


class RejectingBackend(MemoryBackend):
    """A *correct* backend that refuses ±inf, NaN and steps beyond 32 bits (the facade
    refuses them for it), and takes batches of 3 points at most."""

    CAPABILITIES = Capabilities(
        infinity="reject", nan="reject", min_step=-(2**31), max_step=2**31 - 1, max_batch_size=3
    )


def reopen_journal(backend: object) -> JournalBackend:
    assert isinstance(backend, JournalBackend)
    return type(backend)(backend.journal)


def _points(backend: MemoryBackend, resource: Resource, key: str) -> list[MetricPoint]:
    return MemoryBackend.history(backend, resource, key)


# -- the mutants ---------------------------------------------------------------------------


class LatestByTimestamp(MemoryBackend):
    """Latest = the point with the greatest timestamp, whatever its step."""

    @hookimpl
    def get_metric(self, resource: Resource, key: str) -> float | None:
        points = _points(self, resource, key)
        return max(points, key=lambda p: p.timestamp).value if points else None

    @hookimpl
    def latest(self, resource: Resource) -> dict[str, float]:
        keys = MemoryBackend.latest(self, resource)
        return {k: v for k in keys if (v := self.get_metric(resource, k)) is not None}


class LatestTieByArrival(MemoryBackend):
    """Ties of (step, timestamp) go to the point logged first, not the greatest value."""

    @hookimpl
    def get_metric(self, resource: Resource, key: str) -> float | None:
        points = list(self._points.get(resource, {}).get(key, {}).values())
        return max(points, key=lambda p: (p.step, p.timestamp)).value if points else None

    @hookimpl
    def latest(self, resource: Resource) -> dict[str, float]:
        keys = MemoryBackend.latest(self, resource)
        return {k: v for k in keys if (v := self.get_metric(resource, k)) is not None}


class _ValueChange(MemoryBackend):
    """Stores ``change(value)`` instead of the value."""

    @staticmethod
    def change(value: float) -> float:
        return value

    def _change(self, points: Sequence[MetricPoint]) -> list[MetricPoint]:
        return [p._replace(value=self.change(p.value)) for p in points]

    @hookimpl
    def log_metric(self, batch: Batch) -> None:
        super().log_metric({r: self._change(points) for r, points in batch.items()})

    @hookimpl
    def log_metrics(
        self, resource: Resource, points: Sequence[MetricPoint], perf: PerfRecord | None
    ) -> None:
        super().log_metrics(resource, self._change(points), perf)


class NanAsZero(_ValueChange):
    """NaN is stored as 0.0."""

    @staticmethod
    def change(value: float) -> float:
        return 0.0 if math.isnan(value) else value


class NanAsNone(_ValueChange):
    """NaN is stored as None (SQL NULL): it reads back as "never logged"."""

    @staticmethod
    def change(value: float) -> float:
        return None if math.isnan(value) else value  # type: ignore[return-value]


class NegativeZeroLost(_ValueChange):
    """-0.0 is stored as 0.0, without declaring ``negative_zero="positive"``."""

    @staticmethod
    def change(value: float) -> float:
        return 0.0 if value == 0.0 else value


class InfinityClamped(_ValueChange):
    """±inf is stored as ±max float, without declaring ``infinity="clamp"``."""

    @staticmethod
    def change(value: float) -> float:
        return math.copysign(FLOAT_MAX, value) if math.isinf(value) else value


class Float32Values(_ValueChange):
    """Values are stored as 32-bit floats."""

    @staticmethod
    def change(value: float) -> float:
        try:
            narrowed: float = struct.unpack("<f", struct.pack("<f", value))[0]
        except OverflowError:
            return math.copysign(math.inf, value)
        return narrowed


class DeclaresClampButKeeps(MemoryBackend):
    """Declares ``infinity="clamp"`` but keeps ±inf: the declaration is checked too."""

    CAPABILITIES = Capabilities(infinity="clamp")


class DuplicatesKept(MemoryBackend):
    """Exact duplicates are all kept, without declaring ``duplicates="keep"``."""

    def _add(self, resource: Resource, points: Sequence[MetricPoint]) -> None:
        keys = self._points.setdefault(resource, {})
        for point in points:
            stored = keys.setdefault(point.key, {})
            stored[(len(stored), 0, 0)] = point


class HistoryUnordered(MemoryBackend):
    """History in arrival order."""

    @hookimpl
    def history(self, resource: Resource, key: str) -> list[MetricPoint]:
        return list(self._points.get(resource, {}).get(key, {}).values())


class Steps32Bit(MemoryBackend):
    """Steps are wrapped to signed 32 bits."""

    @staticmethod
    def _wrap(step: int) -> int:
        return (step + 2**31) % 2**32 - 2**31

    def _add(self, resource: Resource, points: Sequence[MetricPoint]) -> None:
        super()._add(resource, [p._replace(step=self._wrap(p.step)) for p in points])


class TimestampsInSeconds(MemoryBackend):
    """Timestamps lose their milliseconds."""

    def _add(self, resource: Resource, points: Sequence[MetricPoint]) -> None:
        super()._add(resource, [p._replace(timestamp=p.timestamp // 1000 * 1000) for p in points])


class _LooseIds(MemoryBackend):
    """Keeps and finds a resource under ``stored(id)`` instead of its id."""

    @staticmethod
    def stored(rid: str) -> str:
        return rid

    def _add(self, resource: Resource, points: Sequence[MetricPoint]) -> None:
        super()._add(Resource(self.stored(resource.id)), points)

    @hookimpl
    def history(self, resource: Resource, key: str) -> list[MetricPoint]:
        return super().history(Resource(self.stored(resource.id)), key)

    @hookimpl
    def get_metric(self, resource: Resource, key: str) -> float | None:
        return super().get_metric(Resource(self.stored(resource.id)), key)

    @hookimpl
    def latest(self, resource: Resource) -> dict[str, float]:
        return super().latest(Resource(self.stored(resource.id)))


class ResourcesCaseInsensitive(_LooseIds):
    """Resource ids are matched case-insensitively: ``A`` leaks into ``a``."""

    stored = staticmethod(str.lower)


class ResourceIdsTruncated(_LooseIds):
    """Resource ids are kept in a 64-character column: long ids sharing a prefix merge."""

    @staticmethod
    def stored(rid: str) -> str:
        return rid[:64]


class BatchKeepsFirstResource(MemoryBackend):
    """A batch that spans several resources is written for the first one only."""

    @hookimpl
    def log_metric(self, batch: Batch) -> None:
        for resource, points in list(batch.items())[:1]:
            super().log_metric({resource: points})


class BatchRunsOverwrite(MemoryBackend):
    """Reads the batch's columns as though each resource's points came in one run, as a
    plain dict's do: where the facade's batch interleaves resources (they arrive so), a
    resource keeps only its last run."""

    @hookimpl
    def log_metric(self, batch: Batch) -> None:
        rids, keys, values, steps, stamps = batch_columns(batch)
        points = zip(rids, map(MetricPoint, keys, values, steps, stamps), strict=True)
        runs: dict[Resource, list[MetricPoint]] = {}
        for rid, run in itertools.groupby(points, key=lambda pair: pair[0]):
            runs[Resource(rid)] = [point for _, point in run]
        super().log_metric(runs)


class LogMetricsDropsPerf(MemoryBackend):
    """``log_metrics`` writes the points but not the perf record."""

    @hookimpl
    def log_metrics(
        self, resource: Resource, points: Sequence[MetricPoint], perf: PerfRecord | None
    ) -> None:
        super().log_metrics(resource, points, None)


class LogMetricsNotAtomic(MemoryBackend):
    """``log_metrics`` writes its points one by one and fails half-way on an infinity it
    claims to keep, leaving a partial write. The suite sees the refusal of a value the
    backend declares it keeps; a partial write after a real failure (I/O, a lost
    connection) cannot be provoked through the public API, so each backend shows its own
    atomicity with a real failure in its own tests (e.g. backends/sql/tests)."""

    @hookimpl
    def log_metrics(
        self, resource: Resource, points: Sequence[MetricPoint], perf: PerfRecord | None
    ) -> None:
        for point in points:
            if math.isinf(point.value):
                raise OverflowError("cannot store an infinity")
            super().log_metrics(resource, [point], None)
        super().log_metrics(resource, [], perf)


class _NativeCopy(MemoryBackend):
    """A native ``copy_metrics`` built from ``sources`` and ``copied``."""

    def sources(self, source: Resource) -> list[Resource]:
        return [source]

    def copied(self, resource: Resource) -> list[MetricPoint]:
        keys = MemoryBackend.latest(self, resource)
        return [p for key in keys for p in MemoryBackend.history(self, resource, key)]

    def copy_perf(self, source: Resource, target: Resource) -> None:
        if (perf := self._perf.get(source)) is not None:
            self._perf[target] = perf

    @hookimpl
    def copy_metrics(self, source: Resource, target: Resource) -> bool:
        for resource in self.sources(source):
            MemoryBackend.log_metric(self, {target: self.copied(resource)})
        self.copy_perf(source, target)
        return True


class CopyTakesNeighbours(_NativeCopy):
    """``copy_metrics`` also copies every resource whose id starts with the source's."""

    def sources(self, source: Resource) -> list[Resource]:
        return [Resource(r) for r in self.resources() if r.startswith(source.id)]


class CopyLatestOnly(_NativeCopy):
    """``copy_metrics`` copies the latest point of each key, not the full history."""

    def copied(self, resource: Resource) -> list[MetricPoint]:
        keys = MemoryBackend.latest(self, resource)
        return [MemoryBackend.history(self, resource, key)[-1] for key in keys]


class CopySplitsDottedKeys(_NativeCopy):
    """``copy_metrics`` keeps only the part of a key before its first dot."""

    def copied(self, resource: Resource) -> list[MetricPoint]:
        return [p._replace(key=p.key.split(".")[0]) for p in super().copied(resource)]


class CopyWithoutPerf(_NativeCopy):
    """``copy_metrics`` copies the history but not the perf record."""

    def copy_perf(self, source: Resource, target: Resource) -> None:
        """Forgets the perf record."""


class _Ranking(MemoryBackend):
    """``best`` from ``rank(values)``."""

    def ranked(self, key: str) -> list[tuple[str, float]]:
        return [
            (rid, value)
            for rid in self.resources()
            if (value := self.get_metric(Resource(rid), key)) is not None
        ]


class BestTiesByIdDescending(_Ranking):
    """Ties in ``best`` go to the greater resource id."""

    @hookimpl
    def best(self, key: str, order: Literal["max", "min"], limit: int) -> list[tuple[str, float]]:
        ranked = [item for item in self.ranked(key) if not math.isnan(item[1])]
        ranked.sort(key=lambda item: item[0], reverse=True)
        ranked.sort(key=lambda item: item[1], reverse=order == "max")
        return ranked[:limit]


class BestIncludesNan(_Ranking):
    """``best`` ranks resources whose latest value is NaN (last)."""

    @hookimpl
    def best(self, key: str, order: Literal["max", "min"], limit: int) -> list[tuple[str, float]]:
        sign = -1.0 if order == "max" else 1.0
        ranked = self.ranked(key)
        ranked.sort(key=lambda item: (math.isnan(item[1]), sign * item[1], item[0]))
        return ranked[:limit]


class BestOfHistory(MemoryBackend):
    """``best`` ranks by the best value ever logged, not by the latest."""

    @hookimpl
    def best(self, key: str, order: Literal["max", "min"], limit: int) -> list[tuple[str, float]]:
        pick = max if order == "max" else min
        ranked = []
        for rid in self.resources():
            values = [p.value for p in self.history(Resource(rid), key) if not math.isnan(p.value)]
            if values and not math.isnan(self.get_metric(Resource(rid), key) or 0.0):
                ranked.append((rid, pick(values)))
        sign = -1.0 if order == "max" else 1.0
        ranked.sort(key=lambda item: (sign * item[1], item[0]))
        return ranked[:limit]


class ResourcesUnsorted(MemoryBackend):
    """``resources()`` in arrival order."""

    @hookimpl
    def resources(self) -> list[str]:
        return [r.id for r, keys in self._points.items() if keys]


class PasswordInRepr(MemoryBackend):
    """Shows its URL, password included, in ``repr``."""

    def __init__(self, url: str = "memory://") -> None:
        super().__init__("memory://")
        self.secret_url = url

    def __repr__(self) -> str:
        return f"PasswordInRepr({self.secret_url!r})"


class JournalLosesLastWrite(JournalBackend):
    """Persistent, but each write reaches the journal only with the next one: closing
    loses the last batch."""

    def __init__(self, journal: list[Op] | None = None) -> None:
        super().__init__(journal)
        self.pending: Op | None = None

    def record(self, op: Op) -> None:
        if self.pending is not None:
            self.journal.append(self.pending)
        self.pending = op


class JournalWithoutPerf(JournalBackend):
    """Persistent, but perf records are not written to the journal."""

    def record(self, op: Op) -> None:
        name, args = op
        if name == "log_metrics":
            op = (name, (args[0], args[1], None))
        super().record(op)


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def _cut_at_250_bytes(text: str) -> str:
    return text.encode()[:250].decode(errors="ignore")


class ResourceIdsNormalized(_LooseIds):
    """Resource ids are NFKC-normalized: ``é`` written as one code point or as ``e`` and a
    combining accent, ``ﬁ`` and ``fi``, fullwidth ``K`` and ``K`` name one resource."""

    stored = staticmethod(_nfkc)


class ResourceIdsPercentDecoded(_LooseIds):
    """Resource ids are percent-decoded, as if they were URL paths: ``a%20b`` is ``a b``."""

    @staticmethod
    def stored(rid: str) -> str:
        return urllib.parse.unquote(rid)


class ResourceIdsCutAtBytes(_LooseIds):
    """Resource ids are kept in a column of 250 *bytes* (UTF-8), not 250 characters."""

    stored = staticmethod(_cut_at_250_bytes)


class _LooseKeys(MemoryBackend):
    """Keeps and finds a metric under ``stored(key)`` instead of its key."""

    @staticmethod
    def stored(key: str) -> str:
        return key

    def _add(self, resource: Resource, points: Sequence[MetricPoint]) -> None:
        super()._add(resource, [p._replace(key=self.stored(p.key)) for p in points])

    @hookimpl
    def history(self, resource: Resource, key: str) -> list[MetricPoint]:
        return super().history(resource, self.stored(key))

    @hookimpl
    def get_metric(self, resource: Resource, key: str) -> float | None:
        return super().get_metric(resource, self.stored(key))

    @hookimpl
    def best(self, key: str, order: Literal["max", "min"], limit: int) -> list[tuple[str, float]]:
        return super().best(self.stored(key), order, limit)


class KeysNormalized(_LooseKeys):
    """Metric keys are NFKC-normalized: ``K`` (the Kelvin sign) is ``K``, ``ﬁ`` is ``fi``."""

    stored = staticmethod(_nfkc)


class KeysCutAtBytes(_LooseKeys):
    """Metric keys are kept in a column of 250 bytes (UTF-8), not 250 characters."""

    stored = staticmethod(_cut_at_250_bytes)


class IdsSortedIgnoringCase(MemoryBackend):
    """``resources()`` and ties in ``best`` follow a case-insensitive collation (``a`` before
    ``B``), not code-point order (``B`` before ``a``), as ``ORDER BY`` under many locales."""

    @hookimpl
    def resources(self) -> list[str]:
        return sorted(MemoryBackend.resources(self), key=lambda rid: (rid.casefold(), rid))

    @hookimpl
    def best(self, key: str, order: Literal["max", "min"], limit: int) -> list[tuple[str, float]]:
        sign = -1.0 if order == "max" else 1.0
        ranked = MemoryBackend.best(self, key, order, len(self.resources()) or 1)
        ranked.sort(key=lambda item: (sign * item[1], item[0].casefold(), item[0]))
        return ranked[:limit]


class KeysSortedIgnoringCase(MemoryBackend):
    """``latest()`` lists keys case-insensitively (``a`` before ``B``)."""

    @hookimpl
    def latest(self, resource: Resource) -> dict[str, float]:
        values = MemoryBackend.latest(self, resource)
        return {key: values[key] for key in sorted(values, key=lambda k: (k.casefold(), k))}


class CopyKeepsTargetPerf(_NativeCopy):
    """``copy_metrics`` leaves the target's own perf record in place instead of the
    source's (it sets one only where the target has none)."""

    def copy_perf(self, source: Resource, target: Resource) -> None:
        if (perf := self._perf.get(source)) is not None:
            self._perf.setdefault(target, perf)


class CopyReplacesTarget(_NativeCopy):
    """``copy_metrics`` replaces the target: its own points and perf record are dropped."""

    @hookimpl
    def copy_metrics(self, source: Resource, target: Resource) -> bool:
        self._points.pop(target, None)
        self._perf.pop(target, None)
        return super().copy_metrics(source, target)


class BestZerosByBits(MemoryBackend):
    """``best`` ranks ``-0.0`` below ``0.0`` (the order of ``latest``), where the two are
    equal values and tie, broken by resource id."""

    @hookimpl
    def best(self, key: str, order: Literal["max", "min"], limit: int) -> list[tuple[str, float]]:
        ranked = MemoryBackend.best(self, key, order, len(self.resources()) or 1)
        ranked.sort(key=lambda item: value_order(item[1]), reverse=order == "max")
        return ranked[:limit]


class ResourcesWithoutPoints(MemoryBackend):
    """``resources()`` lists every resource ever written to, even by a write that carried
    no point (``log_metrics`` of nothing, a copy of a resource that has only a perf
    record)."""

    @hookimpl
    def resources(self) -> list[str]:
        return sorted({r.id for r in self._points} | {r.id for r in self._perf})


class PredictionsDropNonFinite(MemoryBackend):
    """A native ``log_prediction_metrics`` that leaves out statistics that are NaN or
    infinite (e.g. the std of predictions with an infinity)."""

    @hookimpl
    def log_prediction_metrics(self, job: Resource, points: Sequence[MetricPoint]) -> bool:
        MemoryBackend.log_metric(self, {job: [p for p in points if math.isfinite(p.value)]})
        return True


class ResourceIdsTrimmed(_LooseIds):
    """Resource ids lose leading and trailing spaces (a trimming form, or a padded CHAR
    column): ``a``, ``a `` and `` a`` are one resource."""

    stored = staticmethod(str.strip)


class KeysIgnoringCase(_LooseKeys):
    """Metric keys are matched case-insensitively: ``loss`` and ``Loss`` are one metric."""

    stored = staticmethod(str.lower)


class DuplicatesByValue(MemoryBackend):
    """A point is a duplicate when its value is *equal* (``==``), not when its bits are:
    ``0.0`` swallows ``-0.0``, and NaN (never equal to itself) is stored again and again."""

    def _add(self, resource: Resource, points: Sequence[MetricPoint]) -> None:
        keys = self._points.setdefault(resource, {})
        for point in points:
            stored = keys.setdefault(point.key, {})
            same = [
                identity
                for identity, p in stored.items()
                if (p.step, p.timestamp, p.value) == (point.step, point.timestamp, point.value)
            ]
            if not same:
                stored[(point.step, point.timestamp, len(stored))] = point


class DuplicatesAcrossResources(MemoryBackend):
    """A point already stored for *another* resource counts as a duplicate and is dropped."""

    def _add(self, resource: Resource, points: Sequence[MetricPoint]) -> None:
        seen = {
            (p.key, p.step, p.timestamp, float_bits(p.value))
            for other, keys in self._points.items()
            if other != resource
            for stored in keys.values()
            for p in stored.values()
        }
        fresh = [p for p in points if (p.key, p.step, p.timestamp, float_bits(p.value)) not in seen]
        super()._add(resource, fresh)


class TimestampsAsFloats(MemoryBackend):
    """Timestamps go through a float (a REAL column, a JSON number read as a double): beyond
    2**53 they lose their last digits."""

    def _add(self, resource: Resource, points: Sequence[MetricPoint]) -> None:
        rounded = [p._replace(timestamp=min(int(float(p.timestamp)), 2**63 - 1)) for p in points]
        super()._add(resource, rounded)


class ValuesAsShortText(_ValueChange):
    """Values are kept as text with 15 significant digits: ``1/3`` comes back changed."""

    @staticmethod
    def change(value: float) -> float:
        return float(f"{value:.15g}")


class PerfFirstWins(MemoryBackend):
    """A later perf record does not replace the first one."""

    @hookimpl
    def log_metrics(
        self, resource: Resource, points: Sequence[MetricPoint], perf: PerfRecord | None
    ) -> None:
        super().log_metrics(resource, points, None if resource in self._perf else perf)


class BestMinReversesMax(_Ranking):
    """``best(order="min")`` is the ``max`` ranking reversed: ties come by id descending."""

    @hookimpl
    def best(self, key: str, order: Literal["max", "min"], limit: int) -> list[tuple[str, float]]:
        ranked = MemoryBackend.best(self, key, "max", len(self.resources()) or 1)
        return (ranked if order == "max" else ranked[::-1])[:limit]


class CopySkipsHeldSteps(_NativeCopy):
    """``copy_metrics`` skips a source point where the target already has a point of that
    key at the same step and timestamp (an upsert keyed without the value)."""

    @hookimpl
    def copy_metrics(self, source: Resource, target: Resource) -> bool:
        held = {
            (key, p.step, p.timestamp)
            for key in MemoryBackend.latest(self, target)
            for p in MemoryBackend.history(self, target, key)
        }
        points = [p for p in self.copied(source) if (p.key, p.step, p.timestamp) not in held]
        MemoryBackend.log_metric(self, {target: points})
        self.copy_perf(source, target)
        return True


class PerfIgnoringCase(MemoryBackend):
    """``get_perf`` finds a resource's perf record case-insensitively: ``A`` without a
    record of its own reads ``a``'s."""

    @hookimpl
    def get_perf(self, resource: Resource) -> PerfRecord | None:
        found = MemoryBackend.get_perf(self, resource)
        folded = [p for r, p in self._perf.items() if r.id.casefold() == resource.id.casefold()]
        return found or (folded[0] if folded else None)


class PagesSkipBoundary(MemoryBackend):
    """``history_page`` hands back the cursor of the point after a page's last: the first
    point of every page after the first is lost (an off-by-one keyset)."""

    @hookimpl
    def history_page(
        self, resource: Resource, key: str, cursor: str | None, limit: int
    ) -> HistoryPage:
        page = MemoryBackend.history_page(self, resource, key, cursor, limit)
        if page.cursor is None:
            return page
        rest = MemoryBackend.history_page(self, resource, key, page.cursor, 1)
        return HistoryPage(page.points, rest.cursor)


class SeekByStepOnly(MemoryBackend):
    """``history_page_after`` seeks past the whole step of ``after`` (an index on steps
    alone): the points at that step with a later timestamp are lost."""

    @hookimpl
    def history_page_after(
        self, resource: Resource, key: str, after: tuple[int, int, int], limit: int
    ) -> HistoryPage:
        past_step = (after[0], INT64_MAX, INT64_MAX)
        return page_after(MemoryBackend.history(self, resource, key), past_step, limit)


class PagesRepeatBoundary(MemoryBackend):
    """``history_page`` starts a page at its cursor's point, not after it (``>=`` for
    ``>``): the last point of a page comes again at the head of the next."""

    @hookimpl
    def history_page(
        self, resource: Resource, key: str, cursor: str | None, limit: int
    ) -> HistoryPage:
        points = MemoryBackend.history(self, resource, key)
        start = 0
        if cursor is not None:  # one point back: the page's last point again, still moving on
            order, seen = cursor_order(cursor)
            start = bisect_left(points, order, key=point_order) + seen - 1
        page = points[start : start + limit]
        more = start + limit < len(points)
        return HistoryPage(page, order_cursor(page, cursor) if more else None)


class ColumnsSkipBoundary(MemoryBackend):
    """``history_columns_page`` hands back the cursor of the point after a page's last: the
    first point of every page of columns after the first is lost (``history_page`` is
    right, so only the columns show it)."""

    @hookimpl
    def history_columns_page(
        self, resource: Resource, key: str, cursor: str | None, limit: int
    ) -> ColumnsPage:
        page = MemoryBackend.history_columns_page(self, resource, key, cursor, limit)
        if page.cursor is None:
            return page
        rest = MemoryBackend.history_page(self, resource, key, page.cursor, 1)
        return page._replace(cursor=rest.cursor)


class ColumnsValuesByFloat(MemoryBackend):
    """``history_columns_page`` decodes values by float arithmetic, not by their bits (a
    store's ``value + 0.0``): -0.0 comes back as 0.0, in the columns alone."""

    @hookimpl
    def history_columns_page(
        self, resource: Resource, key: str, cursor: str | None, limit: int
    ) -> ColumnsPage:
        page = MemoryBackend.history_columns_page(self, resource, key, cursor, limit)
        return page._replace(values=array("d", [value + 0.0 for value in page.values]))


class SampleDecimated(MemoryBackend):
    """A sampled history of evenly spaced points (what MLflow's
    ``get_metric_history_bulk_interval`` does): a spike between them disappears."""

    @hookimpl
    def history_sampled(self, resource: Resource, key: str, max_points: int) -> list[MetricPoint]:
        points = _points(self, resource, key)
        stride = -(-len(points) // max_points)
        return points[::stride]


class SampleIgnoresBound(MemoryBackend):
    """A sampled history of the whole history, however long."""

    @hookimpl
    def history_sampled(self, resource: Resource, key: str, max_points: int) -> list[MetricPoint]:
        return _points(self, resource, key)


class SampleWithoutEnds(MemoryBackend):
    """Each bucket's extremes, but not the history's first and last points."""

    @hookimpl
    def history_sampled(self, resource: Resource, key: str, max_points: int) -> list[MetricPoint]:
        points = _points(self, resource, key)
        sample = sample_points(points, max_points)
        return sample if len(points) <= max_points else sample[1:-1]


class SampleUnordered(MemoryBackend):
    """The right points, most recent first."""

    @hookimpl
    def history_sampled(self, resource: Resource, key: str, max_points: int) -> list[MetricPoint]:
        return sample_points(_points(self, resource, key), max_points)[::-1]


# -- the test classes ----------------------------------------------------------------------

Factory = Callable[[], object]
MUTANTS: dict[str, type[MemoryBackend]] = {
    cls.__name__: cls
    for cls in (
        LatestByTimestamp,
        LatestTieByArrival,
        NanAsZero,
        NanAsNone,
        NegativeZeroLost,
        InfinityClamped,
        Float32Values,
        DeclaresClampButKeeps,
        DuplicatesKept,
        HistoryUnordered,
        Steps32Bit,
        TimestampsInSeconds,
        ResourcesCaseInsensitive,
        ResourceIdsTruncated,
        BatchKeepsFirstResource,
        BatchRunsOverwrite,
        LogMetricsDropsPerf,
        LogMetricsNotAtomic,
        CopyTakesNeighbours,
        CopyLatestOnly,
        CopySplitsDottedKeys,
        CopyWithoutPerf,
        BestTiesByIdDescending,
        BestIncludesNan,
        BestOfHistory,
        ResourcesUnsorted,
        PasswordInRepr,
        JournalLosesLastWrite,
        JournalWithoutPerf,
        ResourceIdsNormalized,
        ResourceIdsPercentDecoded,
        ResourceIdsCutAtBytes,
        KeysNormalized,
        KeysCutAtBytes,
        IdsSortedIgnoringCase,
        KeysSortedIgnoringCase,
        CopyKeepsTargetPerf,
        CopyReplacesTarget,
        BestZerosByBits,
        ResourcesWithoutPoints,
        PredictionsDropNonFinite,
        ResourceIdsTrimmed,
        KeysIgnoringCase,
        DuplicatesByValue,
        DuplicatesAcrossResources,
        TimestampsAsFloats,
        ValuesAsShortText,
        PerfFirstWins,
        BestMinReversesMax,
        CopySkipsHeldSteps,
        PerfIgnoringCase,
        PagesSkipBoundary,
        PagesRepeatBoundary,
        ColumnsSkipBoundary,
        ColumnsValuesByFloat,
        SeekByStepOnly,
        SampleDecimated,
        SampleIgnoresBound,
        SampleWithoutEnds,
        SampleUnordered,
    )
}
#: Hooks whose breakage shows only through other hooks, and the backends that show it:
#: ``flush`` and ``close`` through a reopen (a store that loses the last write on
#: closing), ``capabilities`` through a declaration the backend does not keep.
SHOWN_THROUGH_OTHERS = {
    "flush": JournalLosesLastWrite,
    "close": JournalLosesLastWrite,
    "capabilities": DeclaresClampButKeeps,
}
#: Backends the suite must pass: the reference, its persistent variant, and two that
#: declare deviations and keep exactly them.
CORRECT: dict[str, type[MemoryBackend]] = {
    cls.__name__: cls for cls in (MemoryBackend, JournalBackend, ClampingBackend, RejectingBackend)
}


def contract_for(name: str) -> type[BackendContract]:
    """The test class for the backend called ``name``, as a plugin author would write it."""
    from broken_params_backends import CORRECT as CORRECT_PARAMS
    from broken_params_backends import MUTANTS as MUTANTS_PARAMS

    cls = {**MUTANTS, **CORRECT, **MUTANTS_PARAMS, **CORRECT_PARAMS}[name]
    body: dict[str, Any] = {"make_backend": lambda self: cls()}
    if issubclass(cls, JournalBackend):
        body["reopen_backend"] = lambda self, backend: reopen_journal(backend)
    body["make_backend_with_password"] = lambda self, password: (
        PasswordInRepr(f"memory://user:{password}@host") if cls is PasswordInRepr else None
    )
    return type(f"Test{name}", (BackendContract,), body)
