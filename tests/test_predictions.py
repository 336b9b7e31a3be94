"""Predictions -> summary metrics, checked against numpy."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trackplug import InvalidTypeError, ValidationError
from trackplug._predictions import summarize

reals = st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=50)


@given(reals)
def test_regression_summary_matches_numpy(values: list[float]) -> None:
    summary = summarize(values, "regression")
    array = np.array(values)
    assert summary["num_predictions"] == len(values)
    assert summary["prediction_mean"] == pytest.approx(array.mean(), abs=1e-6)
    assert summary["prediction_std"] == pytest.approx(array.std(), abs=1e-6)
    assert summary["prediction_min"] == array.min()
    assert summary["prediction_max"] == array.max()
    for name, q in [("p05", 5), ("p50", 50), ("p95", 95)]:
        assert summary[f"prediction_{name}"] == pytest.approx(np.percentile(array, q), abs=1e-6)


def test_the_problem_type_is_inferred() -> None:
    assert "prediction_mean" in summarize([0.1, 0.7])
    assert "class_distribution.1" in summarize([0, 1, 1])
    assert summarize(np.array(["a", "b"]))["class_distribution.a"] == 0.5


def test_labels_become_valid_keys() -> None:
    summary = summarize(pd.Series(["spam/ham", "a..b", "ok"]), "classification")
    assert set(summary) == {
        "num_predictions",
        "class_distribution.spam_ham",
        "class_distribution.a__b",
        "class_distribution.ok",
    }


def test_empty_predictions_count_zero() -> None:
    assert summarize([]) == {"num_predictions": 0.0}


def test_nan_predictions_are_counted_but_not_ranked() -> None:
    summary = summarize([1.5, math.nan, 2.5], "regression")
    assert summary["num_predictions"] == 3
    assert summary["prediction_max"] == 2.5


@pytest.mark.parametrize(
    ("predictions", "error"),
    [("abc", InvalidTypeError), (5, InvalidTypeError), ([[1, 2]], ValidationError)],
)
def test_what_is_not_a_sequence_of_predictions_is_rejected(
    predictions: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        summarize(predictions)


def test_non_numbers_cannot_be_regression_predictions() -> None:
    with pytest.raises(InvalidTypeError, match="'x'"):
        summarize(["x"], "regression")


def test_an_unknown_problem_type_is_rejected() -> None:
    with pytest.raises(ValidationError, match="problem_type"):
        summarize([1.0], "clustering")  # type: ignore[arg-type]


def test_huge_predictions_are_summarized_without_overflow() -> None:
    summary = summarize([1e308, -1e308, 1e200, 0.5], "regression")
    array = np.array([1e308, -1e308, 1e200, 0.5])
    assert summary["prediction_mean"] == pytest.approx(array.mean())
    assert summary["prediction_std"] == pytest.approx(
        np.sqrt(np.mean((array / 1e308) ** 2)) * 1e308
    )
    assert summarize([1e200, 0.5])["prediction_std"] == pytest.approx(5e199)


INF = math.inf


@pytest.mark.parametrize(
    ("values", "mean", "low", "p05", "p50", "p95", "high"),
    [
        ([INF, 1.0], INF, 1.0, INF, INF, INF, INF),
        ([-INF, 1.0, INF], math.nan, -INF, -INF, 1.0, INF, INF),
        ([INF, INF, 2.0], INF, 2.0, INF, INF, INF, INF),
        ([-INF, -3.0], -INF, -INF, -INF, -INF, -INF, -3.0),
    ],
)
def test_infinite_predictions_have_limits_not_errors(
    values: list[float], mean: float, low: float, p05: float, p50: float, p95: float, high: float
) -> None:
    # numpy's mean agrees; its quantiles say nan where the interpolation's limit is an infinity.
    summary = summarize(values, "regression")
    assert summary == pytest.approx(
        {
            "num_predictions": len(values),
            "prediction_mean": mean,
            "prediction_std": math.nan,  # as numpy: no finite spread
            "prediction_min": low,
            "prediction_max": high,
            "prediction_p05": p05,
            "prediction_p50": p50,
            "prediction_p95": p95,
        },
        nan_ok=True,
    )


def test_quantiles_between_huge_values_do_not_overflow() -> None:
    assert summarize([-1e308, 1e308], "regression")["prediction_p50"] == 0.0
