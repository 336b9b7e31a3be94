"""When the database fails: locks at open, errors as BackendError, all-or-nothing writes.

Every failure here is a real one of SQLite or PostgreSQL (a lock held by another connection,
a statement timeout, a trigger that refuses a row), never a mock.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from trackplug_sql import SQLBackend, sqlite
from trackplug_sql.sqlite import sqlite_path

import trackplug
from trackplug import BackendError, PerfRecord

SECRET = "s3cr3t-pa55"

# -- opening a new SQLite file under contention ----------------------------------------------


def _holding_the_write_lock(path: Path) -> sqlite3.Connection:
    """Another connection in a write transaction on ``path`` (created if missing)."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_opening_a_new_file_waits_while_another_connection_holds_its_write_lock(
    tmp_path: Path,
) -> None:
    """``PRAGMA journal_mode=WAL`` fails at once with "database is locked" while another
    connection holds the write lock: SQLite does not call the busy handler there. The
    store must wait for the lock as it does everywhere else."""
    path = tmp_path / "new.db"
    holder = _holding_the_write_lock(path)
    release = threading.Timer(0.3, holder.execute, ["ROLLBACK"])
    release.start()
    try:
        SQLBackend(f"sqlite:///{path}").close()
    finally:
        release.join()
        holder.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT count(*) FROM trackplug_meta").fetchone() == (1,)


def test_opening_gives_up_after_the_busy_timeout_with_the_real_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT", 0.5)
    path = tmp_path / "new.db"
    holder = _holding_the_write_lock(path)
    started = time.monotonic()
    try:
        with pytest.raises(BackendError, match=r"cannot open SQLite database .*database is locked"):
            SQLBackend(f"sqlite:///{path}")
    finally:
        holder.close()
    assert time.monotonic() - started >= 0.5  # it retried for the whole timeout
    # and once the lock is gone, the file opens
    SQLBackend(f"sqlite:///{path}").close()


