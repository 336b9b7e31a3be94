"""Predictions -> summary metrics, the same for every backend.

``num_predictions`` always. Classification (labels: strings, booleans, integers) adds
``class_distribution.<label>``, the share of each class. Regression (real numbers) adds
``prediction_mean``, ``prediction_std`` (population), ``prediction_min``, ``prediction_max``
and ``prediction_p05`` / ``p50`` / ``p95`` (linear interpolation, numpy's default).
numpy and pandas are never imported here: arrays and Series are read through ``tolist()``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from typing import Literal, get_args

from ._errors import InvalidTypeError, ValidationError
from ._validation import short_repr

__all__ = ["ProblemType", "summarize"]

ProblemType = Literal["classification", "regression"]
_PROBLEM_TYPES: tuple[object, ...] = get_args(ProblemType)
QUANTILES = {"p05": 0.05, "p50": 0.50, "p95": 0.95}
_NOT_KEY_CHARS = re.compile(r"[^\w\-: ]")


def summarize(predictions: object, problem_type: ProblemType | None = None) -> dict[str, float]:
    """The summary metrics of ``predictions`` (a list, numpy array or pandas Series).

    ``problem_type`` None infers it: real numbers that are not all integers mean
    regression, anything else (labels) classification.
    """
    if problem_type is not None and not (
        type(problem_type) is str and problem_type in _PROBLEM_TYPES
    ):
        raise ValidationError(
            f"problem_type {short_repr(problem_type)} is unknown: use 'classification', "
            "'regression' or None"
        )
    values = _as_list(predictions)
    kind = problem_type or _infer(values)
    summary: dict[str, float] = {"num_predictions": float(len(values))}
    if not values:
        return summary
    if kind == "classification":
        summary.update(_class_distribution(values))
    else:
        summary.update(_moments(values))
    return summary


def _as_list(predictions: object) -> list[object]:
    tolist = getattr(predictions, "tolist", None)  # numpy arrays, pandas Series
    values = tolist() if callable(tolist) else predictions
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InvalidTypeError(
            f"predictions of type {type(predictions).__name__} are not a sequence: "
            "pass a list, numpy array or pandas Series"
        )
    flat = list(values)
    if any(isinstance(v, list) for v in flat):
        raise ValidationError("predictions must be one-dimensional (one prediction per row)")
    return flat


def _infer(values: list[object]) -> ProblemType:
    real = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if real and not all(isinstance(v, int) or float(v).is_integer() for v in values):  # type: ignore[arg-type]
        return "regression"
    return "classification"


def _label_key(label: object) -> str:
    try:
        text = str(label)
    except ValueError:  # an int too long to print
        raise ValidationError(f"a class label of type {type(label).__name__} is too long") from None
    except TypeError:  # a __str__ that returns no string
        raise InvalidTypeError(
            f"a class label of type {type(label).__name__} has no text: labels are strings, "
            "booleans or numbers"
        ) from None
    text = _NOT_KEY_CHARS.sub("_", text)[:200] or "_"
    return f"class_distribution.{text}"


def _class_distribution(values: list[object]) -> dict[str, float]:
    counts: Counter[str] = Counter(_label_key(v) for v in values)
    return {key: count / len(values) for key, count in sorted(counts.items())}


def _moments(values: list[object]) -> dict[str, float]:
    # NaN predictions count in num_predictions but have no place in an order.
    numbers = sorted(x for x in map(_as_float, values) if not math.isnan(x))
    if not numbers:
        return {}
    mean, std = _mean_and_std(numbers)
    stats = {
        "prediction_mean": mean,
        "prediction_std": std,
        "prediction_min": numbers[0],
        "prediction_max": numbers[-1],
    }
    stats.update({f"prediction_{name}": _quantile(numbers, q) for name, q in QUANTILES.items()})
    return stats


def _mean_and_std(ordered: list[float]) -> tuple[float, float]:
    if math.isinf(ordered[0]) or math.isinf(ordered[-1]):
        # An infinity is the mean (NaN when both signs meet, as in numpy); no finite spread.
        return sum(ordered), math.nan
    count = len(ordered)
    mean = math.fsum(x / count for x in ordered)  # x / count first: no overflow near 1e308
    scale = max(abs(ordered[0]), abs(ordered[-1])) or 1.0  # scaled deviations don't overflow
    spread = math.fsum(((x - mean) / scale) ** 2 for x in ordered) / count
    return mean, scale * math.sqrt(spread)


def _as_float(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidTypeError(
            f"prediction {short_repr(value)} of type {type(value).__name__} is not a number: "
            "regression predictions are real numbers"
        )
    try:
        return float(value)
    except OverflowError:
        raise ValidationError(
            "a prediction is too large for a 64-bit float (it would become infinite)"
        ) from None


def _quantile(ordered: list[float], q: float) -> float:
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    if position == low or ordered[low] == ordered[high]:
        return ordered[low]  # exact, and no inf * 0
    t = position - low
    return (1 - t) * ordered[low] + t * ordered[high]  # no high - low: it overflows near 1e308
