"""A real ``mlflow server`` as a secondary backend, killed twice mid-run and restarted: after
``sync()`` it holds exactly the points that were logged — none lost, none twice.

The first kill comes while a write is in flight: its first ``log_batch`` call is committed,
the server dies during the second, so MLflow holds part of a write that is replayed whole. The
second kill comes right after ``flush()``, with nothing in flight. HTTP timeouts are short only
while the server is down (so nothing hangs on it), generous while it is up (a loaded machine
is slow, not down).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import closing, suppress
from pathlib import Path
from typing import Any

import pytest

from trackplug import Tracker, hookimpl
from trackplug._fanout import BackendWarning
from trackplug._memory import MemoryBackend
from trackplug._model import Batch
from trackplug._outbox import Outbox
from trackplug._writes import LogBatch

pytest.importorskip("trackplug_mlflow", reason="the MLflow backend is not installed")
pytest.importorskip("mlflow.server", reason="the full mlflow (its server) is not installed")

from mlflow.tracking import MlflowClient
from mlflow_server import MlflowServer
from trackplug_mlflow import MLflowBackend

POINTS = 20_000
WRITE = 2_500  # a background write has this many points or more: 3+ log_batch calls of 1,000
FIRST_KILL, FIRST_RESTART = 4_000, 9_000  # killed while a write is in flight
SECOND_KILL, SECOND_RESTART = 13_000, 17_000  # killed right after flush()
#: MLflow reads these per request. While the server is down: fail at once, then spool.
DOWN = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
#: While it is up: replaying thousands of points or reading 20,000 may take long under load.
UP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "300"}


def use(settings: dict[str, str]) -> None:
    os.environ.update(settings)


class KillingClient(MlflowClient):
    """The real client. Once armed, the server is killed while the second ``log_batch`` call
    of a write is in flight (the first call's points are committed); the calls after it wait
    for the kill, so they fail."""

    def __init__(self, server: MlflowServer) -> None:
        super().__init__(tracking_uri=server.uri)
        self.server = server
        self.armed = False
        self.calls_in_write = 0  # reset by WriteMarking at the start of each write
        self.killer: threading.Thread | None = None

    def log_batch(self, run_id: str, *args: Any, **kwargs: Any) -> Any:
        self.calls_in_write += 1
        if self.armed and self.calls_in_write == 2:
            self.armed = False
            use(DOWN)
            self.killer = threading.Thread(target=self.server.kill)
            self.killer.start()  # and this call goes on, racing the kill
        elif self.killer is not None:
            self.killer.join()
        return super().log_batch(run_id, *args, **kwargs)


class WriteMarking(MLflowBackend):
    """The real backend, telling its client where each write starts (counting calls alone
    would not do: the flusher may send a small write of its own right after ``flush()``)."""

    @hookimpl
    def log_metric(self, batch: Batch) -> None:
        self.client.calls_in_write = 0
        super().log_metric(batch)


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowServer]:
    for name, value in UP.items():
        monkeypatch.setenv(name, value)  # and restored after the test, whatever it set
    running = MlflowServer(tmp_path)
    problem = running.start()
    if problem is not None:
        pytest.skip(f"no mlflow server: {problem}")
    yield running
    running.kill()


def log(tracker: Tracker, steps: range) -> None:
    for step in steps:
        tracker.log_metric("run", "loss", step / 3, step=step)


def steps_of(write: LogBatch) -> list[int]:
    return [p.step for points in write.batch.values() for p in points]


def history(server: MlflowServer) -> Sequence[Any]:
    client = MlflowClient(tracking_uri=server.uri)
    experiment = client.get_experiment_by_name("fault-test")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], "attributes.run_name = 'run'")
    assert len(runs) == 1
    return client.get_metric_history(runs[0].info.run_id, "loss")


def test_a_killed_and_restarted_server_ends_with_every_point_exactly_once(
    server: MlflowServer, tmp_path: Path
) -> None:
    url = f"mlflow+{server.uri}?experiment=fault-test"
    client = KillingClient(server)
    tracker = Tracker(
        MemoryBackend(),
        WriteMarking(url, client=client),
        urls=["memory://", url],
        outbox=tmp_path / "outbox.db",
        retry_interval=0.5,
        flush_interval=3600,  # writes come from buffer_size alone: WRITE points or more
        buffer_size=WRITE,
    )
    closed = False
    try:
        with pytest.warns(BackendWarning, match="outbox"):
            log(tracker, range(FIRST_KILL))
            tracker.flush()
            client.armed = True  # the next write of two calls or more is cut short
            log(tracker, range(FIRST_KILL, FIRST_RESTART))
            tracker.flush()  # lands in the outbox: the server is down
            assert client.killer is not None, "no write was in flight"
            client.killer.join()
            with closing(Outbox(tmp_path / "outbox.db")) as box:
                _, first = next(box.entries(url))
            assert isinstance(first, LogBatch)
            killed = steps_of(first)  # the write in flight at the kill, spooled whole
            server.start_or_fail()
            use(UP)
            held = {m.step for m in history(server)}
            assert killed[0] in held  # MLflow has part of the write: its first call
            assert killed[-1] not in held  # not the rest

            log(tracker, range(FIRST_RESTART, SECOND_KILL))  # replays the outbox first
            tracker.flush()
            use(DOWN)
            server.kill()
            log(tracker, range(SECOND_KILL, SECOND_RESTART))
            tracker.flush()  # the outbox again
            server.start_or_fail()
            use(UP)
            log(tracker, range(SECOND_RESTART, POINTS))
            tracker.flush()
        tracker.sync()
        assert tracker.outbox.pending() == 0
        tracker.close()
        closed = True
    finally:
        if not closed:
            use(DOWN)  # a failed run must not wait on a dead server while closing
            with suppress(Exception):
                tracker.close()

    points = history(server)
    assert len(points) == POINTS  # 0 duplicated
    assert sorted(m.step for m in points) == list(range(POINTS))  # 0 lost
    assert all(m.value == m.step / 3 for m in points)
