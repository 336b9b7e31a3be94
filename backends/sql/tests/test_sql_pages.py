"""The SQL backend's own ``history_page``: keyset pages that are exactly the facade's pages
of the whole history (what ``iter_history`` composes for a backend without the hook); and
its ``history_columns_page``: the same pages as columns, read with no point built."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trackplug_contract.strategies import points
from trackplug_sql import SQLBackend
from trackplug_sql import backend as sql_backend
from trackplug_sql.postgresql import PostgreSQLStore
from trackplug_sql.sqlite import SQLiteStore
from trackplug_sql.store import page_params

import trackplug
from trackplug.plugin import MetricPoint, Resource, float_bits

_RESOURCES = itertools.count()
#: One store for every example (the module's fixture): each example logs a resource of its own.
EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module", params=["sqlite-file", "postgresql"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SQLBackend]:
    """One store for every example (each example logs to a resource of its own)."""
    if request.param == "sqlite-file":
        url = f"sqlite:///{tmp_path_factory.mktemp('pages') / 'runs.db'}"
    else:  # a fixture, not 'from conftest import': that finds whichever conftest came first
        url = request.getfixturevalue("module_pg_schemas").new_url()
    store = SQLBackend(url)
    try:
        yield store
    finally:
        store.close()


def exact(page: list[MetricPoint]) -> list[tuple[str, int, int, int]]:
    """Points compared bit for bit (NaN equals itself, -0.0 differs from 0.0)."""
    return [(p.key, float_bits(p.value), p.step, p.timestamp) for p in page]


def native_pages(backend: SQLBackend, resource: Resource, size: int) -> list[list[MetricPoint]]:
    pages, cursor = [], None
    while True:
        page = backend.history_page(resource, "m", cursor, size)
        pages.append(page.points)
        if page.cursor is None:
            return pages
        cursor = page.cursor


@EXAMPLES
@given(
    logged=st.lists(points(st.just("m")), max_size=40),
    size=st.integers(min_value=1, max_value=12),
)
def test_native_pages_are_the_composed_pages(
    backend: SQLBackend, logged: list[MetricPoint], size: int
) -> None:
    """Ties in step and timestamp (a page may end inside them), NaN, ±inf, -0.0, duplicates:
    page by page, the native pages are the whole history cut every ``size`` points, and the
    last page alone has no cursor."""
    resource = Resource(f"r{next(_RESOURCES)}")
    if logged:
        backend.log_metric({resource: logged})
    whole = backend.history(resource, "m")
    composed = [whole[start : start + size] for start in range(0, len(whole), size)] or [[]]
    assert [exact(page) for page in native_pages(backend, resource, size)] == [
        exact(page) for page in composed
    ]


def native_columns(backend: SQLBackend, resource: Resource, size: int) -> list[list[object]]:
    """Each native page of columns as rows ``(key, value bits, step, timestamp)``, and
    whether a cursor followed it."""
    pages: list[list[object]] = []
    cursor = None
    while True:
        steps, stamps, values, cursor = backend.history_columns_page(resource, "m", cursor, size)
        assert [type(c).__name__ + c.typecode for c in (steps, stamps, values)] == [
            "arrayq",
            "arrayq",
            "arrayd",
        ]
        rows = zip(map(float_bits, values), steps, stamps, strict=True)
        pages.append([*(("m", *row) for row in rows), cursor is not None])
        if cursor is None:
            return pages


@EXAMPLES
@given(
    logged=st.lists(points(st.just("m")), max_size=40),
    size=st.integers(min_value=1, max_value=12),
    json=st.booleans(),
)
def test_native_columns_are_the_native_pages(
    backend: SQLBackend, logged: list[MetricPoint], size: int, json: bool
) -> None:
    """Ties, NaN, ±inf, -0.0 (bit for bit), negative values, duplicates: page by page, the
    columns are the pages of points, with a cursor where they have one; on SQLite also
    without the JSON functions (rows fetched as tuples)."""
    resource = Resource(f"r{next(_RESOURCES)}")
    if logged:
        backend.log_metric({resource: logged})
    point_pages = native_pages(backend, resource, size)
    want = [[*exact(page), i < len(point_pages) - 1] for i, page in enumerate(point_pages)]
    with pytest.MonkeyPatch.context() as patch:
        if isinstance(backend._store, SQLiteStore) and not json:
            patch.setattr(backend._store, "_json", False)
        assert native_columns(backend, resource, size) == want


def test_history_columns_builds_no_point_per_point(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Tracker.history_columns`` reads the native pages of columns: neither the store's
    whole-history read nor the points of a page are ever made."""

    def never(*args: object) -> None:
        raise AssertionError("history_columns read points")

    for store in (SQLiteStore, PostgreSQLStore):
        monkeypatch.setattr(store, "history", never)
    monkeypatch.setattr(sql_backend, "_points_of", never)
    values = [float("nan"), -float("inf"), -0.0, 0.0, -2.5, 3.0]
    with trackplug.connect(url) as tracker:
        tracker.log_points("r", [MetricPoint("m", v, s, 7) for s, v in enumerate(values)])
        columns = tracker.history_columns("r", "m", page_size=4)
    assert list(columns.steps) == list(range(6))
    assert list(map(float_bits, columns.values)) == list(map(float_bits, values))


def test_iter_history_reads_pages_not_the_whole_history(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The facade uses the native pages: the store's whole-history read is never called,
    and a point logged while iterating, after the page being read, is read too (each page
    is a new range of the index)."""

    def whole(*args: object) -> None:
        raise AssertionError("iter_history read the whole history")

    for store in (SQLiteStore, PostgreSQLStore):
        monkeypatch.setattr(store, "history", whole)
    with trackplug.connect(url) as tracker:
        tracker.log_points("r", [MetricPoint("m", float(s), s, 1) for s in range(10)])
        pages = tracker.iter_history("r", "m", page_size=4)
        first = [next(pages) for _ in range(4)]
        tracker.log_metric("r", "m", 99.0, step=99, timestamp=1)
        rest = list(pages)
    assert [p.step for p in first + rest] == [*range(10), 99]


def test_postgresql_reads_a_history_in_key_order_without_statistics(pg_url: str) -> None:
    """On a table PostgreSQL never analyzed (freshly filled, autovacuum off), a page in the
    middle of a series and a whole history are still the index-only scan in key order: no
    bitmap scan of the rest of the series and no sort of it."""
    import psycopg
    from trackplug_sql.postgresql import _HISTORY_PACKED, _PAGE_PACKED

    points, middle = 20_000, (10_000, 11_000, 0)
    reads = {
        "page": (_PAGE_PACKED[True], page_params("r", "m", middle, 1_000)),
        "history": (_HISTORY_PACKED, {"resource": "r", "key": "m"}),
    }
    with trackplug.connect(pg_url) as tracker, psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE trackplug_points SET (autovacuum_enabled = false)")
        tracker.log_points("r", [MetricPoint("m", 0.5, s, 1_000 + s) for s in range(points)])
        tracker.flush()
        assert conn.execute(
            "SELECT reltuples < 0 FROM pg_class WHERE oid = 'trackplug_points'::regclass"
        ).fetchone() == (True,), "the table has statistics: the test would prove nothing"
        for read, (sql, params) in reads.items():
            plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {sql}", params))
            assert "Index Only Scan using trackplug_points_pkey" in plan, (read, plan)
            assert "Sort" not in plan, (read, plan)
            assert "Bitmap" not in plan, (read, plan)
