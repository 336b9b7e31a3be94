"""Medians with min and max per case and figure, and ratios between medians of one run."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Summary:
    median: float
    low: float
    high: float
    count: int


#: case -> figure -> summary over the rounds.
Summaries = Mapping[str, Mapping[str, Summary]]

#: Figures where more is better; for every other one (seconds, µs, MiB) less is.
HIGHER_IS_BETTER = frozenset({"points_per_s"})


def summarize(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Summary]]:
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        if record.get("kind") == "case" and not record.get("problem"):
            for figure, value in record["figures"].items():
                values[record["case"]][figure].append(float(value))
    return {
        case: {figure: _summary(series) for figure, series in figures.items()}
        for case, figures in values.items()
    }


def _summary(series: list[float]) -> Summary:
    return Summary(statistics.median(series), min(series), max(series), len(series))


def median(summaries: Summaries, case: str | None, figure: str) -> float | None:
    if case is None or figure not in summaries.get(case, {}):
        return None
    return summaries[case][figure].median


def advantage(summaries: Summaries, case: str, other: str | None, figure: str) -> float | None:
    """How many times better ``case`` is than ``other`` on ``figure`` (> 1: better),
    from the two medians: a rate divided by a rate, or a time divided into a time."""
    mine, theirs = median(summaries, case, figure), median(summaries, other, figure)
    if mine is None or theirs is None or mine == 0 or theirs == 0:
        return None
    return mine / theirs if figure in HIGHER_IS_BETTER else theirs / mine
