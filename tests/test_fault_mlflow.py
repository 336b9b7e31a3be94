"""A real ``mlflow server`` as a secondary backend, killed mid-run and restarted: after
``sync()`` it holds exactly the points that were logged — none lost, none twice."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import trackplug
from trackplug.fanout import BackendWarning

pytest.importorskip("trackplug_mlflow", reason="the MLflow backend is not installed")
pytest.importorskip("mlflow.server", reason="the full mlflow (its server) is not installed")

POINTS = 20_000
KILL_AT, RESTART_AT = 5_000, 12_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MlflowServer:
    """``mlflow server`` on 127.0.0.1 with a SQLite store that outlives restarts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
            "--default-artifact-root", (self.root / "artifacts").as_uri(),
        ]  # fmt: skip
        log = (self.root / "server.log").open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.skip(
                    f"mlflow server exited: {(self.root / 'server.log').read_text()[-500:]}"
                )
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.25)
        pytest.skip("mlflow server did not answer /health within 120 s")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MlflowServer]:
    running = MlflowServer(tmp_path)
    running.start()
    yield running
    running.kill()


def test_a_killed_and_restarted_server_ends_with_every_point_exactly_once(
    server: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail fast, then spool
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    url = f"mlflow+{server.uri}?experiment=fault-test"
    tracker = trackplug.connect(
        "memory://",
        url,
        outbox=tmp_path / "outbox.db",
        retry_interval=0.5,
        flush_interval=0.05,
        buffer_size=500,
    )
    with pytest.warns(BackendWarning, match="outbox"):
        for step in range(POINTS):
            tracker.log_metric("run", "loss", step / 3, step=step)
            if step == KILL_AT:
                tracker.flush()
                server.kill()
            elif step == RESTART_AT:
                tracker.flush()  # lands in the outbox: the server is down
                server.start()
        tracker.flush()
    tracker.sync()
    assert tracker.outbox.pending() == 0
    tracker.close()

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=server.uri)
    experiment = client.get_experiment_by_name("fault-test")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], "attributes.run_name = 'run'")
    assert len(runs) == 1
    history = client.get_metric_history(runs[0].info.run_id, "loss")
    assert len(history) == POINTS  # 0 duplicated
    assert sorted(m.step for m in history) == list(range(POINTS))  # 0 lost
    assert all(m.value == m.step / 3 for m in history)
