"""Random operation sequences on a SQL backend and on the in-memory reference, compared
after every step (bit-exact). A local complement to the shared contract suite."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from trackplug_sql import SQLBackend
from trackplug_sql import backend as sql_backend
from trackplug_sql import sqlite as sqlite_store
from trackplug_sql.sqlite import CHUNK_ROWS

from trackplug import MetricPoint, PerfRecord, Resource
from trackplug.plugin import MemoryBackend, rank

RESOURCES = [Resource(r) for r in ("a", "a1", "b", "B", "é")]
KEYS = ["loss", "val.loss", "f1", "F1"]
values = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.0, 1.0, -1.0, 5e-324]),
    st.floats(allow_nan=False),
)
points = st.builds(
    MetricPoint,
    st.sampled_from(KEYS),
    values,
    st.sampled_from([-(2**63), -1, 0, 1, 2, 2**63 - 1]),
    st.sampled_from([0, 1, 2**63 - 1]),
)


def exact(value: float | None) -> object:
    return None if value is None else struct.pack("<d", value)


def exact_points(history: list[MetricPoint]) -> list[tuple[object, ...]]:
    return [(p.key, exact(p.value), p.step, p.timestamp) for p in history]


class Compare(RuleBasedStateMachine):
    def __init__(self, make: Callable[[], SQLBackend]) -> None:
        super().__init__()
        self.sql = make()
        self.model = MemoryBackend()

    def teardown(self) -> None:
        self.sql.close()

    @rule(resource=st.sampled_from(RESOURCES), batch=st.lists(points, max_size=8))
    def log_metric(self, resource: Resource, batch: list[MetricPoint]) -> None:
        for backend in (self.sql, self.model):
            backend.log_metric({resource: batch, RESOURCES[0]: batch[:1]})

    @rule(
        resource=st.sampled_from(RESOURCES),
        batch=st.lists(points, max_size=4),
        perf=st.none() | st.builds(PerfRecord, st.sampled_from(KEYS), values),
    )
    def log_metrics(
        self, resource: Resource, batch: list[MetricPoint], perf: PerfRecord | None
    ) -> None:
        for backend in (self.sql, self.model):
            backend.log_metrics(resource, batch, perf)

    @rule(source=st.sampled_from(RESOURCES), dest=st.sampled_from(RESOURCES))
    def copy_metrics(self, source: Resource, dest: Resource) -> None:
        if source == dest:
            return  # the facade never copies a resource onto itself
        self.sql.copy_metrics(source, dest)
        points = [p for key in self.model.latest(source) for p in self.model.history(source, key)]
        perf = self.model.get_perf(source)
        if points or perf is not None:
            self.model.log_metrics(dest, points, perf)

    def _model_latest(self, key: str) -> list[tuple[str, float]]:
        """The reference's latest values of ``key``, which the facade ranks for it."""
        found = [(rid, self.model.get_metric(Resource(rid), key)) for rid in self.model.resources()]
        return [(rid, value) for rid, value in found if value is not None]

    @invariant()
    def same_state(self) -> None:
        assert self.sql.resources() == self.model.resources()
        for resource in RESOURCES:
            latest = self.sql.latest(resource)
            expected = self.model.latest(resource)
            assert list(latest) == list(expected)
            assert [exact(v) for v in latest.values()] == [exact(v) for v in expected.values()]
            for key in KEYS:
                assert exact_points(self.sql.history(resource, key)) == exact_points(
                    self.model.history(resource, key)
                )
                assert exact(self.sql.get_metric(resource, key)) == exact(
                    self.model.get_metric(resource, key)
                )
            sql_perf, model_perf = self.sql.get_perf(resource), self.model.get_perf(resource)
            assert (sql_perf is None) == (model_perf is None)
            if sql_perf is not None and model_perf is not None:
                assert (sql_perf.metric, exact(sql_perf.value)) == (
                    model_perf.metric,
                    exact(model_perf.value),
                )
        for key in KEYS:
            for order in ("max", "min"):
                got = self.sql.best(key, order, 3)  # type: ignore[arg-type]
                want = rank(self._model_latest(key), order, 3)  # type: ignore[arg-type]
                assert [(r, exact(v)) for r, v in got] == [(r, exact(v)) for r, v in want]


SETTINGS = settings(
    max_examples=40,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_sqlite_memory_behaves_like_the_reference() -> None:
    run_state_machine_as_test(lambda: Compare(lambda: SQLBackend("sqlite://")), settings=SETTINGS)


def test_postgresql_behaves_like_the_reference(pg_schemas: object) -> None:
    new_url = pg_schemas.new_url  # type: ignore[attr-defined]
    few = settings(SETTINGS, max_examples=10)
    run_state_machine_as_test(lambda: Compare(lambda: SQLBackend(new_url())), settings=few)


def test_sqlite_file_behaves_like_the_reference(tmp_path: Path) -> None:
    counter = iter(range(10**6))
    make = lambda: SQLBackend(f"sqlite:///{tmp_path}/m{next(counter)}.db")  # noqa: E731
    run_state_machine_as_test(lambda: Compare(make), settings=settings(SETTINGS, max_examples=15))


@pytest.mark.parametrize("chunk_rows", [CHUNK_ROWS, 2])
def test_sqlite_spread_writes_behave_like_the_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_rows: int
) -> None:
    """Every write with fewer than two points a series goes the spread way (series and
    points by SQL, ids found by the database; ``backend._spread``): new series, series
    moved forward or not, duplicates in a batch and against the store alike; in chunks of
    two rows too, so that a chunk of a new series' points follows one that moved a series,
    and the reverse."""
    monkeypatch.setattr(sql_backend, "SPREAD_SERIES", 0)
    monkeypatch.setattr(sqlite_store, "CHUNK_ROWS", chunk_rows)
    counter = iter(range(10**6))
    make = lambda: SQLBackend(f"sqlite:///{tmp_path}/s{next(counter)}.db")  # noqa: E731
    run_state_machine_as_test(lambda: Compare(make), settings=SETTINGS)
