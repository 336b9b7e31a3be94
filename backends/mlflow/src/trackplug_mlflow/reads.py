"""What the backend reads from an MLflow store, whichever way it is read: through MLflow's
client (:class:`.store.RunStore`) or straight from a database store's tables
(:class:`.tables.TableReader`, no mlflow import). No mlflow import here.

A run answers like MLflow's ``Run``: ``run.info.run_id`` / ``experiment_id`` / ``run_name``
/ ``start_time``, ``run.data.metrics`` (MLflow's latest value of each key, NaN as NaN),
``run.data.params``, ``run.data.tags``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, NamedTuple

from trackplug import Capabilities, MetricPoint
from trackplug.plugin import HistoryPage, point_order

__all__ = ["SEARCH_PAGE", "Experiment", "MetricOrder", "RunReads", "TagFilter", "canonical"]

#: Runs per page when every run must be seen (MLflow allows up to 50,000).
SEARCH_PAGE = 1000
#: Runs holding the tag ``key`` (with ``value``, when not None).
TagFilter = tuple[str, str | None]
#: Runs by MLflow's latest value of a metric: ``max`` first or ``min`` first, then NaN,
#: then runs without it; ties by run name.
MetricOrder = tuple[str, Literal["max", "min"]]


class Experiment(NamedTuple):
    experiment_id: str
    name: str
    lifecycle_stage: str


class RunReads(ABC):
    """The reads of one MLflow store; ``errors`` makes any failure a ``BackendError``."""

    url: str
    capabilities: Capabilities

    @abstractmethod
    def errors(self, action: str) -> AbstractContextManager[None]: ...

    @abstractmethod
    def experiment(self, *, name: str | None = None, experiment_id: str | None = None) -> Any:
        """The :class:`Experiment` of that name (None when missing) or id (an error when
        missing), deleted ones included."""

    @abstractmethod
    def experiments(self, view_all: bool) -> dict[str, str]:
        """``{experiment id: name}`` of the active experiments (every one if ``view_all``)."""

    @abstractmethod
    def get_run(self, run_id: str) -> Any: ...

    @abstractmethod
    def search(
        self,
        experiments: str | Sequence[str],
        tag: TagFilter | None = None,
        order: MetricOrder | None = None,
        page_size: int = SEARCH_PAGE,
        *,
        view_all: bool = False,
        since: int | None = None,
    ) -> Iterator[Any]:
        """Every run of ``experiments`` (an id or several) with ``tag``, in ``order`` (else
        MLflow's: newest first), read a page at a time; deleted runs too when ``view_all``;
        only runs started at ``since`` (ms) or later when given."""

    @abstractmethod
    def history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every point of ``key`` in the run, in the contract's order."""

    @abstractmethod
    def history_page(self, run_id: str, key: str, cursor: str | None, limit: int) -> HistoryPage:
        """Up to ``limit`` points of ``key`` after ``cursor``, in the contract's order."""

    @abstractmethod
    def close(self) -> None:
        """Release what the reader holds."""

    def latest_value(self, run_id: str, key: str, reported: float) -> float | None:
        """The contract's latest value of ``key``, given the one MLflow reported (see
        :mod:`.store`: MLflow ranks NaN as 0.0, so a NaN it reports is decided exactly)."""
        if not math.isnan(reported):
            return reported
        points = self.history(run_id, key)
        return max(points, key=point_order).value if points else None

    def latest(self, run: Any, keys: Sequence[str] | None = None) -> dict[str, float]:
        """``{key: latest value}`` of a run (only ``keys`` if given), sorted by key."""
        reported: dict[str, float] = run.data.metrics
        chosen = sorted(reported) if keys is None else sorted(k for k in keys if k in reported)
        result = {}
        for key in chosen:
            value = self.latest_value(run.info.run_id, key, canonical(float(reported[key])))
            if value is not None:
                result[key] = value
        return result


def canonical(value: float) -> float:
    """One NaN, as the facade stores it."""
    return math.nan if math.isnan(value) else value
