"""Fixtures of the framework adapters' tests: each framework imported only by its own test
module (skipped with the reason where it is missing), and an ``mlflow server`` started on a
port chosen before it runs (a fan-out's dead secondary that comes up later).

Keras reads ``KERAS_BACKEND`` once, when it is first imported: the Keras tests use torch,
set here (only if nothing chose a backend already) before any of them imports Keras.
"""

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

os.environ.setdefault("KERAS_BACKEND", "torch")

START_TIMEOUT = 180.0  # seconds; a loaded machine is slow to import mlflow


def free_port() -> int:
    """A port nothing listens on (yet): the address of an MLflow server that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LateMlflowServer:
    """``mlflow server`` on a port chosen now, started when the test says so."""

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
        log = self.root / "server.log"
        with log.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=out, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"mlflow server exited: {log.read_text()[-1000:]}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=5) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.25)
        pytest.fail(f"mlflow server did not answer /health within {START_TIMEOUT:.0f} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=60)


@pytest.fixture
def late_mlflow_server(tmp_path: Path) -> Iterator[LateMlflowServer]:
    pytest.importorskip("trackplug_mlflow", reason="the MLflow backend is not installed")
    pytest.importorskip("mlflow.server", reason="the full mlflow (its server) is not installed")
    saved = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"  # the dead server fails at once
    server = LateMlflowServer(tmp_path / "mlflow")
    server.root.mkdir()
    try:
        yield server
    finally:
        server.stop()
        if saved is None:
            os.environ.pop("MLFLOW_HTTP_REQUEST_MAX_RETRIES", None)
        else:
            os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = saved
