"""Schema, reopening, URLs and redaction, discovery through the entry point."""

from __future__ import annotations

import sqlite3
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from trackplug_sql import SQLBackend, SQLFactory
from trackplug_sql.schema import SCHEMA_VERSION
from trackplug_sql.sqlite import sqlite_path

import trackplug
from trackplug import BackendError, Capabilities, MetricPoint, ValidationError
from trackplug._registry import Registry

SECRET = "s3cr3t-pa55"


def test_discovered_through_the_entry_point(sqlite_url: str) -> None:
    backends = Registry().backends
    assert isinstance(backends["sqlite"].factory, SQLFactory)
    assert backends["postgresql"].distribution == "trackplug-sql"
    with trackplug.connect(sqlite_url) as tracker:
        assert tracker.capabilities.persistent
        assert tracker.url == sqlite_url


def test_importing_the_plugin_imports_neither_sqlalchemy_nor_psycopg() -> None:
    code = (
        "import sys, trackplug_sql\n"
        "heavy = [m for m in ('sqlalchemy', 'psycopg') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "trackplug_sql.SQLBackend('sqlite://').close()\n"
        "assert 'sqlalchemy' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_in_memory_stores_are_separate_and_not_persistent() -> None:
    with trackplug.connect("sqlite://") as one, trackplug.connect("sqlite:///:memory:") as two:
        one.log_metric("r", "x", 1.0)
        assert two.resources() == []
        assert not one.capabilities.persistent


def test_the_factory_s_declaration_and_the_backend_s_answer_agree(url: str) -> None:
    """One channel: ``trackplug backends`` asks the factory (nothing opened), and the
    backend's capabilities hook answers its URL's form's declaration."""
    factory = SQLFactory()
    backend = SQLBackend(url)
    try:
        declared = backend.capabilities()
        assert factory.capabilities(url) == declared
        assert declared.persistent == (url != "sqlite://")
    finally:
        backend.close()
    kept = Capabilities(persistent=True)
    assert factory.form("sqlite:///:memory:") == ("sqlite://", Capabilities(), "in memory")
    assert factory.capabilities("sqlite:///FILE") == kept
    assert factory.capabilities("postgresql+psycopg://h/db") == kept


def test_the_factory_names_the_file_a_sqlite_url_keeps_its_data_in(tmp_path: Path) -> None:
    factory = SQLFactory()
    local = factory.local_store(f"sqlite:///{tmp_path}/runs.db")
    assert local is not None
    assert (local.kind, local.path) == ("file", tmp_path / "runs.db")
    assert factory.local_store("sqlite://") is None
    assert factory.local_store("postgresql://u:pw@h/db") is None


def test_reopen_keeps_everything(persistent_url: str) -> None:
    with trackplug.connect(persistent_url) as tracker:
        tracker.log_points("r", [MetricPoint("x", float(i), i, 1) for i in range(100)])
        tracker.log_metrics("r", {"f1": 0.5}, perf_metric="f1")
    with trackplug.connect(persistent_url) as tracker:
        assert len(tracker.history("r", "x")) == 100
        assert tracker.latest("r") == {"x": 99.0, "f1": 0.5}
        assert tracker.perf("r") is not None
        tracker.log_metric("r", "x", 5.0, step=1000)  # cached nothing stale: new series ids
        tracker.log_metric("s", "x", 6.0)
        assert tracker.best("x", "max", 2) == [("s", 6.0), ("r", 5.0)]


def test_schema_version_is_recorded_and_a_newer_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    SQLBackend(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        (version,) = db.execute(
            "SELECT value FROM trackplug_meta WHERE name = 'schema_version'"
        ).fetchone()
        assert int(version) == SCHEMA_VERSION
        db.execute("UPDATE trackplug_meta SET value = ?", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(
        BackendError, match=rf"schema version {SCHEMA_VERSION + 1}, written by a newer"
    ):
        SQLBackend(f"sqlite:///{path}")


def test_a_point_row_is_its_key_alone_and_reads_back_exactly(tmp_path: Path) -> None:
    """Schema version 4: a value is stored once, as its ``value_order`` (the key's last
    column); NaN, -0.0 and a negative value come back bit-exactly from it."""
    path = tmp_path / "orders.db"
    values = [float("nan"), -0.0, 2.5, -2.5]
    with trackplug.connect(f"sqlite:///{path}") as tracker:
        for step, value in enumerate(values):
            tracker.log_metric("r", "x", value, step=step)
        read = [p.value for p in tracker.history("r", "x")]
    assert [struct.pack("<d", v) for v in read] == [struct.pack("<d", v) for v in values]
    with sqlite3.connect(path) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(trackplug_points)")]
        orders = db.execute("SELECT value_order FROM trackplug_points ORDER BY step").fetchall()
    assert columns == ["series", "step", "timestamp_ms", "value_order"]
    assert orders == [(-(2**63),), (-1,), (0x4004000000000000,), (-0x4004000000000001,)]


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(BackendError, match=r"cannot open SQLite database .*junk\.db"):
        SQLBackend(f"sqlite:///{path}")


def test_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match=r"cannot open SQLite database .*nowhere"):
        SQLBackend(f"sqlite:///{tmp_path / 'nowhere' / 'x.db'}")


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("sqlite:///runs.db", "runs.db"),
        ("sqlite:////abs/dir/runs.db", "/abs/dir/runs.db"),
        ("sqlite+pysqlite:///a%20b.db", "a b.db"),
    ],
)
def test_sqlite_urls(url: str, path: str | None) -> None:
    assert sqlite_path(url) == path


@pytest.mark.parametrize("url", ["sqlite://host/x.db", "sqlite:///x.db?timeout=3"])
def test_sqlite_urls_with_host_or_query_are_refused(url: str) -> None:
    with pytest.raises(ValidationError, match=r"sqlite:///relative/path\.db"):
        sqlite_path(url)


def test_another_postgresql_driver_is_refused_without_showing_the_password() -> None:
    with pytest.raises(ValidationError, match="psycopg 3") as info:
        SQLBackend(f"postgresql+psycopg2://bob:{SECRET}@127.0.0.1/db")
    assert SECRET not in str(info.value)


def test_a_failed_postgresql_connection_never_shows_the_password() -> None:
    url = f"postgresql://bob:{SECRET}@127.0.0.1:1/db?connect_timeout=2"
    with pytest.raises(BackendError) as info:
        SQLBackend(url)
    message = str(info.value)
    assert "postgresql://bob:***@127.0.0.1:1/db" in message
    assert SECRET not in message
    assert SECRET not in repr(info.value.__cause__)


def test_password_appears_in_neither_url_nor_repr(pg_url: str) -> None:
    # trust authentication ignores the password, so a wrong one still connects
    url = pg_url.replace("://postgres@", f"://postgres:{SECRET}@")
    with trackplug.connect(url) as tracker:
        backend = tracker._primary.backend
        for text in (tracker.url, repr(tracker), repr(backend), backend.url):  # type: ignore[attr-defined]
            assert SECRET not in text
            assert "postgres:***@" in text


def test_postgresql_schema_creation_is_idempotent(pg_url: str) -> None:
    for _ in range(3):
        SQLBackend(pg_url).close()
    with trackplug.connect(pg_url) as tracker:
        tracker.log_metric("r", "x", 1.0)
        assert tracker.get_metric("r", "x") == 1.0
