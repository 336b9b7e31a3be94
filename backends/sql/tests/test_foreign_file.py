"""A SQLite database that is not a trackplug store is refused before a byte of it changes:
no tables added, no switch to WAL, no -wal or -shm file left behind."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import trackplug
from trackplug import BackendError


def make_database(path: Path, *tables: str) -> bytes:
    with sqlite3.connect(path) as db:
        for table in tables:
            db.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT)")
            db.execute(f"INSERT INTO {table} (name) VALUES ('kept')")
    db.close()
    return path.read_bytes()


def journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as db:
        mode = str(db.execute("PRAGMA journal_mode").fetchone()[0])
    db.close()
    return mode


def assert_untouched(path: Path, before: bytes) -> None:
    assert path.read_bytes() == before
    assert journal_mode(path) == "delete"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_a_database_of_another_application_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    before = make_database(path, "users", "orders")
    with pytest.raises(BackendError, match="not a trackplug store") as error:
        trackplug.connect(f"sqlite:///{path}")
    assert "orders, users" in str(error.value)
    assert "mlflow" not in str(error.value)
    assert_untouched(path, before)


def test_an_mlflow_store_is_refused_with_the_url_to_use(tmp_path: Path) -> None:
    path = tmp_path / "mlflow.db"
    before = make_database(path, "alembic_version", "experiments", "runs", "metrics", "params")
    with pytest.raises(BackendError, match="looks like an MLflow store") as error:
        trackplug.connect(f"sqlite:///{path}")
    assert f"mlflow+sqlite:///{path}" in str(error.value)
    assert_untouched(path, before)


def test_a_file_that_is_no_database_is_a_backend_error_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("not a database, just text\n" * 100)
    before = path.read_bytes()
    with pytest.raises(BackendError, match="not a database"):
        trackplug.connect(f"sqlite:///{path}")
    assert path.read_bytes() == before


@pytest.mark.parametrize("content", ["empty file", "empty database"])
def test_an_empty_file_or_database_becomes_a_store(tmp_path: Path, content: str) -> None:
    path = tmp_path / "new.db"
    if content == "empty file":
        path.touch()
    else:
        make_database(path)
    with trackplug.connect(f"sqlite:///{path}") as tracker:
        tracker.log_metric("r", "k", 1.0)
    with trackplug.connect(f"sqlite:///{path}") as tracker:
        assert tracker.latest("r") == {"k": 1.0}
