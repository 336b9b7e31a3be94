"""A throwaway PostgreSQL cluster for the tests that freeze a server (SIGSTOP): initdb as
user postgres into a temporary directory, on a free port; never the shared server."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path

import pytest

TIMEOUT = 2.0
#: Slack for a loaded machine: the bound is TIMEOUT, the test allows this much more.
SLACK = 4.0


def _bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
    return Path(found.stdout.strip()) if found.returncode == 0 else None


class Cluster:
    """A PostgreSQL cluster of our own, run as user postgres."""

    def __init__(self, bindir: Path, data: Path, port: int) -> None:
        self.bindir, self.data, self.port = bindir, data, port

    def run(self, tool: str, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(self.bindir / tool), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def url(self, **query: object) -> str:
        params = "&".join(f"{k}={v}" for k, v in {"timeout": TIMEOUT, **query}.items())
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres?{params}"

    def pids(self) -> list[int]:
        """The postmaster and every process it started (the connections' backends)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == postmaster:
                    children.append(int(entry.name))
        return [postmaster, *children]

    @contextmanager
    def frozen(self) -> Iterator[None]:
        pids = self.pids()
        for pid in pids:
            _signal(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for pid in pids:
                _signal(pid, signal.SIGCONT)


def _signal(pid: int, signum: signal.Signals) -> None:
    """Send ``signum`` to ``pid`` unless it has exited since it was listed (a short-lived
    worker of the server, such as an autovacuum or connection process that just ended)."""
    with suppress(ProcessLookupError):
        os.kill(pid, signum)


@contextmanager
def running_cluster() -> Iterator[Cluster]:
    """A cluster of our own, started for the ``with`` block (skips the test if it cannot)."""
    bindir = _bindir()
    if bindir is None or os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs root, runuser and PostgreSQL's initdb to start a throwaway cluster")
    # Not under pytest's base directory, which user postgres may not enter.
    data = Path(tempfile.mkdtemp(prefix="trackplug-frozen-pg-"))
    shutil.chown(data, "postgres")
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cluster = Cluster(bindir, data, port)
    cluster.run("initdb", "-A", "trust", "-U", "postgres", "-D", str(data))
    options = f"-h 127.0.0.1 -p {port} -k {data}"
    log = str(data / "server.log")  # not our stdout: the server would hold the pipe open
    cluster.run("pg_ctl", "-D", str(data), "-o", options, "-l", log, "-w", "start")
    try:
        yield cluster
    finally:
        cluster.run("pg_ctl", "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(data, ignore_errors=True)


@contextmanager
def within_the_bound() -> Iterator[None]:
    """The block ends within the URL's timeout (plus slack for a loaded machine)."""
    started = time.monotonic()
    yield
    assert time.monotonic() - started < TIMEOUT + SLACK
