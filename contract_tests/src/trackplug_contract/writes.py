"""lolpop's other writes: ``log_metrics`` (flat and nested, perf records, all-or-nothing),
``copy_metrics`` and ``log_prediction_metrics``."""

from __future__ import annotations

import math
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trackplug import InvalidTypeError, MetricPoint, PerfRecord, ValidationError

from . import strategies as tps
from .base import ContractBase, Pair
from .points import declared
from .reference import exact, exact_history

__all__ = ["CopyTests", "LogMetricsTests", "PredictionTests"]

_NAMES = st.sampled_from(["f1", "loss", "acc.top5"])
_SPLITS = st.sampled_from(["train", "valid", "test"])


def metrics_dicts() -> st.SearchStrategy[dict[str, Any]]:
    """Flat ``{name: value}``, lolpop's ``{split: {name: value}}``, or both mixed."""
    flat = st.dictionaries(_NAMES, tps.values(), max_size=3)
    nested = st.dictionaries(_SPLITS, st.dictionaries(_NAMES, tps.values(), max_size=3), max_size=3)
    return st.one_of(flat, nested, st.builds(lambda a, b: {**a, **b}, flat, nested))


def state(pair: Pair, rid: str) -> tuple[object, ...]:
    """Everything one resource holds on the backend, exactly."""
    latest = pair.tracker.latest(rid)
    histories = [exact_history(pair.tracker.history(rid, key)) for key in latest]
    perf = pair.tracker.perf(rid)
    return (sorted(latest), histories, None if perf is None else (perf.metric, exact(perf.value)))


class LogMetricsTests(ContractBase):
    """``log_metrics``: one step and timestamp, ``<split>_<name>`` keys, perf records, all or
    nothing."""

    def test_log_metrics_matches_the_model(self) -> None:
        with self.pair() as pair:

            @self.examples
            @given(metrics=metrics_dicts(), perf=st.none() | _NAMES, step=tps.steps())
            def check(metrics: dict[str, Any], perf: str | None, step: int) -> None:
                rid = pair.fresh()
                pair.do(lambda t: t.log_metrics(rid, metrics, perf, step=step, timestamp=5))
                pair.check_resource(rid)

            check()

    def test_nested_metrics_are_flattened(self) -> None:
        with self.pair() as pair:
            metrics: dict[str, Any] = {
                "train": {"f1": 0.5, "loss": 2.0},
                "valid": {"f1": 0.25},
                "epochs": 3,
            }
            pair.tracker.log_metrics("r", metrics, step=4, timestamp=9)
            assert sorted(pair.tracker.latest("r")) == [
                "epochs",
                "train_f1",
                "train_loss",
                "valid_f1",
            ]
            assert exact_history(pair.tracker.history("r", "valid_f1")) == exact_history(
                [MetricPoint("valid_f1", 0.25, 4, 9)]
            ), "every point of log_metrics has its step and timestamp"
            assert pair.tracker.get_metric("r", "epochs") == 3.0

    @pytest.mark.parametrize(
        ("metrics", "perf"),
        [
            ({"train": {"f1": 0.5}, "valid": {"f1": 0.75}}, 0.75),  # the valid split first
            ({"train": {"f1": 0.5}, "test": {"f1": 0.9}}, 0.5),  # else the train split
            ({"f1": 0.625, "loss": 1.0}, 0.625),  # or the flat entry
        ],
    )
    def test_perf_record(self, metrics: dict[str, Any], perf: float) -> None:
        with self.pair() as pair:
            assert pair.tracker.perf("r") is None
            pair.tracker.log_metrics("r", metrics, perf_metric="f1")
            assert pair.tracker.perf("r") == PerfRecord("f1", perf)
            pair.tracker.log_metrics("r", {"f1": 0.125, "auc": 0.5}, perf_metric="auc")
            assert pair.tracker.perf("r") == PerfRecord("auc", 0.5), "a later record replaces"
            pair.tracker.log_metrics("r", {"f1": 0.0})
            assert pair.tracker.perf("r") == PerfRecord("auc", 0.5), "no perf_metric: kept"

    @pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -0.0], ids=repr)
    def test_perf_record_of_a_special_value(self, value: float) -> None:
        with self.pair() as pair:
            pair.do(lambda t: t.log_metrics("r", {"valid": {"f1": value}}, "f1", timestamp=1))
            pair.check_resource("r", ["valid_f1"])

    @pytest.mark.parametrize(
        ("metrics", "perf", "error"),
        [
            ({"a": 1.0, "b": None}, None, InvalidTypeError),
            ({"train": {"a": 1.0, "b": "x"}}, None, InvalidTypeError),
            ({"a": 1.0, "b": True}, "a", InvalidTypeError),
            ({"a": 1.0, "b..c": 2.0}, None, ValidationError),
            ({"a": 1.0, "b": 2.0}, "missing", ValidationError),
            ({"train": {"a": 1.0}}, "b", ValidationError),
            ({"a": 1.0}, "bad..perf", ValidationError),
        ],
    )
    def test_log_metrics_is_all_or_nothing(
        self, metrics: dict[str, Any], perf: str | None, error: type[Exception]
    ) -> None:
        with self.pair() as pair:
            pair.tracker.log_metrics("r", {"a": 0.5, "b": 0.25}, perf_metric="a", timestamp=1)
            before = state(pair, "r")
            with pytest.raises(error):
                pair.tracker.log_metrics("r", metrics, perf_metric=perf, step=1, timestamp=2)
            assert state(pair, "r") == before, "a refused log_metrics wrote something"
            assert pair.tracker.resources() == ["r"]


