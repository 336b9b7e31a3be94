"""PostgreSQL's reads of one statement run on autocommit connections the store holds
(``trackplug_sql.readers``): reused read after read, a sound one at a time per thread, never
one that broke or was cut, reopened after the server dropped them, and at most ``LIMIT``
open at once (a read beyond them waits for one, up to the store's bound). Real connections to
the test server throughout; a dropped connection is a real ``pg_terminate_backend``."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trackplug_sql.postgresql import PostgreSQLStore
from trackplug_sql.readers import KEEP, LIMIT, Reader, Readers

from trackplug import BackendError

SECRET = "r34d3r-pa55"
_PID = "SELECT pg_backend_pid()"


@pytest.fixture
def store_url(pg_url: str) -> str:
    """The test's store, its readers named (``application_name``) and with a password that
    trust authentication ignores."""
    name = f"trackplug_readers_{uuid.uuid4().hex[:8]}"
    return pg_url.replace("://postgres@", f"://postgres:{SECRET}@") + f"&application_name={name}"


@pytest.fixture
def store(store_url: str) -> Iterator[PostgreSQLStore]:
    opened = PostgreSQLStore(store_url)
    yield opened
    opened.close()


@pytest.fixture
def admin(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


def _readers(pg_url: str, limit: int = LIMIT, wait: float = 30) -> Readers:
    return Readers(lambda: psycopg.connect(pg_url, autocommit=True), "test", wait, limit)


def _pid(store: PostgreSQLStore) -> int:
    pid: int = store.query(_PID, {})[0][0]
    return pid


def _terminate(admin: psycopg.Connection[Any], *pids: int) -> None:
    admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [list(pids)])


def test_reads_one_after_another_reuse_one_connection(store: PostgreSQLStore) -> None:
    assert len({_pid(store) for _ in range(50)}) == 1


def test_a_dropped_connection_fails_one_read_then_the_next_reconnects(
    store: PostgreSQLStore, admin: psycopg.Connection[Any]
) -> None:
    dropped = _pid(store)
    _terminate(admin, dropped)
    with pytest.raises(BackendError) as info:
        _pid(store)
    assert "***" in str(info.value)
    assert SECRET not in str(info.value)
    assert isinstance(info.value.__cause__, psycopg.OperationalError)
    assert _pid(store) != dropped


def test_a_restarted_server_costs_one_failed_read_not_one_per_idle_connection(
    store: PostgreSQLStore, admin: psycopg.Connection[Any]
) -> None:
    """Every connection of a restarted server is gone: the first read that finds its own
    broken drops the idle ones too, so the next read opens a new connection."""
    pids = _concurrent_pids(store, 3)
    assert len(pids) == 3  # three readers, idle now
    _terminate(admin, *pids)
    with pytest.raises(BackendError):
        _pid(store)
    assert _pid(store) not in pids


def test_concurrent_reads_each_have_a_connection_and_at_most_keep_stay_open(
    store: PostgreSQLStore,
) -> None:
    pids = _concurrent_pids(store, KEEP + 3)
    assert len(pids) == KEEP + 3
    assert len(_concurrent_pids(store, KEEP + 3) & pids) == KEEP  # the kept ones, reused


def _concurrent_pids(store: PostgreSQLStore, threads: int) -> set[int]:
    """The server process of each of ``threads`` reads held open at the same time."""
    barrier = threading.Barrier(threads)
    pids: list[int] = []

    def hold(reader: Reader, sql: str, params: Any) -> int:
        pid: int = reader.rows(sql, params)[0][0]
        barrier.wait(timeout=30)  # every reader holds its connection here at once
        return pid

    def read() -> None:
        pids.append(store._reading(hold, _PID, {}))

    workers = [threading.Thread(target=read) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(pids) == threads
    return set(pids)


def test_a_connection_left_mid_statement_is_never_given_back(pg_url: str) -> None:
    """Sound means idle: a reader whose connection has a statement still in flight is
    closed, not reused."""
    readers = _readers(pg_url)
    reader = readers.take()
    reader.connection.pgconn.send_query(b"SELECT 1")
    readers.give_back(reader, cut=False)
    assert reader.connection.closed
    assert readers.take() is not reader
    readers.close()


def test_a_cut_connection_is_closed_and_closing_closes_the_idle_ones(pg_url: str) -> None:
    readers = _readers(pg_url)
    cut, kept = readers.take(), readers.take()
    readers.give_back(cut, cut=True)
    readers.give_back(kept, cut=False)
    assert cut.connection.closed
    assert not kept.connection.closed
    assert readers.take() is kept
    readers.give_back(kept, cut=False)
    readers.close()
    assert kept.connection.closed
    late = Reader(psycopg.connect(pg_url, autocommit=True))
    readers.give_back(late, cut=False)  # a read still running when the store closed
    assert late.connection.closed


def test_a_reader_keeps_no_result_after_a_read_or_a_history(store: PostgreSQLStore) -> None:
    """A small read's result is loaded into rows and let go; a history is fetched on a
    cursor of its own: the kept reader never holds the (large) packed history."""
    store.query("SELECT 1", {})
    (reader,) = store._readers._idle
    assert reader._loader.pgresult is None
    store.history("r", "loss", lambda *columns: [columns])
    assert store._readers._idle == [reader]
    assert reader._loader.pgresult is None


def test_a_statement_is_prepared_once_per_connection(store: PostgreSQLStore) -> None:
    """Each shared statement is prepared at its first run on a reader and run by name after:
    the connection holds one prepared statement per distinct statement, however many reads."""
    statements = ("SELECT :a::int + 1", "SELECT :a::int + 2")
    for n in range(5):
        for sql in statements:
            assert store.query(sql, {"a": n}) == [(n + 1 + statements.index(sql),)]
    held = store.query(
        "SELECT statement FROM pg_prepared_statements WHERE name LIKE 'trackplug%' ORDER BY name",
        {},
    )
    assert [statement for (statement,) in held] == [
        "SELECT $1::int + 1",
        "SELECT $1::int + 2",
        "SELECT statement FROM pg_prepared_statements WHERE name LIKE 'trackplug%' ORDER BY name",
    ]


def test_a_parameter_named_twice_is_one_and_casts_are_left_alone(store: PostgreSQLStore) -> None:
    sql = "SELECT :a::text || :b::text || :a::text, NULL::int, :n::bigint"
    assert store.query(sql, {"a": "x", "b": "y", "n": -(2**63)}) == [("xyx", None, -(2**63))]


def test_a_failing_statement_raises_psycopgs_error_and_the_reader_is_kept(
    store: PostgreSQLStore,
) -> None:
    """A statement the server refuses is psycopg's own exception for its SQLSTATE (translated
    by the one rule), on the first run (prepare) and on a later one; the connection stays
    sound and is reused."""
    pid = _pid(store)
    for _ in range(2):
        with pytest.raises(BackendError, match="UndefinedTable") as info:
            store.query("SELECT * FROM trackplug_no_such_table", {})
        assert isinstance(info.value.__cause__, psycopg.errors.UndefinedTable)
        with pytest.raises(BackendError, match="DivisionByZero") as info:
            store.query("SELECT 1 / :zero::int", {"zero": 0})
        assert isinstance(info.value.__cause__, psycopg.errors.DivisionByZero)
    assert _pid(store) == pid


def test_a_parameter_of_another_type_is_refused(store: PostgreSQLStore) -> None:
    with pytest.raises(TypeError, match="str or an int, not float"):
        store.query("SELECT :x", {"x": 1.5})
    with pytest.raises(TypeError, match="not bool"):
        store.query("SELECT :x", {"x": True})


# The store is read only here: one for every example is what is meant.
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"])),
    number=st.integers(-(2**63), 2**63 - 1),
)
def test_parameters_and_columns_come_back_as_psycopgs_cursor_gives_them(
    store: PostgreSQLStore, text: str, number: int
) -> None:
    """Any text (no NUL: PostgreSQL's text cannot hold one) and any bigint, sent as a
    parameter and read back, typed as psycopg's cursor types them; a float8 and a bool too."""
    sql = "SELECT :t::text, :n::bigint, (:n::bigint)::float8, :n::bigint % 2 = 0, length(:t)"
    rows = store.query(sql, {"t": text, "n": number})
    assert rows == [(text, number, float(number), number % 2 == 0, len(text))]


_OPEN = "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"
#: Seconds a server backend may stay listed in pg_stat_activity after its client closed the
#: connection: it leaves the list when it has exited, after the client's close returned.
_EXITING = 5.0


def test_three_times_limit_concurrent_reads_never_hold_more_than_limit_connections(
    store: PostgreSQLStore, store_url: str
) -> None:
    """Reads meet ``LIMIT`` at a time at a barrier (so the cap is reached), then count the
    server's connections of the store (its ``application_name``), holding theirs until all
    of them have counted.

    A reader given back beyond ``KEEP`` is closed by the client at once, but its server
    backend stays listed until it has exited: a few ms later, more on a loaded machine (a
    whole-suite run counted 17). Each read counts again until those are gone, for up to
    :data:`_EXITING` seconds; a connection held beyond the cap never goes (its read holds
    it until every read of its barrier has counted), so the count stays above ``LIMIT``."""
    name = store_url.rpartition("application_name=")[2]
    store._engine.dispose()  # the transactions' pool keeps the open's connection: not a reader
    barrier = threading.Barrier(LIMIT)
    counted = threading.Barrier(LIMIT)
    seen: list[int] = []

    def count_open(reader: Reader, sql: str, params: Any) -> int:
        barrier.wait(timeout=30)  # LIMIT reads hold their connection here at once
        opened: int = reader.rows(sql, params)[0][0]
        deadline = time.monotonic() + _EXITING
        while opened > LIMIT and time.monotonic() < deadline:  # closed ones still exiting?
            time.sleep(0.01)
            opened = reader.rows(sql, params)[0][0]
        counted.wait(timeout=30)
        return opened

    def read() -> None:
        seen.append(store._reading(count_open, _OPEN, {"name": name}))

    workers = [threading.Thread(target=read) for _ in range(3 * LIMIT)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(seen) == 3 * LIMIT
    assert max(seen) == LIMIT


def test_a_waiting_read_gets_the_reader_given_back(pg_url: str) -> None:
    readers = _readers(pg_url, limit=1)
    held = readers.take()
    taken: list[Any] = []
    waiter = threading.Thread(target=lambda: taken.append(readers.take()))
    waiter.start()
    waiter.join(timeout=0.5)
    assert waiter.is_alive()  # waiting: the one connection is held
    readers.give_back(held, cut=False)
    waiter.join(timeout=10)
    assert taken == [held]
    readers.give_back(held, cut=False)
    readers.close()


def test_a_read_waiting_past_the_bound_fails_saying_how_many_were_busy(
    store_url: str,
) -> None:
    store = PostgreSQLStore(store_url + "&timeout=0.5")
    held = [store._readers.take() for _ in range(LIMIT)]
    try:
        with pytest.raises(BackendError) as info:
            store.query("SELECT 1", {})
        message = str(info.value)
        assert f"all {LIMIT} read connections stayed busy for 0.5 s" in message
        assert "***" in message
        assert SECRET not in message
        for reader in held[:1]:
            store._readers.give_back(reader, cut=False)
        assert store.query("SELECT 1", {}) == [(1,)]  # one given back: the next read runs
    finally:
        for reader in held[1:]:
            store._readers.give_back(reader, cut=False)
        store.close()


def test_a_connection_that_fails_to_open_frees_its_slot(pg_url: str) -> None:
    attempts: list[int] = []

    def connect() -> psycopg.Connection[Any]:
        attempts.append(1)
        if len(attempts) == 1:
            raise psycopg.OperationalError("refused")
        return psycopg.connect(pg_url, autocommit=True)

    readers = Readers(connect, "test", wait=0.2, limit=1)
    with pytest.raises(psycopg.OperationalError):
        readers.take()
    reader = readers.take()  # the failed one's slot is free: no wait, no BackendError
    assert not reader.connection.closed
    readers.give_back(reader, cut=False)
    readers.close()


def test_closing_frees_the_idle_readers_places(pg_url: str) -> None:
    """A read still running when the store closed, or one after, does not wait for
    connections that closing closed."""
    readers = _readers(pg_url, limit=1, wait=0.2)
    idle = readers.take()
    readers.give_back(idle, cut=False)
    readers.close()
    late = readers.take()  # no BackendError: the closed idle one's place is free
    assert late is not idle
    readers.give_back(late, cut=False)
    assert late.connection.closed
