"""The write path at scale: PostgreSQL's COPY straight into the points table (and, on a
duplicate, through a staging table), duplicates collapsing on either of its ways, exact
values, and the series of a batch found by a bounded number of statements, however many
are new."""

from __future__ import annotations

import contextlib
import math
import struct
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from trackplug_sql import SQLBackend

from trackplug import MetricPoint, Resource

SPECIAL = [math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, -5e-324, 1.7976931348623157e308]


def bits(value: float) -> int:
    return int(struct.unpack("<q", struct.pack("<d", value))[0])


@pytest.fixture
def backend(url: str) -> Iterator[SQLBackend]:
    opened = SQLBackend(url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def pg_backend(pg_url: str) -> Iterator[SQLBackend]:
    opened = SQLBackend(pg_url)
    try:
        yield opened
    finally:
        opened.close()


def _points(values: list[float], step: int = 0) -> list[MetricPoint]:
    return [MetricPoint("x", value, step + i, 7) for i, value in enumerate(values)]


def test_duplicates_collapse_in_a_batch_against_the_store_and_in_a_mixed_batch(
    backend: SQLBackend,
) -> None:
    first = _points([1.0, 2.0, 3.0])
    r = Resource("r")
    backend.log_metric({r: first + first})  # duplicates inside one batch
    backend.log_metric({r: first})  # a replay: every point already stored
    later = _points([4.0, 5.0], step=3)
    backend.log_metric({r: [*first[1:], *later, later[0]]})  # old, new and repeated at once
    history = backend.history(r, "x")
    assert [(p.step, p.value) for p in history] == [(i, float(i + 1)) for i in range(5)]
    assert backend.latest(r) == {"x": 5.0}


def test_special_values_are_exact_on_the_way_with_and_without_duplicates(
    backend: SQLBackend,
) -> None:
    r = Resource("r")
    points = _points(SPECIAL)
    backend.log_metric({r: points})
    backend.log_metric({r: points + _points([-0.0], step=len(SPECIAL))})  # the duplicates' way
    stored = [bits(p.value) for p in backend.history(r, "x")]
    assert stored == [bits(v) for v in [*SPECIAL, -0.0]]
    latest = backend.get_metric(r, "x")
    assert latest is not None
    assert bits(latest) == bits(-0.0)


def test_many_new_series_in_one_batch_get_their_points(backend: SQLBackend) -> None:
    count = 2_500  # past SQLite's statements of 1,500 series ids, PostgreSQL's 500 in VALUES
    batch = {
        Resource(f"run-{i:05d}"): [MetricPoint("loss", math.nan if i % 7 else float(i), i, 1)]
        for i in range(count)
    }
    backend.log_metric(batch)
    nan_latest = backend.get_metric(Resource("run-00001"), "loss")  # its best_order is NULL
    assert nan_latest is not None
    assert math.isnan(nan_latest)
    assert backend.best("loss", "max", 1) == [("run-02499", 2499.0)]  # 7 * 357
    backend.log_metric({Resource("run-00007"): [MetricPoint("loss", -1.0, 99, 1)]})
    assert len(backend.resources()) == count
    assert backend.history(Resource("run-02499"), "loss") == [MetricPoint("loss", 2499.0, 2499, 1)]
    assert [p.value for p in backend.history(Resource("run-00007"), "loss")] == [7.0, -1.0]
    assert backend.latest(Resource("run-00007")) == {"loss": -1.0}


def test_a_dict_per_step_lands_in_its_own_series(backend: SQLBackend) -> None:
    """One resource's batch whose keys repeat with a period (a series id looked up per key,
    repeated per step), then one where they do not, then a dict per step again whose keys
    come in another order: every point in its own series, each latest the right one."""
    r = Resource("r")
    keys = [f"k{index}" for index in range(7)]
    grid = [
        MetricPoint(key, float(step * 10 + column), step, 1)
        for step in range(5)
        for column, key in enumerate(keys)
    ]
    backend.log_metric({r: grid})
    backend.log_metric({r: [MetricPoint("k3", -1.0, 9, 1), MetricPoint("new", 2.0, 0, 1)]})
    reordered = [MetricPoint(key, float(step), step, 2) for step in (10, 11) for key in keys[::-1]]
    backend.log_metric({r: reordered})
    for column, key in enumerate(keys):
        history = [(p.step, p.value) for p in backend.history(r, key)]
        expected = [(step, float(step * 10 + column)) for step in range(5)]
        expected += [(9, -1.0)] if key == "k3" else []
        assert history == [*expected, (10, 10.0), (11, 11.0)]
    assert backend.latest(r) == {**dict.fromkeys(keys, 11.0), "new": 2.0}


@pytest.mark.parametrize("cached", [True, False], ids=["cached", "reopened"])
def test_a_batch_where_some_series_move_forward_and_others_do_not(
    persistent_url: str, cached: bool
) -> None:
    """Ids come from the upsert for the series it moves; the others (a late point of a
    series, the latest unchanged) from the cache, or from the store once reopened."""
    a, b = Resource("a"), Resource("b")
    first = SQLBackend(persistent_url)
    first.log_metric({a: _points([1.0], step=5), b: _points([1.0], step=5)})
    second = first if cached else SQLBackend(persistent_url)
    if not cached:
        first.close()
    try:
        second.log_metric({a: _points([2.0], step=6), b: _points([3.0], step=1)})
        assert [(p.step, p.value) for p in second.history(a, "x")] == [(5, 1.0), (6, 2.0)]
        assert [(p.step, p.value) for p in second.history(b, "x")] == [(1, 3.0), (5, 1.0)]
        assert second.latest(b) == {"x": 1.0}
    finally:
        second.close()


class _Statements:
    """Every statement psycopg sends (SQLAlchemy's too: it runs on psycopg cursors)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent: list[str] = []
        for method in ("execute", "executemany"):
            original = getattr(psycopg.Cursor, method)
            monkeypatch.setattr(psycopg.Cursor, method, self._recording(original))
        copy = psycopg.Cursor.copy
        monkeypatch.setattr(psycopg.Cursor, "copy", self._recording(copy))

    def _recording(self, original: Any) -> Any:
        def recorded(cursor: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
            self.sent.append(str(query))
            return original(cursor, query, *args, **kwargs)

        return recorded

    def during(self, action: Any) -> list[str]:
        self.sent.clear()
        action()
        return list(self.sent)


def _two_keys_each(resources: int, step: int) -> dict[Resource, list[MetricPoint]]:
    return {
        Resource(f"run-{i:05d}"): [MetricPoint(k, 0.5, step, 1) for k in ("a", "b")]
        for i in range(resources)
    }


@pytest.mark.parametrize("resources", [3, 3_000])
def test_postgresql_writes_many_series_in_as_many_statements_as_few(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, resources: int
) -> None:
    """New series get their ids from the upsert itself; series that are stored but not
    cached (another process's, or before a restart) from ONE statement for the batch."""
    with contextlib.closing(SQLBackend(pg_url)) as backend:
        backend.log_metric({Resource("warm"): _points([1.0])})  # staging tables made
        statements = _Statements(monkeypatch)
        created = statements.during(lambda: backend.log_metric(_two_keys_each(resources, 5)))
    with contextlib.closing(SQLBackend(pg_url)) as reopened:  # an empty cache
        reopened.log_metric({Resource("warm"): _points([1.0])})
        # Older points: no series moves forward, so the upsert returns none of them.
        replayed = statements.during(lambda: reopened.log_metric(_two_keys_each(resources, 0)))
        assert len(reopened.resources()) == resources + 1
        assert [p.step for p in reopened.history(Resource("run-00002"), "b")] == [0, 5]
    assert not [s for s in created if "JOIN trackplug_series" in s]
    assert len([s for s in replayed if "JOIN trackplug_series" in s]) == 1
    # Neither per series nor per point: the same statements for 3 resources as for 3,000.
    assert len(created) <= 8, created
    assert len(replayed) <= 8, replayed


def test_postgresql_known_series_need_no_id_statement(
    pg_backend: SQLBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = Resource("r")
    pg_backend.log_metric({r: _points([1.0])})
    statements = _Statements(monkeypatch)
    sent = statements.during(lambda: pg_backend.log_metric({r: _points([0.5], step=-1)}))
    assert not [s for s in sent if "JOIN trackplug_series" in s]


def test_postgresql_new_points_are_copied_straight_into_the_points_table(
    pg_backend: SQLBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Points the store does not hold go in by one COPY, staged nowhere; a batch with a
    duplicate (here only its last point, so the COPY fails late) goes through the staging
    table with duplicates ignored, and every new point of it is stored once."""
    r = Resource("r")
    statements = _Statements(monkeypatch)
    new = statements.during(lambda: pg_backend.log_metric({r: _points([1.0, 2.0])}))
    later = statements.during(lambda: pg_backend.log_metric({r: _points([3.0], step=2)}))
    for sent in (new, later):
        assert [s for s in sent if s.startswith("COPY trackplug_points")], sent
        assert not [s for s in sent if "trackplug_staged_points" in s], sent
    replayed = [*_points([4.0, 5.0], step=3), *_points([1.0])]
    duplicate = statements.during(lambda: pg_backend.log_metric({r: replayed}))
    assert [s for s in duplicate if "ON CONFLICT DO NOTHING" in s], duplicate
    history = pg_backend.history(r, "x")
    assert [(p.step, p.value) for p in history] == [(i, float(i + 1)) for i in range(5)]


def test_postgresql_a_write_shares_its_round_trips(
    pg_backend: SQLBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch of new points is three queries after psycopg's BEGIN: the series upsert
    with the points' savepoint, the COPY, the rollups marked stale with the COMMIT (each
    round trip costs the flusher a wait for the GIL while the caller logs). The savepoint
    still catches a duplicate, and the rollup is still marked stale."""
    r = Resource("r")
    pg_backend.log_metric({r: _points([1.0, 2.0])})
    statements = _Statements(monkeypatch)
    sent = statements.during(lambda: pg_backend.log_metric({r: _points([3.0], step=2)}))
    assert len(sent) == 3, sent
    assert sent[0].startswith("INSERT INTO trackplug_series"), sent
    assert sent[0].endswith("; SAVEPOINT trackplug_points"), sent
    assert sent[1].startswith("COPY trackplug_points"), sent
    assert sent[2].startswith("UPDATE trackplug_rollups"), sent
    assert sent[2].endswith("; COMMIT"), sent
    with pg_backend._store.transaction() as tx:  # a rollup up to date, as a chart leaves it
        tx.run(
            "INSERT INTO trackplug_rollups (series, shift, stale_from) "
            "SELECT id, 4, NULL FROM trackplug_series",
            {},
        )
    pg_backend.log_metric({r: [*_points([4.0], step=3), *_points([1.0])]})  # a duplicate
    assert [p.value for p in pg_backend.history(r, "x")] == [1.0, 2.0, 3.0, 4.0]
    stale = pg_backend._store.query("SELECT stale_from FROM trackplug_rollups", {})
    assert stale == [(0,)]


def test_postgresql_staging_survives_a_rolled_back_first_write(
    pg_backend: SQLBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transaction that creates the staging tables can roll back (and with it the
    tables): the next write on that connection creates them again. (A batch with a
    duplicate is staged.)"""
    from trackplug_sql import postgresql

    original = postgresql._Transaction.insert_points

    def failing(tx: postgresql._Transaction, columns: Any) -> None:
        original(tx, columns)
        raise RuntimeError("the write fails after staging")

    monkeypatch.setattr(postgresql._Transaction, "insert_points", failing)
    r = Resource("r")
    with pytest.raises(RuntimeError, match="after staging"):
        pg_backend.log_metric({r: _points([1.0]) * 2})
    monkeypatch.setattr(postgresql._Transaction, "insert_points", original)
    assert pg_backend.history(r, "x") == []
    pg_backend.log_metric({r: _points([1.0, 2.0]) * 2})
    assert [p.value for p in pg_backend.history(r, "x")] == [1.0, 2.0]


def test_sqlite_without_returning_looks_the_new_ids_up(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite before 3.35 has no RETURNING: its upserts return no ids, the lookup finds them."""
    from trackplug_sql import sqlite

    monkeypatch.setattr(sqlite, "_RETURNING", False)
    with contextlib.closing(SQLBackend(sqlite_url)) as backend:
        backend.log_metric(_two_keys_each(2_000, 5))
        backend.log_metric({Resource("run-01999"): _points([3.0], step=9)})
        assert len(backend.resources()) == 2_000
        assert [p.step for p in backend.history(Resource("run-01999"), "a")] == [5]
        assert [p.step for p in backend.history(Resource("run-01999"), "x")] == [9]


def test_the_id_cache_keeps_the_batch_strings_not_copies_from_the_database(
    backend: SQLBackend,
) -> None:
    """Memory per series: a cached id's key holds the caller's strings, which the facade's
    caches share, instead of a second copy of each read back from the database."""
    resources = [Resource(f"run-{i:03d}") for i in range(300)]
    backend.log_metric({r: [MetricPoint("loss", 1.0, 0, 1)] for r in resources})
    given = {r.id: r.id for r in resources}
    cached = list(backend._series)
    assert len(cached) == len(resources)
    assert all(rid is given[rid] for rid, _ in cached)


def test_postgresql_creates_the_staging_tables_once_per_connection(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements = _Statements(monkeypatch)
    with contextlib.closing(SQLBackend(pg_url)) as backend:
        first = statements.during(lambda: backend.log_metric(_two_keys_each(600, 0)))
        later = statements.during(lambda: backend.log_metric(_two_keys_each(600, 1)))
    assert len([s for s in first if "CREATE TEMP TABLE" in s]) == 1  # its 1,200 series staged
    assert not [s for s in later if "CREATE TEMP TABLE" in s]


def test_a_spread_write_finds_each_series_id_in_the_database(backend: SQLBackend) -> None:
    """One point into each of 1,500 resources (over ``SPREAD_SERIES``): new series in
    consecutive ids, a series stored before (moved forward or not), a series twice in the
    batch: each point lands in its own series, the latest of each is its greatest."""
    from trackplug_sql.backend import SPREAD_SERIES

    count = SPREAD_SERIES + 500
    old = Resource("run-00003")
    backend.log_metric({old: _points([9.0], step=50), Resource("run-00004"): _points([9.0])})
    batch = {Resource(f"run-{i:05d}"): [MetricPoint("x", float(i), i, 1)] for i in range(count)}
    batch[Resource("run-00007")].append(MetricPoint("x", -7.0, 2, 1))  # twice in the batch
    backend.log_metric(batch)
    assert len(backend.resources()) == count
    assert backend.get_metric(old, "x") == 9.0  # its stored step 50 stays the latest
    assert [p.step for p in backend.history(old, "x")] == [3, 50]
    assert backend.get_metric(Resource("run-00004"), "x") == 4.0  # moved forward, step 4
    assert [p.value for p in backend.history(Resource("run-00007"), "x")] == [-7.0, 7.0]
    assert backend.latest(Resource("run-00007")) == {"x": 7.0}
    for i in range(0, count, 97):
        assert backend.history(Resource(f"run-{i:05d}"), "x")[-1].value == float(i)
    assert backend.best("x", "max", 1) == [(f"run-{count - 1:05d}", float(count - 1))]


def test_a_spread_write_on_sqlite_brings_no_id_to_python(sqlite_url: str) -> None:
    from trackplug_sql.backend import SPREAD_SERIES

    with contextlib.closing(SQLBackend(sqlite_url)) as backend:
        backend.log_metric({Resource("old"): _points([1.0])})
        batch = {Resource(f"r{i}"): _points([1.0]) for i in range(SPREAD_SERIES + 1)}
        backend.log_metric(batch)
        assert list(backend._series) == [("old", "x")]  # cached by the first write alone
        assert len(backend.resources()) == SPREAD_SERIES + 2


def test_a_spread_write_marks_a_rollup_stale(url: str) -> None:
    """A spread write into a series with a rollup marks it stale, so the next sample holds
    the new point."""
    from trackplug_sql.backend import SPREAD_SERIES

    r = Resource("r")
    with contextlib.closing(SQLBackend(url)) as backend:
        backend.log_metric({r: [MetricPoint("x", 0.0, i, 1) for i in range(5_000)]})
        assert max(p.value for p in backend.history_sampled(r, "x", 10)) == 0.0  # built
        batch = {Resource(f"s{i}"): [MetricPoint("x", 1.0, 0, 1)] for i in range(SPREAD_SERIES)}
        backend.log_metric({**batch, r: [MetricPoint("x", 40.0, 3_000, 2)]})
        assert backend._series.get((r.id, "x")) is not None  # from the first write
        assert [p.step for p in backend.history_sampled(r, "x", 10) if p.value == 40.0] == [3_000]


@given(
    st.one_of(
        st.lists(st.integers(1, 5), min_size=1, max_size=40),  # any series, in any order
        st.tuples(  # a dict per step: the same series, in the same order, each step
            st.lists(st.integers(1, 9), min_size=1, max_size=6, unique=True),
            st.integers(1, 5),
        ).map(lambda grid: grid[0] * grid[1]),
    )
)
def test_sqlite_inserts_each_series_rows_together_and_in_their_order(series: list[int]) -> None:
    """Every row once, each series' rows in one run (one run of appends per series in
    the index), in the order the batch holds them: reordered by slicing when the series
    repeat with a period, by a stable sort otherwise."""
    from trackplug_sql.schema import PointColumns
    from trackplug_sql.sqlite import _in_index_order

    size = len(series)
    columns = PointColumns(series, list(range(size)), [7] * size, list(range(-size, 0)))
    flat = _in_index_order(columns)
    rows = list(zip(flat[0::4], flat[1::4], flat[2::4], flat[3::4], strict=True))
    assert sorted(rows) == sorted(zip(*columns, strict=True))
    runs = [sid for index, (sid, *_) in enumerate(rows) if index == 0 or rows[index - 1][0] != sid]
    assert len(runs) == len(set(series))
    assert all(rows[i][1] < rows[i + 1][1] for i in range(size - 1) if rows[i][0] == rows[i + 1][0])


def test_a_spread_write_in_chunks_keeps_the_points_of_series_moved_by_a_later_chunk(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of two rows: a run of chunks that created their series takes its points from
    the series' rows, unless a later chunk moved one of those series forward (its row is
    then the later point); a chunk that creates no series while the connection's last
    rowid happens to equal the greatest series id plus its rows is not taken for one that
    created them all."""
    from trackplug_sql import backend as sql_backend
    from trackplug_sql import sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "CHUNK_ROWS", 2)
    monkeypatch.setattr(sql_backend, "SPREAD_SERIES", 2)
    a, b, c = Resource("a"), Resource("b"), Resource("c")
    created = [MetricPoint(key, 1.0, 1, 1) for key in ("x", "y", "z")]
    with contextlib.closing(SQLBackend(sqlite_url)) as backend:
        # Chunks (a x, a y) created both; (a z, a x at 9) moved a x; (b x) created it.
        backend.log_metric({a: [*created, MetricPoint("x", 9.0, 9, 1)], b: created[:1]})
        assert [p.step for p in backend.history(a, "x")] == [1, 9]
        assert [backend.history(r, k)[0].step for r, k in [(a, "y"), (a, "z"), (b, "x")]] == [1] * 3
        # Today another table's rowid stays at or below the greatest series id (a perf row
        # per resource, a rollup's is its series'): set it past, as a future table might.
        backend._store._db.execute(  # type: ignore[attr-defined]
            "INSERT INTO trackplug_meta (rowid, name, value) VALUES (6, 'probe', '')"
        )  # 4 series stored: a chunk of 2 rows that creates none leaves it at 4 + 2
        moved = [MetricPoint(key, 2.0, 10, 1) for key in ("x", "y")]
        backend.log_metric({a: moved, c: created[:1]})
        assert [p.step for p in backend.history(a, "x")] == [1, 9, 10]
        assert [p.step for p in backend.history(a, "y")] == [1, 10]
        assert [p.step for p in backend.history(c, "x")] == [1]
        assert backend.latest(a) == {"x": 2.0, "y": 2.0, "z": 1.0}


@given(
    st.lists(st.tuples(st.sampled_from("abcdefgh"), st.sampled_from("xyz")), min_size=1),
    st.integers(0, 6),
)
def test_the_resources_decide_a_spread_write_only_as_its_series_would(
    series: list[tuple[str, str]], spread_series: int
) -> None:
    """The short way (the set of resource ids) says "spread" only where the series (each
    series' latest point, the long way) say so too: the same write takes the same path."""
    from trackplug_sql import backend as sql_backend

    rids = [rid for rid, _ in series]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sql_backend, "SPREAD_SERIES", spread_series)
        by_resources = sql_backend._spread_over_resources(rids)
        by_series = sql_backend._spread(len(set(series)), len(series))
    assert by_series or not by_resources
