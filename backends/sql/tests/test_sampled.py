"""``history_sampled`` is computed in the database, bucket for bucket as the contract's
rule (``trackplug.plugin.sample_points``) computes it from the whole history: from the
block-extremes rollup (``trackplug_sql.rollup``), kept up to date while writes go on, or
(every point at one step) from the points."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
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


def rollup_state(url: str) -> dict[str, int | None]:
    """Each sampled-ready series' resource and ``stale_from`` (None: its blocks are up to
    date), read through a backend of its own."""
    backend = SQLBackend(url)
    try:
        rows = backend._store.query(
            "SELECT s.resource, s.key, r.stale_from FROM trackplug_rollups AS r "
            "JOIN trackplug_series AS s ON s.id = r.series",
            {},
        )
    finally:
        backend.close()
    return {f"{resource}/{key}": stale for resource, key, stale in rows}


@contextmanager
def built_at_close(points: int) -> Iterator[None]:
    """A backend's close() builds the rollups of series it wrote this many points into."""
    kept = rollup.BUILD_AT_CLOSE
    rollup.BUILD_AT_CLOSE = points
    try:
        yield
    finally:
        rollup.BUILD_AT_CLOSE = kept


def test_closing_builds_the_rollup_of_a_series_written_in_bulk(persistent_url: str) -> None:
    """The first sample after a bulk load reads blocks built at close: a series written in
    bulk (one batch or a dict per step) gets them, a short one and a one-step one do not."""
    with built_at_close(300):
        with trackplug.connect(persistent_url) as tracker:
            tracker.log_points(
                "bulk", [trackplug.MetricPoint("m", i % 13, i, 0) for i in range(400)]
            )
            tracker.log_points("short", [trackplug.MetricPoint("m", 1.0, i, 0) for i in range(299)])
            tracker.log_points(
                "one-step", [trackplug.MetricPoint("m", i, 5, i) for i in range(400)]
            )
            for step in range(350):
                tracker.log_metrics("dict", {"a": step % 5, "b": -step}, step=step)
        assert rollup_state(persistent_url) == {"bulk/m": None, "dict/a": None, "dict/b": None}
        with trackplug.connect(persistent_url) as tracker:
            for resource, key in (("bulk", "m"), ("dict", "a"), ("short", "m"), ("one-step", "m")):
                history = tracker.history(resource, key)
                assert exact(tracker.history_sampled(resource, key, 30)) == exact(
                    sample_points(history, 30)
                )


def test_closing_brings_a_stale_rollup_up_to_date(persistent_url: str) -> None:
    """Points logged after a sample (the rollup marked stale) are built in by close."""
    with built_at_close(300):
        points = [trackplug.MetricPoint("m", float(i % 7), i, 0) for i in range(400)]
        with trackplug.connect(persistent_url) as tracker:
            tracker.log_points("a", points[:100])
            tracker.history_sampled("a", "m", 20)
            tracker.log_points("a", points[100:])
        assert rollup_state(persistent_url) == {"a/m": None}
        with trackplug.connect(persistent_url) as tracker:
            sample = tracker.history_sampled("a", "m", 20)
            assert exact(sample) == exact(sample_points(tracker.history("a", "m"), 20))


def test_a_write_over_many_series_credits_none(persistent_url: str) -> None:
    """Past ``TRACKED_SERIES_PER_BATCH`` series a write is not counted (what a write of one
    point into each of 100,000 resources must not pay for)."""
    keys = {"a": 1.0, "b": 2.0, "c": 3.0}
    with built_at_close(30), trackplug_sql_limit(2):
        with trackplug.connect(persistent_url) as tracker:
            for step in range(50):
                tracker.log_metrics("wide", keys, step=step)
                tracker.flush()  # a write per step: three series each
            tracker.log_points("narrow", [trackplug.MetricPoint("m", 1.0, i, 0) for i in range(50)])
        assert rollup_state(persistent_url) == {"narrow/m": None}


