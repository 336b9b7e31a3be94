"""``history_sampled`` is computed in the database, bucket for bucket as the contract's
rule (``trackplug.plugin.sample_points``) computes it from the whole history: from the
block-extremes rollup (``trackplug_sql.rollup``), kept up to date while writes go on, or
(every point at one step) from the points."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trackplug_sql import SQLBackend, rollup
from trackplug_sql.codec import orders_to_bits
from trackplug_sql.schema import VALUE_BITS

import trackplug
from trackplug.plugin import float_bits, sample_points

VALUES = st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.5, math.nan, math.inf, -math.inf, 1e300])
SERIES = st.lists(
    st.tuples(
        VALUES,
        st.one_of(st.integers(-3, 30), st.sampled_from([-(2**63), 2**63 - 1])),
        st.integers(0, 5),
    ),
    min_size=1,
    max_size=80,
)


def exact(points: list[trackplug.MetricPoint]) -> list[tuple[int, int, int]]:
    return [(p.step, p.timestamp, float_bits(p.value)) for p in points]


def test_the_database_samples_as_the_rule_does(url: str) -> None:
    with trackplug.connect(url) as tracker:
        assert isinstance(tracker._primary.backend, SQLBackend)  # the native hook answers
        counter = iter(range(10**6))

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        @given(series=SERIES, max_points=st.integers(4, 30), one_step=st.booleans())
        def check(series: list[tuple[float, int, int]], max_points: int, one_step: bool) -> None:
            rid = f"r{next(counter)}"
            for value, step, stamp in series:
                tracker.log_metric(rid, "m", value, step=0 if one_step else step, timestamp=stamp)
            history = tracker.history(rid, "m")
            sample = tracker.history_sampled(rid, "m", max_points)
            assert exact(sample) == exact(sample_points(history, max_points))

        check()


def test_a_long_series_keeps_its_spike(url: str) -> None:
    with trackplug.connect(url) as tracker:
        values = [math.sin(i / 50) for i in range(5000)]
        values[3210] = 40.0
        tracker.log_points("r", [trackplug.MetricPoint("m", v, i, 7) for i, v in enumerate(values)])
        sample = tracker.history_sampled("r", "m", 200)
        assert len(sample) <= 200
        assert [p.step for p in sample if p.value == 40.0] == [3210]
        assert (sample[0].step, sample[-1].step) == (0, 4999)


#: Batches over a range of steps that blocks of a few points cover whole (moved by an
#: example's offset to either end of the signed 64-bit steps).
DENSE = st.lists(
    st.tuples(VALUES, st.integers(0, 240), st.integers(0, 2)), min_size=1, max_size=120
)
OFFSETS = st.sampled_from([-40, -(2**63), 2**63 - 241])
#: What a test does to one series, in turn: log a batch of ``(value, step, stamp)`` points
#: or copy another resource's series over it; then sample it to so many points.
OPERATIONS = st.lists(
    st.tuples(st.sampled_from(["log", "log", "copy"]), DENSE, st.integers(4, 40)),
    min_size=1,
    max_size=6,
)


@contextmanager
def points_per_block(count: int) -> Iterator[None]:
    """Blocks of a few points, so that short series exercise whole blocks and edges."""
    kept = rollup.POINTS_PER_BLOCK
    rollup.POINTS_PER_BLOCK = count
    try:
        yield
    finally:
        rollup.POINTS_PER_BLOCK = kept


def test_the_rollup_stays_exact_while_writes_go_on(url: str) -> None:
    """Out-of-order steps, duplicates, NaN, ±inf, -0.0, the extreme steps; writes and copies
    after a sample was read (the blocks are rebuilt from the stale step on)."""
    with trackplug.connect(url) as tracker:
        counter = iter(range(10**6))

        @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
        @given(operations=OPERATIONS, per_block=st.sampled_from([1, 2, 3, 8, 64]), offset=OFFSETS)
        def check(
            operations: list[tuple[str, list[tuple[float, int, int]], int]],
            per_block: int,
            offset: int,
        ) -> None:
            rid = f"r{next(counter)}"
            with points_per_block(per_block):
                for operation, batch, max_points in operations:
                    target = rid if operation == "log" else f"{rid}-source"
                    points = [
                        trackplug.MetricPoint("m", value, offset + step, stamp)
                        for value, step, stamp in batch
                    ]
                    tracker.log_points(target, points)
                    if operation == "copy":
                        tracker.copy_metrics(target, rid)
                    history = tracker.history(rid, "m")
                    sample = tracker.history_sampled(rid, "m", max_points)
                    assert exact(sample) == exact(sample_points(history, max_points))

        check()


def test_a_write_marks_only_a_sampled_series_stale(persistent_url: str) -> None:
    """The write side's whole cost: one row of ``trackplug_rollups`` per series sampled."""
    with trackplug.connect(persistent_url) as tracker:
        points = [trackplug.MetricPoint("m", float(i % 7), i, 0) for i in range(500)]
        tracker.log_points("a", points)
        tracker.log_points("b", points)
        tracker.history_sampled("a", "m", 20)
        tracker.log_points("a", [trackplug.MetricPoint("m", 99.0, 250, 1)])
        tracker.log_points("b", [trackplug.MetricPoint("m", 99.0, 250, 1)])
        store = SQLBackend(persistent_url)
        try:
            state = store._store.query(
                "SELECT s.resource, r.stale_from FROM trackplug_rollups AS r "
                "JOIN trackplug_series AS s ON s.id = r.series",
                {},
            )
        finally:
            store.close()
        assert state == [("a", 250)]
        sample = tracker.history_sampled("a", "m", 20)
        assert [p.step for p in sample if p.value == 99.0] == [250]


def test_the_blocks_keep_their_extremes_bits(persistent_url: str) -> None:
    """Since schema version 4 a point's bits are rebuilt from its order; the blocks still
    keep their extremes' bits, computed in SQL (``schema.VALUE_BITS``) as the codec does."""
    values = [math.nan, -0.0, 0.0, -1.5, 2.5, math.inf, -math.inf, 5e-324, -5e-324, -1e300]
    points = [trackplug.MetricPoint("m", values[i % len(values)], i, 0) for i in range(400)]
    with trackplug.connect(persistent_url) as tracker, points_per_block(4):
        tracker.log_points("r", points)
        tracker.history_sampled("r", "m", 20)
    store = SQLBackend(persistent_url)
    try:
        blocks = store._store.query(
            "SELECT min_value_order, min_value_bits, max_value_order, max_value_bits "
            "FROM trackplug_blocks",
            {},
        )
        each = store._store.query(f"SELECT value_order, {VALUE_BITS} FROM trackplug_points", {})
    finally:
        store.close()
    assert len(blocks) >= 20
    for order, bits in [*each, *[r[:2] for r in blocks], *[r[2:] for r in blocks]]:
        assert bits == orders_to_bits([order])[0]
    assert {bits for _, bits in each} == {float_bits(v) for v in values}
