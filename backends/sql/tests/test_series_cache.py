"""The series-id cache is bounded: writing more series than it holds starts it over, and
every write after that still lands in the right series."""

from __future__ import annotations

import pytest
import trackplug_sql.backend as backend_module
from trackplug_sql import SQLBackend

from trackplug import MetricPoint, Resource

LIMIT = 100


@pytest.fixture
def small_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend_module, "SERIES_CACHE_LIMIT", LIMIT)


@pytest.mark.usefixtures("small_cache")
def test_many_series_keep_the_cache_bounded_and_the_data_right(url: str) -> None:
    backend = SQLBackend(url)
    try:
        for round_ in range(2):  # the second round finds the ids the cache forgot
            for resource in range(7):
                batch = {
                    Resource(f"r{resource}"): [
                        MetricPoint(f"k{key}", float(round_), round_, 0) for key in range(40)
                    ]
                }
                backend.log_metric(batch)
                assert len(backend._series) <= LIMIT
        for resource in range(7):
            latest = backend.latest(Resource(f"r{resource}"))
            assert latest == {f"k{key}": 1.0 for key in range(40)}
            assert [p.step for p in backend.history(Resource(f"r{resource}"), "k3")] == [0, 1]
    finally:
        backend.close()
