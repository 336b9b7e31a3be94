"""A real ``mlflow server`` on 127.0.0.1 for tests: its port is chosen when it is made, so its
address is known (a dead secondary's) before it starts; its SQLite store outlives restarts.
Shared by the fault tests and the framework adapters' tests (``pythonpath`` in pyproject)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

START_TIMEOUT = 180.0  # seconds; a loaded machine is slow to import mlflow


def free_port() -> int:
    """A port nothing listens on (yet)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MlflowServer:
    """``mlflow server`` on 127.0.0.1 with a SQLite store under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str | None:
        """None once it answers /health; else why not."""
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
                return f"it exited: {log.read_text()[-1000:]}"
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=5) as answer:
                    if answer.status == 200:
                        return None
            except OSError:
                time.sleep(0.25)
        return f"it did not answer /health within {START_TIMEOUT:.0f} s"

    def start_or_fail(self) -> None:
        """Start it where the test is about it coming up: one that does not is a failure."""
        problem = self.start()
        if problem is not None:
            pytest.fail(f"the mlflow server did not come up: {problem}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=60)
