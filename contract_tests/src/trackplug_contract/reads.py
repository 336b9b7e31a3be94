"""Reads across resources: ``best`` (ordering, ties, NaN, limits), ``resources`` and the
isolation of one resource from another."""

from __future__ import annotations

import math
from typing import Literal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from trackplug import MetricPoint, PerfRecord, Tracker, ValidationError
from trackplug.plugin import value_order

from . import strategies as tps
from .base import ContractBase
from .reference import exact_best, exact_history
from .strategies import FLOAT_MAX

__all__ = ["BestTests", "ResourceTests", "SampledHistoryTests"]

LOOKALIKE_IDS = tps.LOOKALIKE_IDS


class BestTests(ContractBase):
    """``best(key, order, limit)``: latest values, best first, ties by id, NaN not ranked."""

    def test_best_orders_by_latest_value(self) -> None:
        with self.pair() as pair:
            # (resource, [(step, value)]): the latest value ranks, not the best one logged.
            runs = {
                "r1": [(0, 0.9), (1, 0.2)],
                "r2": [(0, 0.5)],
                "r3": [(5, 0.5)],  # ties r2: by id
                "r0": [(0, 0.5), (1, math.nan)],  # latest NaN: not ranked
                "r4": [(0, -math.inf)],
                "r5": [(0, math.inf)],
                "r6": [(0, -0.0)],
            }
            for rid, points in runs.items():
                for step, value in points:
                    pair.log(rid, "f1", value, step, 1)
            pair.log("other", "loss", 0.1)  # no f1: not ranked
            for order in ("max", "min"):
                for limit in (1, 2, 3, 7, 100):
                    pair.check_best("f1", order, limit)
            if not pair.caps.limited:
                self._check_literal(pair.tracker.best("f1", "max", 100))

    @staticmethod
    def _check_literal(ranking: list[tuple[str, float]]) -> None:
        ids = [rid for rid, _ in ranking]
        assert "r0" not in ids, "a resource whose latest value is NaN is not ranked"
        assert "other" not in ids, "a resource without the key is not ranked"
        assert ids.index("r2") < ids.index("r3"), "ties are broken by resource id"
        assert ids.index("r3") < ids.index("r1"), "ranked by the latest value, not the best"

    def test_best_ties_of_zero_and_negative_zero(self) -> None:
        # -0.0 and 0.0 are equal values: they tie (by id), each read back with its own sign.
        with self.pair() as pair:
            for rid, value in [("d", 0.0), ("c", -0.0), ("b", 0.0), ("a", -0.0), ("e", -1.0)]:
                pair.log(rid, "m", value, 0, 1)
            pair.log("f", "m", 1.0, 0, 1)
            for order in ("max", "min"):
                for limit in (1, 2, 3, 6):
                    pair.check_best("m", order, limit)
            if pair.caps.negative_zero == "keep":
                ties = [("a", -0.0), ("b", 0.0), ("c", -0.0), ("d", 0.0)]
                want = {
                    "max": [("f", 1.0), *ties, ("e", -1.0)],
                    "min": [("e", -1.0), *ties, ("f", 1.0)],
                }
                for order, ranking in want.items():
                    got = exact_best(pair.tracker.best("m", order, 6))  # type: ignore[arg-type]
                    assert got == exact_best(ranking[:6]), f"best('m', {order!r}): zeros tie"

    def test_best_ties_in_code_point_order(self) -> None:
        with self.pair() as pair:
            ids = tps.CODE_POINT_ORDER_IDS
            for rid in ids:
                pair.log(rid, "m", 0.5, 0, 1)
            pair.log("Y", "m", 0.75, 0, 1)
            for order in ("max", "min"):
                for limit in (3, len(ids) + 1):
                    pair.check_best("m", order, limit)
            ties = [(rid, 0.5) for rid in sorted(ids)]
            assert pair.tracker.best("m", "max", 40) == [("Y", 0.75), *ties], "best('m', 'max')"
            assert pair.tracker.best("m", "min", 40) == [*ties, ("Y", 0.75)], "best('m', 'min')"

    def test_best_matches_the_model(self) -> None:
        with self.pair() as pair:

            @self.examples
            @given(
                latest=st.dictionaries(
                    st.sampled_from(LOOKALIKE_IDS), st.lists(tps.values(), min_size=1, max_size=3)
                ),
                order=st.sampled_from(["max", "min"]),
                limit=st.integers(min_value=1, max_value=14),
            )
            def check(
                latest: dict[str, list[float]], order: Literal["max", "min"], limit: int
            ) -> None:
                key = pair.fresh("k")  # a new key per example: earlier examples are not ranked
                for rid, values in latest.items():
                    for step, value in enumerate(values):
                        pair.log(rid, key, value, step, 1)
                got = exact_best(pair.tracker.best(key, order, limit))
                assert len(got) <= limit, f"best(limit={limit}) returned {len(got)}"
                pair.check_best(key, order, limit)

            check()

    @pytest.mark.parametrize("args", [("m", "best", 1), ("m", "max", 0), ("bad..key", "max", 1)])
    def test_best_refuses_bad_arguments(self, args: tuple[str, str, int]) -> None:
        with self.pair() as pair, pytest.raises(ValidationError):
            pair.tracker.best(*args)  # type: ignore[arg-type]

    def test_best_of_extreme_values(self) -> None:
        # ±inf beside ±max float and subnormals: nothing that ranks them may overflow into
        # a tie, and the ids are chosen so that a tie broken by id would show.
        values = {"a": FLOAT_MAX, "b": math.inf, "c": -FLOAT_MAX, "d": -math.inf, "e": 5e-324}
        with self.pair() as pair:
            for rid, value in values.items():
                pair.log(rid, "m", value, 0, 1)
            for order in ("max", "min"):
                pair.check_best("m", order, 5)
            if pair.caps.infinity == "keep":
                ranked = sorted(values.items(), key=lambda item: -item[1])
                assert pair.tracker.best("m", "max", 5) == ranked, "best('m', 'max')"
                assert pair.tracker.best("m", "min", 5) == ranked[::-1], "best('m', 'min')"

    def test_best_order_is_compared_by_value(self) -> None:
        # An order built at run time, as from a config file: equal to "max", not the same
        # object as the literal.
        with self.pair() as pair:
            pair.log("a", "m", 1.0, 0, 1)
            pair.log("b", "m", 2.0, 0, 1)
            for order in ("".join(["ma", "x"]), "".join(["mi", "n"])):
                want = pair.model.best("m", order, 2)  # type: ignore[arg-type]
                assert pair.tracker.best("m", order, 2) == want, f"best('m', {order!r})"  # type: ignore[arg-type]
            assert pair.tracker.best("m", "".join(["ma", "x"]), 1) == [("b", 2.0)]  # type: ignore[arg-type]

    def test_best_of_nothing(self) -> None:
        with self.pair() as pair:
            assert pair.tracker.best("f1", "max", 5) == []
            pair.log("r", "loss", 1.0)
            assert pair.tracker.best("f1", "min", 5) == [], "no resource has f1"


