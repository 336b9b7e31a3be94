"""A PostgreSQL primary that refuses connections: a clear ``BackendError`` naming the URL,
its password redacted, and nothing reported as written that was not."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

import trackplug
from trackplug import BackendError

pytest.importorskip("trackplug_sql", reason="the SQL backend is not installed")
BASE_URL = os.environ.get("TRACKPLUG_TEST_POSTGRESQL_URL")
pytestmark = pytest.mark.skipif(
    not BASE_URL, reason="TRACKPLUG_TEST_POSTGRESQL_URL is not set (no PostgreSQL to test with)"
)
SECRET = "not-a-real-password"


def with_database(url: str, database: str, password: str | None = None) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc
    if password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:{password}@{host}"
    return urlunsplit((parts.scheme, netloc, f"/{database}", parts.query, ""))


@pytest.fixture
def admin() -> Iterator[object]:
    psycopg = pytest.importorskip("psycopg")
    assert BASE_URL is not None
    dsn = with_database(BASE_URL, "postgres").replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(dsn, autocommit=True) as connection:
        yield connection


@pytest.fixture
def database(admin: object) -> Iterator[str]:
    """A database of our own, so that refusing its connections disturbs no one else."""
    name = f"trackplug_fault_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
    yield name
    admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')  # type: ignore[attr-defined]
    admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # type: ignore[attr-defined]


def refuse_connections(admin: object, database: str, refuse: bool) -> None:
    admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(not refuse).lower()}')  # type: ignore[attr-defined]
    if refuse:
        admin.execute(  # type: ignore[attr-defined]
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (database,),
        )


def test_a_server_that_refuses_at_connect_is_a_backend_error_naming_the_url() -> None:
    assert BASE_URL is not None
    url = with_database(BASE_URL, "test", SECRET).replace("127.0.0.1:5432", "127.0.0.1:1")
    with pytest.raises(BackendError) as error:
        trackplug.connect(url)
    message = str(error.value)
    assert "127.0.0.1:1" in message
    assert "***" in message
    assert SECRET not in message
    assert error.value.__cause__ is not None  # the driver's own error is kept


def test_refused_mid_run_nothing_is_reported_written_and_nothing_is_lost(
    admin: object, database: str
) -> None:
    assert BASE_URL is not None
    url = with_database(BASE_URL, database, SECRET)
    with trackplug.connect(url, flush_interval=3600) as tracker:
        for step in range(100):
            tracker.log_metric("run", "loss", float(step), step=step)
        tracker.flush()
        refuse_connections(admin, database, refuse=True)
        for step in range(100, 200):
            tracker.log_metric("run", "loss", float(step), step=step)
        with pytest.raises(BackendError) as error:
            tracker.flush()
        assert SECRET not in str(error.value)
        with pytest.raises(BackendError):
            tracker.history("run", "loss")  # no read pretends the points are there
        refuse_connections(admin, database, refuse=False)
        tracker.flush()  # the buffer kept the batch: it goes out now
        assert [p.step for p in tracker.history("run", "loss")] == list(range(200))
