"""Points: values (bit-exact, or the declared deviation), steps, keys, latest, history,
duplicates. Each test drives the backend through the public facade, ``trackplug.Tracker``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from trackplug import (
    Capabilities,
    InvalidTypeError,
    MetricPoint,
    UnsupportedValueError,
    ValidationError,
)
from trackplug.plugin import INT64_MAX, INT64_MIN, point_order

from . import strategies as tps
from .base import ContractBase, Pair
from .reference import exact, exact_columns, exact_history

__all__ = [
    "DuplicateTests",
    "HistoryTests",
    "KeyTests",
    "LatestTests",
    "OrderTests",
    "StepTests",
    "ValueTests",
    "declared",
]


def expect_value(pair: Pair, rid: str, key: str, value: float, step: int = 0) -> None:
    """``value`` was just logged: read back as declared, or refused with nothing written."""
    caps = pair.caps
    if caps.rejects(value):
        assert pair.tracker.latest(rid) == {}, f"{value!r} was refused but something was written"
        return
    want = caps.stored(math.nan if math.isnan(value) else value)  # one canonical NaN
    got = pair.tracker.get_metric(rid, key)
    assert exact(got) == exact(want), (
        f"logged {value!r}: read back {got!r}, expected {want!r} "
        f"(declared infinity={caps.infinity!r}, nan={caps.nan!r}, "
        f"negative_zero={caps.negative_zero!r})"
    )
    assert exact_history(pair.tracker.history(rid, key)) == exact_history(
        [MetricPoint(key, want, step, 7)]
    ), f"history after logging {value!r}"


def log_one(pair: Pair, rid: str, key: str, value: object, step: int = 0) -> bool:
    """Log one point at timestamp 7; False when the facade refused it as declared."""
    caps = pair.caps
    if isinstance(value, float) and caps.rejects(value):
        with pytest.raises(UnsupportedValueError):
            pair.tracker.log_metric(rid, key, value, step=step, timestamp=7)
        return False
    pair.tracker.log_metric(rid, key, value, step=step, timestamp=7)  # type: ignore[arg-type]
    return True


class ValueTests(ContractBase):
    """NaN, ±inf, -0.0 and every other float round-trip bit-exactly, or as declared."""

    @pytest.mark.parametrize("value", tps.SPECIAL_VALUES, ids=repr)
    def test_special_value_round_trips(self, value: float) -> None:
        with self.pair() as pair:
            log_one(pair, "run", "m", value)
            expect_value(pair, "run", "m", value)

    def test_values_round_trip(self) -> None:
        with self.pair() as pair:

            @self.examples
            @given(value=tps.values())
            def check(value: float) -> None:
                rid = pair.fresh()
                log_one(pair, rid, "m", value)
                expect_value(pair, rid, "m", value)

            check()

    def test_numbers_are_stored_as_floats(self) -> None:
        with self.pair() as pair:

            @self.examples
            @given(number=tps.real_numbers())
            def check(number: object) -> None:
                rid = pair.fresh()
                pair.log(rid, "m", number)
                pair.check_resource(rid, ["m"])

            check()

    @pytest.mark.parametrize("value", [True, False, None, "0.5", [1.0], {"v": 1.0}], ids=repr)
    def test_non_numbers_are_refused(self, value: object) -> None:
        with self.pair() as pair:
            with pytest.raises(InvalidTypeError, match="bad_metric"):
                pair.tracker.log_metric("run", "bad_metric", value)  # type: ignore[arg-type]
            assert pair.tracker.resources() == [], "a refused value was written"


class StepTests(ContractBase):
    """Steps are signed 64-bit integers (or the declared range), in any order."""

    @pytest.mark.parametrize("step", tps.SPECIAL_STEPS)
    def test_64_bit_steps_are_kept(self, step: int) -> None:
        with self.pair() as pair:
            if pair.caps.rejects_step(step):
                with pytest.raises(UnsupportedValueError):
                    pair.tracker.log_metric("run", "m", 1.5, step=step, timestamp=7)
                assert pair.tracker.resources() == [], "a refused step was written"
                return
            pair.tracker.log_metric("run", "m", 1.5, step=step, timestamp=7)
            history = pair.tracker.history("run", "m")
            assert [p.step for p in history] == [step], f"step {step} read back as {history}"

    @pytest.mark.parametrize("step", [2**63, -(2**63) - 1, 2**64, 1.0, True, "3"], ids=repr)
    def test_steps_beyond_64_bits_are_refused(self, step: object) -> None:
        with self.pair() as pair:
            with pytest.raises(ValidationError):
                pair.tracker.log_metric("run", "m", 1.0, step=step)  # type: ignore[arg-type]
            assert pair.tracker.resources() == [], "a refused step was written"

    @pytest.mark.parametrize("timestamp", tps.SPECIAL_TIMESTAMPS)
    def test_timestamps_are_kept(self, timestamp: int) -> None:
        with self.pair() as pair:
            pair.tracker.log_metric("run", "m", 1.5, step=3, timestamp=timestamp)
            history = pair.tracker.history("run", "m")
            assert [p.timestamp for p in history] == [timestamp], f"timestamp {timestamp}"

    def test_default_step_and_timestamp(self) -> None:
        with self.pair() as pair:
            from trackplug.plugin import now_ms

            before = now_ms()
            pair.tracker.log_metric("run", "m", 1.0)
            after = now_ms()
            (point,) = pair.tracker.history("run", "m")
            assert point.step == 0, "the default step is 0"
            assert before <= point.timestamp <= after, "the default timestamp is now, in ms"


class KeyTests(ContractBase):
    """Keys follow MLflow's rule; every valid key round-trips whole, invalid ones write
    nothing."""

    def test_valid_keys_round_trip(self) -> None:
        with self.pair() as pair:

            @self.examples
            @given(key=tps.keys(), value=st.floats(allow_nan=False, allow_infinity=False))
            def check(key: str, value: float) -> None:
                rid = pair.fresh()
                pair.log(rid, key, value, ts=3)
                assert list(pair.tracker.latest(rid)) == [key], f"key {key!r} not kept whole"
                pair.check_resource(rid, [key])

            check()

    def test_lookalike_keys_are_distinct(self) -> None:
        with self.pair() as pair:
            for i, key in enumerate(tps.LOOKALIKE_KEYS):
                pair.log("r", key, float(i), i, 1)
            pair.check(["r"], tps.LOOKALIKE_KEYS)
            want = {key: float(i) for i, key in enumerate(tps.LOOKALIKE_KEYS)}
            assert pair.tracker.latest("r") == dict(sorted(want.items())), "latest('r')"
            for i, key in enumerate(tps.LOOKALIKE_KEYS):
                assert exact_history(pair.tracker.history("r", key)) == exact_history(
                    [MetricPoint(key, float(i), i, 1)]
                ), f"history('r', {key!r})"
                assert pair.tracker.best(key) == [("r", float(i))], f"best({key!r})"

    def test_latest_lists_keys_in_code_point_order(self) -> None:
        with self.pair() as pair:
            for key in reversed(tps.CODE_POINT_ORDER_KEYS):
                pair.log("r", key, 1.0, 0, 1)
            pair.check_resource("r")
            got = list(pair.tracker.latest("r"))
            assert got == sorted(tps.CODE_POINT_ORDER_KEYS), "latest() is sorted by code point"

    def test_invalid_keys_write_nothing(self) -> None:
        with self.pair() as pair:
            pair.tracker.log_metric("run", "kept", 1.0, timestamp=1)

            @self.examples
            @given(key=tps.invalid_keys())
            def check(key: object) -> None:
                with pytest.raises(ValidationError):
                    pair.tracker.log_metric("run", key, 2.0)  # type: ignore[arg-type]
                with pytest.raises(ValidationError):
                    pair.tracker.log_metrics("run", cast(Any, {"ok": 1.0, key: 2.0}))
                assert exact_history(pair.tracker.history("run", "kept")) == exact_history(
                    [MetricPoint("kept", 1.0, 0, 1)]
                )
                assert list(pair.tracker.latest("run")) == ["kept"], "an invalid key wrote"

            check()


class LatestTests(ContractBase):
    """The latest value is that of the greatest ``(step, timestamp, value)``."""

    def test_latest_of_random_points(self) -> None:
        with self.pair() as pair:

            @self.examples
            @given(points=st.lists(tps.points(st.sampled_from(["a", "b.c"])), max_size=12))
            def check(points: list[MetricPoint]) -> None:
                rid = pair.fresh()
                for p in points:
                    pair.log_points(rid, [p])
                pair.check_resource(rid, ["a", "b.c"])

            check()

    @pytest.mark.parametrize(
        ("points", "latest"),
        [
            ([(5, 1, 1.0), (2, 9, 2.0)], 1.0),  # out of order: the greater step wins
            ([(-3, 5, 1.0), (-7, 9, 2.0)], 1.0),  # negative steps
            ([(1, 9, 1.0), (1, 5, 2.0)], 1.0),  # same step: the later timestamp wins
            ([(1, 5, 3.0), (1, 5, 2.0)], 3.0),  # same step and timestamp: the greater value
            ([(1, 5, 2.0), (1, 5, 3.0)], 3.0),
            ([(1, 5, math.nan), (1, 5, -math.inf)], -math.inf),  # NaN ranks lowest
            ([(1, 5, -math.inf), (1, 5, math.nan)], -math.inf),
            ([(1, 5, 0.0), (1, 5, -0.0)], 0.0),  # -0.0 ranks below 0.0
            ([(1, 5, -0.0), (1, 5, 0.0)], 0.0),
            ([(0, 5, 1.0), (2**63 - 1, 0, -1.0), (-(2**63), 9, 9.0)], -1.0),
        ],
    )
    def test_latest_rule_and_ties(
        self, points: list[tuple[int, int, float]], latest: float
    ) -> None:
        with self.pair() as pair:
            for step, timestamp, value in points:
                pair.log("r", "m", value, step, timestamp)
            pair.check_resource("r", ["m"])
            if not any(pair.caps.rejects(v) or pair.caps.rejects_step(s) for s, _, v in points):
                want = exact(pair.caps.stored(latest))
                assert exact(pair.tracker.get_metric("r", "m")) == want, "latest rule"

    def test_never_logged_is_none(self) -> None:
        with self.pair() as pair:
            pair.tracker.log_metric("r", "a", 1.0)
            assert pair.tracker.get_metric("r", "b") is None, "a key never logged"
            assert pair.tracker.get_metric("other", "a") is None, "a resource never logged"
            assert pair.tracker.history("other", "a") == []
            assert pair.tracker.latest("other") == {}
            assert pair.tracker.perf("other") is None


class HistoryTests(ContractBase):
    """A history holds every point, ordered by ``point_order``."""

    def test_history_is_ordered(self) -> None:
        with self.pair() as pair:

            @self.examples
            @given(points=st.lists(tps.points(st.just("m")), min_size=1, max_size=15))
            def check(points: list[MetricPoint]) -> None:
                rid = pair.fresh()
                pair.log_points(rid, points)
                history = pair.tracker.history(rid, "m")
                assert history == sorted(history, key=point_order), "history out of order"
                pair.check_resource(rid, ["m"])

            check()

    def test_history_pages_of_every_size(self) -> None:
        """``iter_history``, and ``history_columns`` (as columns, bit for bit), are
        ``history()`` whatever the page size: read through the backend's ``history_page``
        and ``history_columns_page`` where it has them, else composed by the facade."""
        with self.pair() as pair:

            @self.examples
            @example(points=list(ORDERED_POINTS))
            @given(points=st.lists(tps.points(st.just("m")), min_size=1, max_size=20))
            def check(points: list[MetricPoint]) -> None:
                rid = pair.fresh()
                pair.log_points(rid, points)
                history = exact_history(pair.tracker.history(rid, "m"))
                for size in range(1, len(history) + 2):
                    paged = pair.tracker.iter_history(rid, "m", page_size=size)
                    assert exact_history(list(paged)) == history, f"pages of {size}"
                    columns = pair.tracker.history_columns(rid, "m", page_size=size)
                    assert exact_columns(columns, "m") == history, f"columns in pages of {size}"
                for unknown, key in ((rid, "never"), (pair.fresh(), "m")):
                    assert list(pair.tracker.iter_history(unknown, key, page_size=1)) == []
                    assert exact_columns(pair.tracker.history_columns(unknown, key), key) == []

            check()

    def test_history_since_a_point(self) -> None:
        """``iter_history(since=(step, timestamp))``: the points at or after it in history
        order, whatever the page size (read through ``history_page_after`` where the
        backend seeks, else from the first page)."""
        with self.pair() as pair:

            @self.examples
            @example(points=list(ORDERED_POINTS))
            @given(points=st.lists(tps.points(st.just("m")), min_size=1, max_size=12))
            def check(points: list[MetricPoint]) -> None:
                rid = pair.fresh()
                pair.log_points(rid, points)
                history = pair.tracker.history(rid, "m")
                edges = {(p.step, p.timestamp) for p in history}
                starts = edges | {(s, t + 1) for s, t in edges if t < INT64_MAX}
                for since in sorted(starts | {(INT64_MIN, INT64_MIN), (INT64_MAX, INT64_MAX)}):
                    want = [p for p in history if (p.step, p.timestamp) >= since]
                    for size in (1, 2, len(history) + 1):
                        got = pair.tracker.iter_history(rid, "m", page_size=size, since=since)
                        assert exact_history(list(got)) == exact_history(want), (since, size)

            check()


#: Points of one key in the contract's order: step, then timestamp, then value with NaN
#: lowest and -0.0 just below 0.0 (logged shuffled, read back in this order).
ORDERED_POINTS = (
    MetricPoint("m", 1.0, INT64_MIN, INT64_MAX),
    MetricPoint("m", 1.0, -1, 9),
    MetricPoint("m", 1.0, 0, 0),
    MetricPoint("m", 1.0, 0, 5),
    MetricPoint("m", math.nan, 1, 5),
    MetricPoint("m", -math.inf, 1, 5),
    MetricPoint("m", -1.0, 1, 5),
    MetricPoint("m", -0.0, 1, 5),
    MetricPoint("m", 0.0, 1, 5),
    MetricPoint("m", 5e-324, 1, 5),
    MetricPoint("m", 2.0, 1, 5),
    MetricPoint("m", math.inf, 1, 5),
    MetricPoint("m", -5.0, 1, 6),
    MetricPoint("m", -9.0, 2, 0),
    MetricPoint("m", 0.5, INT64_MAX, 0),
)


class OrderTests(ContractBase):
    """The one order of points, stated literally: history order and the latest value."""

    @pytest.mark.parametrize("arrival", ["reversed", "shuffled"])
    def test_history_order_literal(self, arrival: str) -> None:
        points = list(reversed(ORDERED_POINTS))
        if arrival == "shuffled":
            points = points[1::2] + points[0::2]
        with self.pair() as pair:
            for point in points:  # one call each: a value the backend refuses stops only itself
                pair.log_points("r", [point])
            pair.check_resource("r", ["m"])
            want = declared(pair.caps, ORDERED_POINTS)
            got = pair.tracker.history("r", "m")
            assert exact_history(got) == exact_history(want), "history in point order"
            assert exact(pair.tracker.get_metric("r", "m")) == exact(want[-1].value), "latest"


def declared(caps: Capabilities, ordered: Sequence[MetricPoint]) -> list[MetricPoint]:
    """What a backend declaring ``caps`` holds after ``ordered`` points were logged: values
    as it stores them, refused ones left out, exact duplicates collapsed as declared."""
    kept: list[MetricPoint] = []
    for p in ordered:
        if caps.rejects(p.value) or caps.rejects_step(p.step):
            continue
        p = p._replace(value=caps.stored(p.value))
        if (
            kept
            and caps.duplicates == "collapse"
            and exact_history([kept[-1]]) == exact_history([p])
        ):
            continue
        kept.append(p)
    return kept


class DuplicateTests(ContractBase):
    """Exact duplicates collapse (replays are idempotent), or are kept as declared."""

    def test_replayed_batch_changes_nothing(self) -> None:
        with self.pair() as pair:

            @self.examples
            @given(points=st.lists(tps.points(st.sampled_from(["a", "b"])), max_size=8))
            def check(points: list[MetricPoint]) -> None:
                rid = pair.fresh()
                for _ in range(2):  # the same batch twice, flushed in between
                    pair.log_points(rid, points)
                    pair.do(lambda t: t.flush())
                pair.check_resource(rid, ["a", "b"])

            check()

    @pytest.mark.parametrize(
        ("first", "second"),
        [
            ((0.5, 1, 2), (0.5, 1, 3)),  # another timestamp
            ((0.5, 1, 2), (0.5, 2, 2)),  # another step
            ((0.5, 1, 2), (0.25, 1, 2)),  # another value
            ((0.0, 1, 2), (-0.0, 1, 2)),  # equal values, other bits
            ((math.nan, 1, 2), (math.nan, 1, 3)),
        ],
        ids=["timestamp", "step", "value", "signed-zero", "nan-timestamp"],
    )
    def test_points_differing_in_one_field_are_both_kept(
        self, first: tuple[float, int, int], second: tuple[float, int, int]
    ) -> None:
        with self.pair() as pair:
            points = [MetricPoint("m", *first), MetricPoint("m", *second)]
            for point in points:
                pair.log_points("r", [point])
            pair.check_resource("r", ["m"])
            want = declared(pair.caps, sorted(points, key=lambda p: (p.step, p.timestamp)))
            got = pair.tracker.history("r", "m")
            assert sorted(exact_history(got)) == sorted(exact_history(want)), "history"

    @pytest.mark.parametrize("value", [0.5, math.nan, -0.0, math.inf], ids=repr)
    def test_exact_duplicates_collapse(self, value: float) -> None:
        with self.pair() as pair:
            for _ in range(2):  # twice in one batch, then again in the next
                pair.log_points("r", [MetricPoint("m", value, 1, 2)] * 2)
                pair.do(lambda t: t.flush())
            pair.log("other", "m", value, 1, 2)  # the same point on another resource
            pair.check(["r", "other"], ["m"])
            copies = 4 if pair.caps.duplicates == "keep" else 1
            want = declared(pair.caps, [MetricPoint("m", value, 1, 2)]) * copies
            got = pair.tracker.history("r", "m")
            assert exact_history(got) == exact_history(want), f"{value!r} logged 4 times"
            assert len(pair.tracker.history("other", "m")) == len(want) // copies

    def test_duplicate_in_one_batch(self) -> None:
        with self.pair() as pair:
            for value in (0.5, 0.5, 0.5, -0.0, 0.0):
                pair.log("r", "m", value, 1, 2)
            pair.check_resource("r", ["m"])
            values = [p.value for p in pair.tracker.history("r", "m")]
            copies = 3 if pair.caps.duplicates == "keep" else 1
            assert values.count(0.5) == copies, f"0.5 logged 3 times: history {values}"
            if pair.caps.negative_zero == "keep":
                zeros = {exact(v) for v in values if v == 0.0}
                assert zeros == {exact(-0.0), exact(0.0)}, f"-0.0 is not 0.0: history {values}"