class ResourceTests(ContractBase):
    """Each resource holds exactly its own metrics; ``resources()`` lists those with any."""

    def test_lookalike_resources_are_isolated(self) -> None:
        with self.pair() as pair:
            for i, rid in enumerate(LOOKALIKE_IDS):
                pair.log(rid, "m", float(i), 0, 1)
                pair.log(rid, f"own_{i}", -float(i), 2, 3)
                # A perf record for every third id only: "a" has one, "A" has none.
                pair.log_metrics(rid, {"p": i / 2}, "p" if i % 3 == 0 else None, ts=2)
            pair.check(LOOKALIKE_IDS, ["m", "p"])
            # Literal, not only against the model: each id is its own resource.
            kept = pair.model.resources()
            assert pair.tracker.resources() == kept == sorted(kept), "resources()"
            for rid in kept:
                i = LOOKALIKE_IDS.index(rid)
                want = {"m": float(i), f"own_{i}": -float(i), "p": i / 2}
                assert pair.tracker.latest(rid) == dict(sorted(want.items())), f"latest({rid!r})"
                perf = PerfRecord("p", i / 2) if i % 3 == 0 else None
                assert pair.tracker.perf(rid) == perf, f"perf({rid!r})"

    def test_resources_in_code_point_order(self) -> None:
        with self.pair() as pair:
            for rid in reversed(tps.CODE_POINT_ORDER_IDS):
                pair.log(rid, "m", 1.0, 0, 1)
            pair.check(tps.CODE_POINT_ORDER_IDS)
            assert pair.tracker.resources() == sorted(tps.CODE_POINT_ORDER_IDS), (
                "resources() are sorted by code point: 'B' < '_' < 'a' < '\\uff01' < '😀'"
            )

    def test_writes_without_points_list_no_resource(self) -> None:
        """``resources()`` lists a resource once it has a point, whatever wrote to it."""
        with self.pair() as pair:
            pair.log_metrics("empty", {})
            pair.do(lambda t: t.log_points("perf-only", [], PerfRecord("f1", 0.5)))
            pair.do(lambda t: t.copy_metrics("never-written", "copy-of-nothing"))
            pair.do(lambda t: t.copy_metrics("perf-only", "copy-of-perf"))
            pair.log("refused", "m", None)
            pair.log("r", "m", 1.0)
            pair.check(["empty", "perf-only", "copy-of-nothing", "copy-of-perf", "refused", "r"])
            assert pair.tracker.resources() == ["r"], "only resources with a point are listed"
            assert pair.tracker.perf("copy-of-perf") == PerfRecord("f1", 0.5), "perf copied"
            assert pair.tracker.latest("perf-only") == {}, "a perf record is not a point"

    def test_resources_match_the_model(self) -> None:
        with self.pair() as pair:

            @self.examples
            @given(ids=st.lists(tps.resource_ids(), max_size=5), key=tps.keys())
            @example(ids=["é", "e\u0301", "ﬁ", "fi", "a%20b", "a b"], key="m")
            @example(ids=["é" * 249 + "1", "é" * 249 + "2", "B", "a"], key="\u212a")
            def check(ids: list[str], key: str) -> None:
                for i, rid in enumerate(ids):
                    pair.log(rid, key, float(i), i, 1)
                pair.check(ids, [key])

            check()

    def test_resource_forms(self) -> None:
        class Model:
            id = "model-1"

        with self.pair() as pair:
            pair.tracker.log_metric("model-1", "a", 1.0, timestamp=1)
            pair.tracker.log_metric(Model(), "b", 2.0, timestamp=1)
            pair.tracker.log_metric(("model-1", object()), "c", 3.0, timestamp=1)
            assert pair.tracker.resources() == ["model-1"], "id, object and tuple: one resource"
            assert pair.tracker.latest(Model()) == {"a": 1.0, "b": 2.0, "c": 3.0}

    @pytest.mark.parametrize("rid", ["", "x" * 251, "tab\tid", None, True, 1.5], ids=repr)
    def test_invalid_resources_write_nothing(self, rid: object) -> None:
        with self.pair() as pair:
            with pytest.raises(ValidationError):
                pair.tracker.log_metric(rid, "m", 1.0)
            assert pair.tracker.resources() == []


