"""SQLite's whole-history read: a history longer than a page is read a page at a time in
one read transaction, each next page fetched in a thread while this one's points are
built (``trackplug_sql.sqlite._read_ahead``). What must hold: the same points as one
statement, one snapshot under a concurrent writer, the store's lock held throughout, and
no thread, transaction or lock left behind by an error on either side."""

from __future__ import annotations

import gc
import itertools
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trackplug_contract.strategies import points
from trackplug_sql import SQLBackend, backend, sqlite
from trackplug_sql.sqlite import SQLiteStore

from trackplug import BackendError
from trackplug.plugin import MetricPoint, Resource, float_bits

_RESOURCES = itertools.count()
PAGE = 4


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLBackend]:
    """One store for every example (each example logs to a resource of its own)."""
    store = SQLBackend(f"sqlite:///{tmp_path_factory.mktemp('ahead') / 'runs.db'}")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SQLBackend]:
    """A SQLite file holding ten points of ``m`` in ``r``, read :data:`PAGE` at a time."""
    monkeypatch.setattr(sqlite, "READ_AHEAD_PAGE", PAGE)
    store = SQLBackend(f"sqlite:///{tmp_path / 'runs.db'}")
    store.log_metric({Resource("r"): [MetricPoint("m", float(s), s, 1) for s in range(10)]})
    try:
        yield store
    finally:
        store.close()


def exact(history: list[MetricPoint]) -> list[tuple[str, int, int, int]]:
    """Points compared bit for bit (NaN equals itself, -0.0 differs from 0.0)."""
    return [(p.key, float_bits(p.value), p.step, p.timestamp) for p in history]


def steps(backend: SQLBackend) -> list[int]:
    return [p.step for p in backend.history(Resource("r"), "m")]


def threads_ahead() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "trackplug-sqlite-read-ahead"]


def store_of(backend: SQLBackend) -> SQLiteStore:
    store = backend._store
    assert isinstance(store, SQLiteStore)
    return store


def on_page(monkeypatch: pytest.MonkeyPatch, page: int, act: Callable[[], None]) -> None:
    """``act()`` when the read builds the points of its ``page``-th page (from 1)."""
    calls = itertools.count(1)
    build = backend._points_of

    def building(*args: Any) -> list[MetricPoint]:
        if next(calls) == page:
            act()
        return build(*args)

    monkeypatch.setattr(backend, "_points_of", building)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    logged=st.lists(points(st.just("m")), max_size=40),
    page=st.integers(min_value=1, max_value=9),
)
def test_pages_read_ahead_are_the_history_of_one_statement(
    shared: SQLBackend, monkeypatch: pytest.MonkeyPatch, logged: list[MetricPoint], page: int
) -> None:
    """Ties in step and timestamp (a page may end inside them), NaN, ±inf, -0.0, negative
    values, duplicates, pages of one point: read ``page`` points a page, the history is
    the one a single statement reads, and so is the history of a SQLite without the JSON
    functions (its rows fetched whole)."""
    resource = Resource(f"r{next(_RESOURCES)}")
    if logged:
        shared.log_metric({resource: logged})
    store = store_of(shared)
    with monkeypatch.context() as patch:
        patch.setattr(sqlite, "READ_AHEAD_PAGE", len(logged) + 1)
        whole = exact(shared.history(resource, "m"))
        patch.setattr(store, "_json", False)
        assert exact(shared.history(resource, "m")) == whole
    monkeypatch.setattr(sqlite, "READ_AHEAD_PAGE", page)
    assert exact(shared.history(resource, "m")) == whole


@pytest.mark.parametrize(("size", "ahead"), [(0, 0), (3, 0), (4, 1), (10, 2), (12, 3)])
def test_a_thread_reads_ahead_only_when_the_history_is_longer_than_a_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, ahead: int
) -> None:
    """One fetch and no thread for a history shorter than a page; else a thread per page
    after the first (a full last page is followed by an empty one)."""
    monkeypatch.setattr(sqlite, "READ_AHEAD_PAGE", PAGE)
    started: list[object] = []

    class Counted(sqlite._Ahead[Any]):
        def __init__(self, call: Callable[[], Any]) -> None:
            started.append(call)
            super().__init__(call)

    monkeypatch.setattr(sqlite, "_Ahead", Counted)
    store = SQLBackend(f"sqlite:///{tmp_path / 'runs.db'}")
    try:
        if size:
            store.log_metric({Resource("r"): [MetricPoint("m", 0.5, s, 1) for s in range(size)]})
        assert steps(store) == list(range(size))
    finally:
        store.close()
    assert len(started) == ahead