class CopyTests(ContractBase):
    """``copy_metrics``: the full history and the perf record of exactly the source."""

    def test_copy_full_history_and_perf(self) -> None:
        with self.pair() as pair:
            for rid in ("src", "src1", "sr", "src.x", "SRC"):  # neighbours that look alike
                pair.log_metrics(rid, {"n": 1.0}, "n", ts=1)
                pair.log(rid, "only." + rid, 2.0)
            for step, ts, value in [(3, 5, 0.5), (1, 9, math.nan), (-2, 0, -0.0), (3, 5, 0.25)]:
                pair.log("src", "val.loss", value, step, ts)
            pair.log("src", "train/acc", math.inf, 2**40, 3)
            pair.do(lambda t: t.log_metrics("src", {"valid": {"f1": 0.75}}, "f1", timestamp=4))
            pair.log("dst", "val.loss", 9.0, 3, 5)  # the target already has metrics
            pair.log("dst", "own", 1.0)
            pair.do(lambda t: t.copy_metrics("src", "dst"))
            pair.check(["src", "src1", "sr", "src.x", "SRC", "dst"], ["val.loss", "n"])
            assert "val.loss" in pair.tracker.latest("dst"), "dotted keys are kept whole"
            assert "only.src1" not in pair.tracker.latest("dst"), "a neighbour's metric copied"

    @pytest.mark.parametrize(
        ("source_perf", "target_perf"),
        [
            (PerfRecord("f1", 0.75), PerfRecord("loss", 2.0)),  # the source's record replaces
            (PerfRecord("f1", -0.0), PerfRecord("f1", 0.0)),  # even one equal by value
            (PerfRecord("f1", math.nan), PerfRecord("f1", 0.5)),
            (None, PerfRecord("loss", 2.0)),  # the source has none: the target's stays
        ],
        ids=["other-metric", "signed-zero", "nan", "source-without"],
    )
    def test_copy_onto_a_target_with_data(
        self, source_perf: PerfRecord | None, target_perf: PerfRecord
    ) -> None:
        with self.pair() as pair:
            own = [
                MetricPoint("m", 9.0, 1, 1),
                MetricPoint("m", 1.0, 2, 2),
                MetricPoint("t", 3.0, 0, 0),
            ]
            pair.do(lambda t: t.log_points("dst", own, target_perf))
            src = [
                MetricPoint("m", 1.0, 2, 2),
                MetricPoint("m", 5.0, 1, 1),
                MetricPoint("s", 4.0, 0, 0),
            ]
            pair.do(lambda t: t.log_points("src", src, source_perf))
            pair.do(lambda t: t.copy_metrics("src", "dst"))
            pair.check(["src", "dst"], ["m", "s", "t"])
            # Literal: the target keeps its own points, gains the source's (the point both
            # hold once, unless duplicates are kept), and takes the source's perf record if any.
            want_m = [
                MetricPoint("m", 5.0, 1, 1),
                MetricPoint("m", 9.0, 1, 1),
                MetricPoint("m", 1.0, 2, 2),
                MetricPoint("m", 1.0, 2, 2),  # the target's and the source's: one, or two kept
            ]
            assert exact_history(pair.tracker.history("dst", "m")) == exact_history(
                declared(pair.caps, want_m)
            ), "history('dst', 'm') after the copy"
            assert sorted(pair.tracker.latest("dst")) == ["m", "s", "t"], "latest('dst')"
            want_perf = source_perf or target_perf
            got = pair.tracker.perf("dst")
            assert got is not None, f"perf('dst') is None, expected {want_perf}"
            want = (want_perf.metric, exact(pair.caps.stored(want_perf.value)))
            assert (got.metric, exact(got.value)) == want, f"perf('dst') is {got}, not {want_perf}"

    def test_copy_matches_the_model(self) -> None:
        with self.pair() as pair:

            @self.examples
            @given(
                src=st.lists(tps.points(_NAMES), max_size=6),
                dst=st.lists(tps.points(_NAMES), max_size=3),
                perf=st.none() | _NAMES,
                metrics=st.dictionaries(_NAMES, tps.values(), min_size=1, max_size=3),
            )
            def check(
                src: list[MetricPoint],
                dst: list[MetricPoint],
                perf: str | None,
                metrics: dict[str, float],
            ) -> None:
                a, b, c = pair.fresh(), pair.fresh(), pair.fresh()
                pair.log_points(a, src)
                pair.log_points(c, src[:1])
                perf_metric = perf if perf in metrics else None
                pair.do(lambda t: t.log_metrics(a, metrics, perf_metric, timestamp=2))
                pair.log_points(b, dst)
                pair.do(lambda t: t.copy_metrics(a, b))
                pair.check([a, b, c], ["f1"])

            check()

    def test_copy_twice_changes_nothing(self) -> None:
        with self.pair() as pair:
            pair.log("src", "m", 1.0, 1, 1)
            pair.log("src", "m", 2.0, 2, 2)
            for _ in range(2):
                pair.do(lambda t: t.copy_metrics("src", "dst"))
                pair.check(["src", "dst"], ["m"])

    def test_copy_onto_itself_and_from_nothing(self) -> None:
        with self.pair() as pair:
            pair.do(lambda t: t.log_metrics("a", {"m": 1.0}, "m", timestamp=1))
            pair.do(lambda t: t.copy_metrics("a", "a"))
            pair.do(lambda t: t.copy_metrics("empty", "a"))
            pair.do(lambda t: t.copy_metrics("empty", "b"))
            pair.check(["a", "b", "empty"], ["m"])
            assert pair.tracker.resources() == ["a"], "copying nothing made a resource"