def check_sample(tracker: Tracker, rid: str, key: str, max_points: int) -> list[MetricPoint]:
    """``history_sampled`` against the backend's own ``history``: the whole of it when it
    fits, else a subsequence of at most ``max_points`` points holding the first, the last,
    a least and a greatest point (by ``value_order``: NaN lowest). The sample."""
    history = tracker.history(rid, key)
    sample = tracker.history_sampled(rid, key, max_points)
    whole, got = exact_history(history), exact_history(sample)
    if len(history) <= max_points:
        assert got == whole, f"a history of {len(history)} points sampled to {max_points}"
        return sample
    assert len(sample) <= max_points, f"{len(sample)} points sampled, {max_points} asked for"
    remaining = iter(whole)
    assert all(point in remaining for point in got), "sample is no subsequence of history"
    assert got[0] == whole[0], "the first point was not kept"
    assert got[-1] == whole[-1], "the last point was not kept"
    orders = [value_order(p.value) for p in sample]
    every = [value_order(p.value) for p in history]
    assert min(orders) == min(every), "the least value (a dip, or a NaN) was dropped"
    assert max(orders) == max(every), "the greatest value (a spike) was dropped"
    return sample


class SampledHistoryTests(ContractBase):
    """``history_sampled(resource, key, max_points)``: at most ``max_points`` points of the
    history, in order, keeping its first, last, least and greatest points."""

    def test_sample_keeps_spikes_and_ends(self) -> None:
        with self.pair() as pair:
            points = [MetricPoint("m", 1.0 + (i % 7) / 10, i, 5) for i in range(300)]
            points[137] = points[137]._replace(value=1e6)  # a spike
            points[201] = points[201]._replace(value=-3.0)  # a dip
            pair.log_points("r", points)
            for max_points in (4, 5, 10, 64, 299):
                sample = check_sample(pair.tracker, "r", "m", max_points)
                assert {p.step for p in sample} >= {0, 137, 201, 299}, f"max_points={max_points}"
            assert len(check_sample(pair.tracker, "r", "m", 300)) == 300, "all when it fits"
            assert pair.tracker.history_sampled("r", "never", 10) == [], "no such key"
            assert pair.tracker.history_sampled("nobody", "m", 10) == [], "no such resource"

    def test_sample_of_one_step_splits_time(self) -> None:
        # Points logged without a step (all step 0, as lolpop logs) are bucketed by time.
        with self.pair() as pair:
            points = [MetricPoint("m", float(i % 5), 0, 1000 + i) for i in range(100)]
            points[60] = points[60]._replace(value=math.nan)
            pair.log_points("r", points)
            for max_points in (4, 10, 40):
                check_sample(pair.tracker, "r", "m", max_points)
            if pair.caps.nan == "keep":
                sample = pair.tracker.history_sampled("r", "m", 40)
                assert any(math.isnan(p.value) for p in sample), "the NaN was dropped"
                assert len(sample) > 4, "one step: buckets split the time range"

    def test_sample_matches_its_properties(self) -> None:
        with self.pair() as pair:

            @self.examples
            @given(
                points=st.lists(tps.points(st.just("m")), min_size=1, max_size=40),
                max_points=st.integers(min_value=4, max_value=24),
            )
            def check(points: list[MetricPoint], max_points: int) -> None:
                rid = pair.fresh()
                pair.log_points(rid, points)
                check_sample(pair.tracker, rid, "m", max_points)

            check()

    @pytest.mark.parametrize("max_points", [3, 0, -1, True, 4.0, "10", None])
    def test_sample_refuses_bad_sizes(self, max_points: object) -> None:
        with self.pair() as pair, pytest.raises(ValidationError):
            pair.tracker.history_sampled("r", "m", max_points)  # type: ignore[arg-type]
