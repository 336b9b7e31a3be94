"""``trackplug_mlflow.dbguard`` on a live PostgreSQL (the session's; nothing is frozen): a
call that waits on the database past the bound is cut and reported as a timeout, a quick
one is left alone, another thread's connection in use is not touched, and the engine keeps
working after a cut. A server that really freezes: tests/test_frozen_mlflow_postgresql.py."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
from trackplug_mlflow.dbguard import DatabaseGuard

from trackplug import BackendError

sqlalchemy = pytest.importorskip("sqlalchemy", reason="MLflow's database stores need it")
pytest.importorskip("psycopg", reason="no PostgreSQL driver")
BOUND = 0.5  # seconds


@pytest.fixture
def engine() -> Iterator[object]:
    url = os.environ.get("TRACKPLUG_TEST_POSTGRESQL_URL")
    if not url:
        pytest.skip("TRACKPLUG_TEST_POSTGRESQL_URL is not set (no PostgreSQL to test with)")
    engine = sqlalchemy.create_engine(url, pool_pre_ping=True)  # as MLflow makes it
    yield engine
    engine.dispose()


def sleep_on(engine: object, seconds: float) -> None:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        conn.execute(sqlalchemy.text("SELECT pg_sleep(:s)"), {"s": seconds})


def test_a_call_past_the_bound_is_cut_and_the_engine_still_works(engine: object) -> None:
    guard = DatabaseGuard(engine, BOUND)
    try:
        started = time.monotonic()
        with (
            pytest.raises(BackendError, match=r"did not answer within 0\.5 s"),
            guard.bounded("sleeping"),
        ):
            sleep_on(engine, 60)
        assert time.monotonic() - started < BOUND + 5
        with guard.bounded("a quick query"):
            sleep_on(engine, 0)  # a new connection: the cut one was discarded
    finally:
        guard.stop()


def test_another_threads_connection_in_use_is_left_alone(engine: object) -> None:
    guard = DatabaseGuard(engine, BOUND)
    other: list[BaseException | None] = []

    def busy_elsewhere() -> None:
        try:
            sleep_on(engine, 2.0)  # not watched, and checked out by this thread
            other.append(None)
        except BaseException as exc:
            other.append(exc)

    thread = threading.Thread(target=busy_elsewhere)
    thread.start()
    time.sleep(0.3)  # it has its connection
    try:
        with pytest.raises(BackendError, match="did not answer"), guard.bounded("sleeping"):
            sleep_on(engine, 60)
    finally:
        thread.join()
        guard.stop()
    assert other == [None]
