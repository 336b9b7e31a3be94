"""An MLflow database store on PostgreSQL whose server stops answering mid-session (SIGSTOP
after the tracker opened and wrote: its kernel keeps the TCP connections open, so no driver
timeout fires) costs at most the URL's ``timeout``: a read, a write with its flush and the
close end in a ``BackendError``; as a secondary it spools, and ``trackplug sync`` sends the
spooled writes once the server answers again. The bound is ``trackplug_mlflow.dbguard``.

The server is a throwaway cluster this module starts itself, never the shared one."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_cluster import TIMEOUT, Cluster, running_cluster, within_the_bound

import trackplug
from trackplug import BackendError, BackendWarning

pytest.importorskip("trackplug_mlflow", reason="the MLflow backend is not installed")
pytest.importorskip("sqlalchemy", reason="MLflow's database stores need SQLAlchemy")
pytest.importorskip("psycopg", reason="no PostgreSQL driver")
BOUND = f"did not answer within {TIMEOUT:g} s"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A cluster of our own, with a database for MLflow."""
    with running_cluster() as started:
        port = str(started.port)
        started.run("createdb", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "mlflow")
        yield started


def mlflow_url(cluster: Cluster, experiment: str) -> str:
    return (
        f"mlflow+postgresql://postgres@127.0.0.1:{cluster.port}/mlflow"
        f"?timeout={TIMEOUT:g}&experiment={experiment}"
    )


def test_a_read_a_write_and_close_end_within_the_timeout_mid_session(cluster: Cluster) -> None:
    url = mlflow_url(cluster, "frozen-reads-and-writes")
    tracker = trackplug.connect(url, flush_interval=3600)
    tracker.log_metric("run", "loss", 1.0, step=1)
    tracker.log_metrics("run", {"acc": 0.5}, step=1)
    tracker.flush()
    assert tracker.latest("run") == {"acc": 0.5, "loss": 1.0}
    with cluster.frozen():
        with within_the_bound(), pytest.raises(BackendError, match=BOUND):
            tracker.history("run", "loss")
        tracker.log_metric("run", "loss", 2.0, step=2)
        with within_the_bound(), pytest.raises(BackendError, match=BOUND):
            tracker.flush()
    tracker.flush()  # the server is back: the buffered write was kept, and is sent now
    assert [p.value for p in tracker.history("run", "loss")] == [1.0, 2.0]
    with cluster.frozen(), within_the_bound(), pytest.raises(BackendError, match=BOUND):
        tracker.close()  # marking the run FINISHED waits on the server


def test_a_frozen_secondary_spools_and_sync_sends_it_when_it_answers(
    cluster: Cluster, tmp_path: Path
) -> None:
    url = mlflow_url(cluster, "frozen-secondary")
    outbox = tmp_path / "outbox.db"
    with trackplug.connect("memory://", url, outbox=str(outbox), flush_interval=3600) as tracker:
        tracker.log_metric("spooled", "loss", 1.0, step=1)
        tracker.flush()
        with cluster.frozen():
            tracker.log_metric("spooled", "loss", 2.0, step=2)
            with within_the_bound(), pytest.warns(BackendWarning, match="outbox"):
                tracker.flush()  # the primary has it; the frozen secondary's copy waits
            assert tracker.outbox.pending(url) == 1
            assert tracker.history("spooled", "loss")[-1].value == 2.0  # the primary answers
    sync = [str(Path(sys.executable).with_name("trackplug")), "sync", "--outbox", str(outbox)]
    done = subprocess.run(sync, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "1 of 1" in done.stdout + done.stderr
    with trackplug.connect(url) as store:
        assert [p.value for p in store.history("spooled", "loss")] == [1.0, 2.0]
