"""``history_sampled`` is computed in the database, bucket for bucket as the contract's
rule (``trackplug.plugin.sample_points``) computes it from the whole history: SQLite by
range seeks in the points' primary key, PostgreSQL in one statement (``width_bucket``)."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trackplug_sql import SQLBackend

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