def test_a_writer_committing_between_pages_does_not_tear_the_history(
    one: SQLBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another connection commits points into the pages not read yet while the first page's
    points are built: the read sees the history as it was when it began (one snapshot), the
    next read sees the new points."""

    def write() -> None:
        writer = SQLBackend(one.url)
        try:
            late = [MetricPoint("m", 0.5, 5, 0), MetricPoint("m", 0.5, 99, 1)]
            writer.log_metric({Resource("r"): late})
        finally:
            writer.close()

    on_page(monkeypatch, 1, write)
    assert steps(one) == list(range(10))
    monkeypatch.undo()
    assert steps(one) == [0, 1, 2, 3, 4, 5, 5, 6, 7, 8, 9, 99]


def test_the_store_s_own_writes_wait_for_the_read(
    one: SQLBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read holds the store's lock from its first page to its last: a write of the same
    store (the facade's flusher, say) waits, then commits."""
    done = threading.Event()
    failed: list[BaseException] = []

    def log() -> None:
        try:
            one.log_metric({Resource("r"): [MetricPoint("m", 0.5, 99, 1)]})
        except BaseException as exc:  # reported below, in the test's thread
            failed.append(exc)
        done.set()

    writer = threading.Thread(target=log)

    def write_and_wait() -> None:
        writer.start()
        assert not done.wait(0.3), f"the write did not wait for the read: {failed}"

    on_page(monkeypatch, 2, write_and_wait)
    assert steps(one) == list(range(10))
    writer.join()
    assert not failed
    monkeypatch.undo()
    assert steps(one) == [*range(10), 99]


def assert_left_clean(one: SQLBackend) -> None:
    """No read-ahead thread running, no transaction open, the lock free: the store writes."""
    assert threads_ahead() == []
    assert not store_of(one)._db.in_transaction
    one.log_metric({Resource("r"): [MetricPoint("m", 0.5, 99, 1)]})
    assert steps(one)[-1] == 99


def test_a_failure_of_a_page_read_ahead_is_the_store_s_error_in_the_caller(
    one: SQLBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver's error of a fetch in the read-ahead thread is raised in the reader's
    thread as the store's BackendError (the driver's error its cause), and the store is
    left as it was."""
    monkeypatch.setitem(sqlite._PAGE_JSON, True, "SELECT * FROM no_such_table")
    with pytest.raises(BackendError, match=r"SQLite store .*no such table") as raised:
        one.history(Resource("r"), "m")
    cause = raised.value.__cause__
    assert isinstance(cause, sqlite3.OperationalError)
    thrown_in = [frame.f_code.co_name for frame, _ in _frames(cause.__traceback__)]
    assert "_run" in thrown_in, "the failed fetch did not run in the read-ahead thread"
    monkeypatch.undo()
    assert_left_clean(one)


def test_a_failure_building_a_page_stops_the_read_and_its_thread(
    one: SQLBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error while a page's points are built leaves unchanged (it is no database
    failure), after the page being read ahead (slow here) is done: no thread is left on
    the connection, the transaction is over and the lock free."""
    store = store_of(one)
    fetch = store._json_page

    def slow(*args: Any) -> Any:
        if threading.current_thread() is not threading.main_thread():
            time.sleep(0.3)
        return fetch(*args)

    def fail() -> None:
        raise ValueError("a page that cannot be built")

    monkeypatch.setattr(store, "_json_page", slow)
    on_page(monkeypatch, 2, fail)
    with pytest.raises(ValueError, match="cannot be built"):
        one.history(Resource("r"), "m")
    monkeypatch.undo()
    assert_left_clean(one)


def _frames(traceback: Any) -> Iterator[Any]:
    while traceback is not None:
        yield traceback.tb_frame, traceback.tb_lineno
        traceback = traceback.tb_next


def test_the_collector_stays_paused_from_the_first_page_to_the_last(
    one: SQLBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A collection between two pages would walk every point built so far (the pause is
    per read, not per page)."""
    paused: list[bool] = []
    on_page(monkeypatch, 3, lambda: paused.append(not gc.isenabled()))
    assert steps(one) == list(range(10))
    assert paused == [True]
    assert gc.isenabled()