@contextmanager
def trackplug_sql_limit(series: int) -> Iterator[None]:
    from trackplug_sql import backend

    kept = backend.TRACKED_SERIES_PER_BATCH
    backend.TRACKED_SERIES_PER_BATCH = series
    try:
        yield
    finally:
        backend.TRACKED_SERIES_PER_BATCH = kept


def test_an_in_memory_store_builds_nothing_at_close() -> None:
    """Nobody reads ``sqlite://`` after close: its rollups are not built."""
    built: list[int] = []
    with built_at_close(10):
        tracker = trackplug.connect("sqlite://")
        backend = tracker._primary.backend
        assert isinstance(backend, SQLBackend)

        def build_rollup(series: int) -> bool:
            built.append(series)
            return True

        backend._store.build_rollup = build_rollup  # type: ignore[method-assign]
        tracker.log_points("a", [trackplug.MetricPoint("m", 1.0, i, 0) for i in range(50)])
        tracker.close()
    assert built == []


def test_a_build_that_fails_at_close_warns_and_still_closes(sqlite_url: str) -> None:
    """The points are committed: a failed build is a warning, the store is closed all the
    same, and the first sampled read builds the rollup."""
    with built_at_close(10):
        tracker = trackplug.connect(sqlite_url)
        backend = tracker._primary.backend
        assert isinstance(backend, SQLBackend)
        store = backend._store

        def fail(series: int) -> bool:
            raise trackplug.BackendError("the disk is full")

        store.build_rollup = fail  # type: ignore[method-assign]
        tracker.log_points("a", [trackplug.MetricPoint("m", i % 3, i, 0) for i in range(50)])
        with pytest.warns(trackplug.TrackplugWarning, match="the disk is full"):
            tracker.close()
    with pytest.raises(trackplug.BackendError, match="closed"):
        store.query("SELECT 1", {})
    assert rollup_state(sqlite_url) == {}
    with trackplug.connect(sqlite_url) as tracker:
        history = tracker.history("a", "m")
        assert exact(tracker.history_sampled("a", "m", 8)) == exact(sample_points(history, 8))


#: What a test does in turn: log a batch, sample the series, or close the tracker and open
#: another on the same store (which builds the rollup of a series written in bulk).
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("log"), DENSE),
        st.tuples(st.just("sample"), st.integers(4, 40)),
        st.tuples(st.just("reopen"), st.just(0)),
    ),
    min_size=1,
    max_size=8,
)


def test_samples_stay_exact_across_writes_reads_and_closes(persistent_url: str) -> None:
    """Any interleaving of writes, sampled reads and closes (each building what was written
    in bulk, from blocks of a few points) samples as the rule does."""
    counter = iter(range(10**6))
    trackers = [trackplug.connect(persistent_url)]
    try:

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            steps=STEPS,
            per_block=st.sampled_from([1, 2, 8]),
            at_close=st.integers(1, 60),
            offset=OFFSETS,
        )
        def check(
            steps: list[tuple[str, object]], per_block: int, at_close: int, offset: int
        ) -> None:
            rid = f"r{next(counter)}"
            with points_per_block(per_block), built_at_close(at_close):
                for operation, argument in steps:
                    if operation == "log":
                        points = [
                            trackplug.MetricPoint("m", value, offset + step, stamp)
                            for value, step, stamp in argument  # type: ignore[attr-defined]
                        ]
                        trackers[-1].log_points(rid, points)
                    elif operation == "reopen":
                        trackers[-1].close()
                        trackers.append(trackplug.connect(persistent_url))
                    else:
                        assert isinstance(argument, int)
                        history = trackers[-1].history(rid, "m")
                        sample = trackers[-1].history_sampled(rid, "m", argument)
                        assert exact(sample) == exact(sample_points(history, argument))
                trackers[-1].close()
                trackers.append(trackplug.connect(persistent_url))
                if trackers[-1].history(rid, "m"):
                    history = trackers[-1].history(rid, "m")
                    assert exact(trackers[-1].history_sampled(rid, "m", 10)) == exact(
                        sample_points(history, 10)
                    )

        check()
    finally:
        trackers[-1].close()
