"""A writing process killed with SIGKILL: every write the outbox accepted arrives later.

Real components only: the primary is a SQLite file; the secondary is a real SQLite backend
that fails because its file's directory does not exist yet, so every write to it is spooled
to the outbox. The directory appears after the kill, and the next start replays the outbox.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from pathlib import Path

import pytest

import trackplug
from trackplug._outbox import Outbox
from trackplug._writes import LogBatch

pytest.importorskip("trackplug_sql", reason="the SQL backend (trackplug-sql) is not installed")

WRITER = """
import trackplug

t = trackplug.connect({primary!r}, {secondary!r}, outbox={outbox!r},
                      retry_interval=0.2, flush_interval=0.01)  # keeps trying the secondary
step = 0
while True:
    t.log_metric("run", "loss", step / 7, step=step)
    step += 1
    if step % 50 == 0:
        t.flush()
        print(step, flush=True)  # every step below this one is durable
"""


def integrity(path: Path) -> str:
    with closing(sqlite3.connect(path)) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


def test_sigkill_mid_run_loses_nothing_the_outbox_accepted(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.db"
    primary = f"sqlite:///{tmp_path / 'runs.db'}"
    later = tmp_path / "later"  # the secondary's directory: missing while the writer runs
    secondary = f"sqlite:///{later / 'server.db'}"
    script = WRITER.format(primary=primary, secondary=secondary, outbox=str(outbox))
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert writer.stdout is not None
    durable = 0
    try:
        for line in writer.stdout:
            durable = int(line)
            if durable >= 3000:
                break
    finally:
        os.kill(writer.pid, signal.SIGKILL)  # wherever it is: mid-batch, mid-spool
        writer.wait(timeout=60)
    assert durable >= 3000, "the writer stopped before it had flushed 3,000 points"

    for path in [outbox, tmp_path / "runs.db"]:
        assert integrity(path) == "ok", path
    assert not later.exists()  # every write to the secondary failed and was spooled
    with closing(Outbox(outbox)) as box:
        accepted = {
            (p.step, p.value)
            for _, write in box.entries(secondary)
            if isinstance(write, LogBatch)
            for points in write.batch.values()
            for p in points
        }
    assert {(step, step / 7) for step in range(durable)} <= accepted

    later.mkdir()  # the secondary can be opened now
    with trackplug.connect(primary, secondary, outbox=outbox) as t:
        assert t.outbox.pending() == 0  # replayed at connect
        assert len(t.history("run", "loss")) >= durable  # the primary kept its commits
    with trackplug.connect(secondary) as server:
        assert {(p.step, p.value) for p in server.history("run", "loss")} == accepted
    for path in [outbox, tmp_path / "runs.db", later / "server.db"]:
        assert integrity(path) == "ok", path
