"""A writing process killed with SIGKILL: every write the outbox accepted arrives later."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from fake_plugins import FlakyBackend

import trackplug
from trackplug import Registry, Resource
from trackplug.outbox import Outbox
from trackplug.writes import LogBatch

TESTS = Path(__file__).parent
SERVER = "flaky://server"
FLAKY = EntryPoint("flaky", "fake_plugins:Flaky", "trackplug")


def registry() -> Registry:
    return Registry([*entry_points(group="trackplug"), FLAKY])


def primary_url(tmp_path: Path) -> str:
    """A real SQLite file when the SQL backend is installed, else memory."""
    return f"sqlite:///{tmp_path / 'runs.db'}" if "sqlite" in registry().backends else "memory://"


WRITER = """
import sys
sys.path.insert(0, {tests!r})
from importlib.metadata import EntryPoint, entry_points
import trackplug
from fake_plugins import FlakyBackend

FlakyBackend.down = True  # the server is down for the whole run
registry = trackplug.Registry([*entry_points(group="trackplug"), EntryPoint(*{flaky!r})])
t = trackplug.connect({primary!r}, {server!r}, outbox={outbox!r}, registry=registry,
                      retry_interval=3600, flush_interval=0.01)
step = 0
while True:
    t.log_metric("run", "loss", step / 7, step=step)
    step += 1
    if step % 50 == 0:
        t.flush()
        print(step, flush=True)  # every step below this one is durable
"""


def test_sigkill_mid_run_loses_nothing_the_outbox_accepted(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.db"
    primary = primary_url(tmp_path)
    script = WRITER.format(
        tests=str(TESTS),
        flaky=(FLAKY.name, FLAKY.value, FLAKY.group),
        primary=primary,
        server=SERVER,
        outbox=str(outbox),
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert writer.stdout is not None
    durable = 0
    for line in writer.stdout:
        durable = int(line)
        if durable >= 3000:
            break
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)

    for path in [outbox, tmp_path / "runs.db"]:
        if path.exists():
            check = sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()
            assert check == ("ok",), path

    accepted = {
        (p.step, p.value)
        for _, write in Outbox(outbox).entries(SERVER)
        if isinstance(write, LogBatch)
        for points in write.batch.values()
        for p in points
    }
    assert {(step, step / 7) for step in range(durable)} <= accepted

    FlakyBackend.instances.clear()
    FlakyBackend.down = False
    with trackplug.connect(primary, SERVER, outbox=outbox, registry=registry()) as t:
        assert t.outbox.pending() == 0  # replayed at connect
        if primary != "memory://":
            assert len(t.history("run", "loss")) >= durable  # the primary kept its commits
    server = FlakyBackend.instances[SERVER]
    assert {(p.step, p.value) for p in server.history(Resource("run"), "loss")} == accepted
