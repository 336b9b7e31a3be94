"""A PostgreSQL server that stops answering (SIGSTOP: its kernel still holds the TCP
connections open) costs at most the URL's ``timeout``: writes, flushes, reads and opening
all end in a ``BackendError``; a secondary spools and is replayed once the server is back.

The server is a throwaway cluster this module starts itself (initdb as user postgres into a
temporary directory, a free port), never the shared one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_cluster import Cluster, running_cluster, within_the_bound

import trackplug
from trackplug import BackendError, BackendWarning

pytest.importorskip("trackplug_sql", reason="the SQL backend is not installed")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster() as started:
        yield started


def test_writes_flushes_and_reads_end_within_the_timeout(cluster: Cluster) -> None:
    with trackplug.connect(cluster.url(), flush_interval=3600) as tracker:
        tracker.log_metric("run", "loss", 1.0, step=1)
        tracker.flush()
        with cluster.frozen():
            tracker.log_metric("run", "loss", 2.0, step=2)
            with within_the_bound(), pytest.raises(BackendError, match="did not answer within 2 s"):
                tracker.flush()
            with within_the_bound(), pytest.raises(BackendError, match="did not answer"):
                tracker.latest("run")  # the batch is still buffered: it is retried first
        tracker.flush()  # the server is back: nothing was lost
        assert [p.value for p in tracker.history("run", "loss")] == [1.0, 2.0]


def test_reads_end_within_the_timeout_and_the_next_ones_reconnect(cluster: Cluster) -> None:
    """Reads run on their own autocommit connections: each is cut at the bound too, and
    the connection it cut is never handed out again."""
    with trackplug.connect(cluster.url()) as tracker:
        tracker.log_points("reader", [trackplug.MetricPoint("loss", 1.0, 1, 1)])
        assert tracker.get_metric("reader", "loss") == 1.0  # a pooled reader connection
        with cluster.frozen():
            for read in (
                lambda: tracker.get_metric("reader", "loss"),
                lambda: tracker.best("acc"),
                lambda: tracker.history("reader", "loss"),
                lambda: list(tracker.iter_history("reader", "loss")),
            ):
                with within_the_bound(), pytest.raises(BackendError, match="did not answer"):
                    read()
        assert tracker.get_metric("reader", "loss") == 1.0
        assert [p.value for p in tracker.iter_history("reader", "loss")] == [1.0]


def test_opening_a_frozen_server_ends_within_the_timeout(cluster: Cluster) -> None:
    with (
        cluster.frozen(),
        within_the_bound(),
        pytest.raises(BackendError, match="did not answer within 2 s"),
    ):
        trackplug.connect(cluster.url())


def test_a_frozen_secondary_spools_and_is_replayed_when_it_answers(
    cluster: Cluster, tmp_path: Path
) -> None:
    url = cluster.url()
    outbox = tmp_path / "outbox.db"
    with trackplug.connect("memory://", url, outbox=str(outbox), flush_interval=3600) as tracker:
        tracker.log_metric("spooled-run", "loss", 1.0, step=1)
        tracker.flush()
        with cluster.frozen():
            tracker.log_metric("spooled-run", "loss", 2.0, step=2)
            with within_the_bound(), pytest.warns(BackendWarning, match="outbox"):
                tracker.flush()  # the primary has it; the frozen secondary's copy waits
            assert tracker.outbox.pending(url) == 1
    assert trackplug.sync(outbox=str(outbox)) == {url: 1}
    with trackplug.connect(url) as server:
        assert [p.value for p in server.history("spooled-run", "loss")] == [1.0, 2.0]


@pytest.mark.parametrize("timeout", ["0", "-1", "abc", "inf", "nan"])
def test_an_invalid_timeout_is_refused(cluster: Cluster, timeout: str) -> None:
    with pytest.raises(trackplug.ValidationError, match="timeout"):
        trackplug.connect(
            f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres?timeout={timeout}"
        )