def test_many_connections_opening_one_new_file_at_once(tmp_path: Path) -> None:
    """The race itself, as 8 processes hit it: connections opening the same new file at
    the same moment. Without the retry about 1 round in 40 failed."""
    threads, rounds = 4, 200
    errors: list[BaseException] = []

    def open_once(url: str, barrier: threading.Barrier) -> None:
        barrier.wait()
        try:
            SQLBackend(url).close()
        except BaseException as exc:
            errors.append(exc)

    for n in range(rounds):
        url = f"sqlite:///{tmp_path / f'{n}.db'}"
        barrier = threading.Barrier(threads)
        workers = [threading.Thread(target=open_once, args=(url, barrier)) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    assert errors == []


def test_a_write_that_waits_longer_than_the_busy_timeout_is_a_backend_error(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT", 0.2)
    with trackplug.connect(sqlite_url) as tracker:
        holder = _holding_the_write_lock(Path(sqlite_path(sqlite_url) or ""))
        try:
            with pytest.raises(BackendError, match="database is locked") as info:
                tracker.log_metrics("r", {"x": 1.0}, perf_metric="x")  # written at once
        finally:
            holder.close()
        assert sqlite_url in str(info.value)
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        tracker.log_metrics("r", {"x": 1.0})  # the lock is gone: the store is fine
        assert tracker.latest("r") == {"x": 1.0}


# -- PostgreSQL's failures, from every path, as BackendError ---------------------------------


_CALLS: dict[str, Callable[[trackplug.Tracker], object]] = {
    "flush": lambda t: t.flush(),
    "history": lambda t: t.history("r", "x"),
    "iter_history": lambda t: list(t.iter_history("r", "x")),
    "get_metric": lambda t: t.get_metric("r", "x"),
    "best": lambda t: t.best("x"),
}


@pytest.mark.parametrize(
    ("table", "operation"),
    [
        ("trackplug_points", "flush"),  # the bulk insert, on psycopg's cursor
        ("trackplug_points", "history"),  # the history arrays, an autocommit read
        ("trackplug_points", "iter_history"),  # a page of them (history_page)
        ("trackplug_series", "get_metric"),  # a small autocommit read
        ("trackplug_series", "best"),
        ("trackplug_series", "flush"),  # the series upsert, on psycopg's cursor
    ],
)
def test_postgresql_failures_are_backend_errors_naming_the_url(
    pg_schemas: Any, table: str, operation: str
) -> None:
    """A statement timeout (``-cstatement_timeout``) while another connection holds a
    lock on ``table``: whichever path ran the statement, the caller gets a BackendError
    naming the URL without its password, caused by psycopg's own exception."""
    schema = pg_schemas.new_schema()
    SQLBackend(pg_schemas.url(schema)).close()  # the tables, without a timeout
    url = pg_schemas.url(schema, "-cstatement_timeout=200").replace(
        "://postgres@",
        f"://postgres:{SECRET}@",  # trust authentication ignores it
    )
    # No background flush: on a loaded machine one could write the second point before
    # the lock is taken (the flusher wakes every flush_interval), and then the flush under
    # the lock has nothing to write and raises nothing.
    with trackplug.connect(url, flush_interval=3600) as tracker:
        tracker.log_metric("r", "x", 1.0)
        tracker.flush()
        tracker.log_metric("r", "x", 2.0, step=1)
        if operation != "flush":
            tracker.flush()
        with psycopg.connect(pg_schemas.url(schema)) as locker:
            locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(BackendError) as info:
                _CALLS[operation](tracker)
            locker.rollback()
        message = str(info.value)
        assert "postgresql://postgres:***@" in message
        assert SECRET not in message
        assert "statement timeout" in message
        assert isinstance(info.value.__cause__, psycopg.errors.QueryCanceled)
        assert [p.value for p in tracker.history("r", "x")] == [1.0, 2.0]


def test_a_postgresql_store_that_cannot_be_opened_is_a_backend_error(pg_url: str) -> None:
    with pytest.raises(BackendError, match=r"cannot open PostgreSQL store .*bogus") as info:
        SQLBackend(f"{pg_url}&bogus=1")  # libpq refuses an unknown option
    assert isinstance(info.value.__cause__, psycopg.Error)


# -- log_metrics is all or nothing in the database -------------------------------------------

_SQLITE_REFUSE = {
    "trackplug_perf": (
        "CREATE TRIGGER refuse BEFORE INSERT ON trackplug_perf "
        "BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END"
    ),
    "trackplug_points": (
        "CREATE TRIGGER refuse BEFORE INSERT ON trackplug_points WHEN NEW.step = 13 "
        "BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END"
    ),
}
_POSTGRESQL_REFUSE = {
    "trackplug_perf": "CREATE TRIGGER refuse BEFORE INSERT ON trackplug_perf "
    "FOR EACH ROW EXECUTE FUNCTION refuse()",
    "trackplug_points": "CREATE TRIGGER refuse BEFORE INSERT ON trackplug_points "
    "FOR EACH ROW WHEN (NEW.step = 13) EXECUTE FUNCTION refuse()",
}
_POSTGRESQL_FUNCTION = (
    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql "
    "AS $$ BEGIN RAISE EXCEPTION 'refused by a test trigger'; END $$"
)


def _sql(url: str, *statements: str) -> list[tuple[Any, ...]]:
    """Run statements on the store's database, outside trackplug; the last one's rows."""
    path = sqlite_path(url) if url.startswith("sqlite") else None
    rows: list[tuple[Any, ...]] = []
    if path is not None:
        with sqlite3.connect(path, isolation_level=None) as db:
            for statement in statements:
                rows = db.execute(statement).fetchall()
        return rows
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            cursor = conn.execute(statement)
            rows = cursor.fetchall() if cursor.description else []
    return rows


def _refuse(url: str, table: str) -> None:
    if url.startswith("sqlite"):
        _sql(url, _SQLITE_REFUSE[table])
    else:
        _sql(url, _POSTGRESQL_FUNCTION, _POSTGRESQL_REFUSE[table])


def _allow(url: str, table: str) -> None:
    on_table = "" if url.startswith("sqlite") else f" ON {table}"
    _sql(url, f"DROP TRIGGER refuse{on_table}")


@pytest.mark.parametrize("table", ["trackplug_perf", "trackplug_points"])
def test_log_metrics_is_all_or_nothing_in_the_database(persistent_url: str, table: str) -> None:
    """A trigger refuses the perf record (the write's last statement: every point and
    series row is in by then) or a point (after the series rows were moved forward): the
    store must keep nothing of the write, and say so with a BackendError."""
    metrics = {"train": {"loss": 0.5, "f1": 0.7}, "valid": {"loss": 0.6, "f1": 0.8}}
    with trackplug.connect(persistent_url) as tracker:
        tracker.log_metrics("r", {"train": {"loss": 1.0}}, step=0)
        tracker.flush()  # buffered until now
        _refuse(persistent_url, table)
        with pytest.raises(BackendError, match="refused by a test trigger") as info:
            tracker.log_metrics("r", metrics, perf_metric="f1", step=13)
        assert tracker.url in str(info.value)
        assert isinstance(info.value.__cause__, (sqlite3.Error, psycopg.Error))

        # nothing of it in the database ...
        assert _sql(persistent_url, "SELECT count(*) FROM trackplug_points") == [(1,)]
        assert _sql(persistent_url, "SELECT resource, key, step FROM trackplug_series") == [
            ("r", "train_loss", 0)
        ]
        assert _sql(persistent_url, "SELECT count(*) FROM trackplug_perf") == [(0,)]
        # ... nor in what the tracker reads
        assert tracker.latest("r") == {"train_loss": 1.0}
        assert tracker.perf("r") is None

        # the store is usable, and the same write goes through once nothing refuses it
        _allow(persistent_url, table)
        tracker.log_metrics("r", metrics, perf_metric="f1", step=13)
        assert tracker.latest("r")["valid_f1"] == 0.8
        assert tracker.perf("r") == PerfRecord("f1", 0.8)
