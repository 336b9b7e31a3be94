"""The ``log_metric`` hook's batch, both ways it comes: the facade's
:class:`~trackplug.plugin.ColumnBatch` (a mapping that also offers its columns, which a
backend may read instead) and a plain ``{Resource: [MetricPoint, …]}`` dict. The same points
must be stored the same either way, whichever of the two views the backend reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from hypothesis import example, given
from hypothesis import strategies as st

from trackplug import MetricPoint, Resource, Tracker

from . import strategies as tps
from .base import ContractBase, Pair, open_tracker

__all__ = [
    "INTERLEAVED",
    "BatchTests",
    "Call",
    "PointCall",
    "RowCall",
    "batch_calls",
    "grouped",
    "log",
    "points_of",
]

NAN = float("nan")

_RESOURCES = ("a", "b", "c")
_KEYS = ("loss", "acc", "f1")


class PointCall(NamedTuple):
    """One ``log_metric`` call."""

    rid: str
    key: str
    value: float
    step: int
    timestamp: int


class RowCall(NamedTuple):
    """One ``log_metrics`` call (no performance record: buffered like ``log_metric``)."""

    rid: str
    metrics: dict[str, float]
    step: int
    timestamp: int


#: One call a tracker buffers, in arrival order.
Call = PointCall | RowCall


def batch_calls() -> st.SearchStrategy[list[Call]]:
    """Calls that make one batch: ``log_metric`` points and ``log_metrics`` rows (several
    keys at one step) over a few resources and keys, lone points of many resources, and
    exact duplicates (small steps, timestamps and values)."""
    rid = st.sampled_from(_RESOURCES) | st.builds("lone{}".format, st.integers(0, 30))
    # Every NaN as the facade sends it: the one canonical NaN (what a batch holds).
    value = (st.sampled_from([0.5, -0.0]) | tps.values()).map(lambda v: v if v == v else NAN)
    step = st.integers(-1, 2) | tps.steps()
    stamp = st.integers(0, 2) | tps.timestamps()
    point = st.builds(PointCall, rid, st.sampled_from(_KEYS), value, step, stamp)
    metrics = st.dictionaries(st.sampled_from(_KEYS), value, min_size=1)
    row = st.builds(RowCall, rid, metrics, step, stamp)
    return st.lists(point | row, max_size=40)


def points_of(calls: Sequence[Call]) -> list[tuple[str, MetricPoint]]:
    """Each call's points with their resource id, in arrival order."""
    found: list[tuple[str, MetricPoint]] = []
    for call in calls:
        if isinstance(call, RowCall):
            found += [
                (call.rid, MetricPoint(key, value, call.step, call.timestamp))
                for key, value in call.metrics.items()
            ]
        else:
            found.append((call.rid, MetricPoint(*call[1:])))
    return found


def grouped(points: Sequence[tuple[str, MetricPoint]]) -> dict[Resource, list[MetricPoint]]:
    """The contract's batch of ``points``, built the plain way: a dict by resource, in
    arrival order."""
    batch: dict[Resource, list[MetricPoint]] = {}
    for rid, point in points:
        batch.setdefault(Resource(rid), []).append(point)
    return batch


def log(tracker: Tracker, calls: Sequence[Call]) -> None:
    """Make ``calls`` on ``tracker`` (buffered: one batch at the next flush)."""
    for call in calls:
        if isinstance(call, RowCall):
            tracker.log_metrics(call.rid, call.metrics, step=call.step, timestamp=call.timestamp)
        else:
            tracker.log_metric(*call)


#: Resources interleaved in one batch, as calls arrive: the facade's batch holds them in
#: arrival order, a plain dict by resource; a point and a row each.
INTERLEAVED: list[Call] = [
    PointCall("a", "loss", 0.5, 0, 0),
    RowCall("b", {"loss": 0.25, "acc": 1.0}, 0, 0),
    PointCall("a", "loss", 0.125, 1, 1),
    RowCall("a", {"acc": -0.0}, 2, 2),
]


class BatchTests(ContractBase):
    """``log_metric(batch)`` stores the same from the facade's batch (a
    :class:`~trackplug.plugin.ColumnBatch`, whose columns a backend may read instead of its
    mapping) as from a plain dict of the same points."""

    def test_a_facade_batch_and_a_plain_batch_store_the_same(self) -> None:
        backend = self.new_backend()
        pair = Pair(open_tracker(backend))
        try:

            @self.examples
            @example(calls=INTERLEAVED)
            @given(calls=batch_calls())
            def check(calls: list[Call]) -> None:
                calls = [call for call in calls if _keepable(pair, call)]
                facade, plain = pair.fresh("facade-"), pair.fresh("plain-")
                log(pair.tracker, [call._replace(rid=facade + call.rid) for call in calls])
                pair.tracker.flush()  # one batch: the facade's
                points = [(plain + rid, point) for rid, point in points_of(calls)]
                backend.log_metric(grouped(points))  # type: ignore[attr-defined]
                for rid, point in points_of(calls):
                    for prefix in (facade, plain):
                        pair.model.log_metric(prefix + rid, *point)
                for rid in sorted(
                    {prefix + r for r, _ in points_of(calls) for prefix in (facade, plain)}
                ):
                    pair.check_resource(rid)

            check()
        finally:
            pair.close()


def _keepable(pair: Pair, call: Call) -> bool:
    """Whether the backend takes every value and step of ``call`` (a limited backend's are
    refused at the call, and the facade never sends them)."""
    values = call.metrics.values() if isinstance(call, RowCall) else [call.value]
    return not pair.caps.rejects_step(call.step) and not any(map(pair.caps.rejects, values))