class PredictionTests(ContractBase):
    """``log_prediction_metrics``: the summary the facade computes, each a real metric."""

    @pytest.mark.parametrize(
        "predictions",
        [
            [0.5, 1.5, 2.5, math.nan],
            [1, 0, 1, 1],
            ["cat", "dog", "cat"],
            [True, False, False],
            [],
        ],
        ids=["numbers", "integer-labels", "string-labels", "booleans", "empty"],
    )
    def test_prediction_metrics(self, predictions: list[object]) -> None:
        with self.pair() as pair:
            summary = pair.do(lambda t: t.log_prediction_metrics("job", predictions, timestamp=3))
            if summary is None:  # refused, as the model was
                return
            latest = pair.tracker.latest("job")
            assert sorted(latest) == sorted(summary), "every summary value is a metric"
            assert "num_predictions" in latest
            pair.check_resource("job")

    def test_prediction_metrics_of_arrays(self) -> None:
        np = pytest.importorskip("numpy", reason="numpy arrays need numpy installed")
        with self.pair() as pair:
            array = np.array([0.25, 0.5, 4.0])
            summary = pair.do(lambda t: t.log_prediction_metrics("job", array, timestamp=3))
            assert summary is not None
            assert pair.tracker.get_metric("job", "num_predictions") == 3.0
            pair.check_resource("job")

    def test_prediction_metrics_match_the_model(self) -> None:
        with self.pair() as pair:

            @self.examples
            @given(
                predictions=st.one_of(
                    st.lists(st.floats(width=64), max_size=20),
                    st.lists(st.sampled_from(["a", "b", "c d", "é"]), max_size=20),
                )
            )
            def check(predictions: list[object]) -> None:
                job = pair.fresh("job")
                pair.do(
                    lambda t: t.log_prediction_metrics(job, cast(Any, predictions), timestamp=3)
                )
                pair.check_resource(job)

            check()

    @pytest.mark.parametrize(
        "predictions",
        [
            [math.inf, 1.0, 2.5],  # mean inf, std NaN, max inf
            [-math.inf, math.inf, 0.5],  # mean NaN: both signs
            [-math.inf, -math.inf],
            [math.nan, math.nan],  # no statistics at all
            [math.nan, -0.0, 0.0],  # NaN left out; -0.0 is the min
            [1.5e308, 1.7e308, -1.6e308, 1.0],  # near the largest float: nothing overflows
        ],
        ids=["inf", "both-infinities", "minus-inf", "all-nan", "nan-and-zeros", "huge"],
    )
    def test_prediction_metrics_with_special_statistics(self, predictions: list[float]) -> None:
        with self.pair() as pair:
            summary = pair.do(
                lambda t: t.log_prediction_metrics("job", predictions, "regression", timestamp=3)
            )
            pair.check_resource("job")
            if summary is None:  # refused, as the model was
                return
            latest = pair.tracker.latest("job")
            assert sorted(latest) == sorted(summary), "every statistic is a metric, NaN too"
            for key, value in summary.items():
                want = exact(pair.caps.stored(math.nan if math.isnan(value) else value))
                assert exact(latest[key]) == want, f"{key} read back {latest[key]!r}, not {value!r}"

    def test_prediction_metrics_of_huge_numbers(self) -> None:
        with self.pair() as pair:
            pair.do(lambda t: t.log_prediction_metrics("job", [1e200, 0.5], timestamp=3))
            pair.check_resource("job")
