"""WAL checkpoints in a thread of their own (trackplug_sql.checkpointer), off the writer's
commits: when they run, on which connection, and how sync() and close() meet them."""

from __future__ import annotations

import gc
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from trackplug_sql import checkpointer
from trackplug_sql.sqlite import SQLiteStore

THREAD = "trackplug-sqlite-checkpoint"


@pytest.fixture
def checkpoints(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, sqlite3.Connection]]:
    """Every checkpoint the store runs: the thread that ran it, on which connection."""
    seen: list[tuple[str, sqlite3.Connection]] = []
    real = checkpointer.checkpoint

    def recorded(db: sqlite3.Connection) -> None:
        seen.append((threading.current_thread().name, db))
        real(db)

    monkeypatch.setattr(checkpointer, "checkpoint", recorded)
    monkeypatch.setattr("trackplug_sql.sqlite.checkpoint", recorded)
    monkeypatch.setattr(checkpointer, "CHECKPOINT_ROWS", 100)
    return seen


def write_rows(store: SQLiteStore, rows: int) -> None:
    """``rows`` rows changed in one write transaction (params: a table of plain rows)."""
    with store.transaction() as tx:
        tx.run_many(
            "INSERT INTO trackplug_params (resource, key, value) VALUES (?, ?, '1')",
            [(f"r{index}", f"k{rows}") for index in range(rows)],
        )


def checkpoint_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == THREAD]


def wait_until(check: Callable[[], object]) -> None:
    for _ in range(1000):  # 10 s
        if check():
            return
        time.sleep(0.01)
    raise AssertionError("the background checkpoint did not run")


def test_every_so_many_rows_a_thread_checkpoints_on_its_own_connection(
    tmp_path: Path, checkpoints: list[tuple[str, sqlite3.Connection]]
) -> None:
    store = SQLiteStore("sqlite:///x.db", str(tmp_path / "x.db"))
    try:
        write_rows(store, 60)
        write_rows(store, 30)  # 90 rows: below the 100
        assert checkpoints == []
        assert not checkpoint_threads()  # a small store: no thread
        write_rows(store, 20)  # 110: the thread starts and checkpoints
        wait_until(lambda: len(checkpoints) == 1)
        write_rows(store, 99)  # counted from 110: not yet
        write_rows(store, 1)
        wait_until(lambda: len(checkpoints) == 2)
        assert {name for name, _ in checkpoints} == {THREAD}
        assert all(db is not store._db for _, db in checkpoints)
    finally:
        store.close()


def test_the_writer_checkpoints_itself_only_as_a_backstop(tmp_path: Path) -> None:
    store = SQLiteStore("sqlite:///x.db", str(tmp_path / "x.db"))
    try:
        (pages,) = store._db.execute("PRAGMA wal_autocheckpoint").fetchone()
        assert pages == checkpointer.BACKSTOP_PAGES > 1000  # SQLite's default: 1,000
    finally:
        store.close()


def test_sync_checkpoints_in_the_caller_after_the_background_one(
    tmp_path: Path, checkpoints: list[tuple[str, sqlite3.Connection]]
) -> None:
    """sync() makes the writes durable by a checkpoint of its own: it waits for one
    running in the background (a second would return at once, busy, having synced nothing)."""
    store = SQLiteStore("sqlite:///x.db", str(tmp_path / "x.db"))
    try:
        write_rows(store, 5)
        assert store._checkpointer is not None
        store._checkpointer.lock.acquire()  # stands for a background checkpoint running
        syncing = threading.Thread(target=store.sync)
        syncing.start()
        syncing.join(0.2)
        assert syncing.is_alive()
        assert checkpoints == []
        store._checkpointer.lock.release()
        syncing.join(10)
        assert checkpoints == [(syncing.name, store._db)]
    finally:
        store.close()


def test_close_stops_the_thread_and_the_file_is_whole(
    tmp_path: Path, checkpoints: list[tuple[str, sqlite3.Connection]]
) -> None:
    path = tmp_path / "x.db"
    store = SQLiteStore("sqlite:///x.db", str(path))
    write_rows(store, 150)
    wait_until(lambda: checkpoints)
    assert checkpoint_threads()
    store.close()
    assert not checkpoint_threads()
    assert not Path(f"{path}-wal").exists()  # the last connection closed checkpointed it all
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM trackplug_params").fetchone() == (150,)


def test_a_store_dropped_without_close_takes_its_thread_with_it(
    tmp_path: Path, checkpoints: list[tuple[str, sqlite3.Connection]]
) -> None:
    store = SQLiteStore("sqlite:///x.db", str(tmp_path / "x.db"))
    write_rows(store, 150)
    wait_until(lambda: checkpoints)
    checkpoints.clear()  # the recorded connection would keep nothing alive, but be tidy
    del store
    gc.collect()
    wait_until(lambda: not checkpoint_threads())


def test_an_in_memory_store_has_no_log_and_no_checkpoints() -> None:
    store = SQLiteStore("sqlite://", None)
    try:
        assert store._checkpointer is None
        write_rows(store, 5)
        store.sync()
    finally:
        store.close()
