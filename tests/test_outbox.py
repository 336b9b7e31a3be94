"""The outbox is private whatever existed before, and replays are exclusive: two syncs of
one outbox, threads or processes, never send the same write, and the counts they print add
up to what was waiting."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import trackplug
from trackplug import MetricPoint, PerfRecord, Resource
from trackplug._outbox import Outbox
from trackplug._writes import LogMetrics

WRITES = 1000


def private(path: Path) -> bool:
    return path.stat().st_mode & 0o777 == 0o600


def test_a_pre_existing_outbox_and_its_companions_are_made_private(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    sqlite3.connect(path).close()
    companions = [tmp_path / f"outbox.db{suffix}" for suffix in ("-wal", "-shm", ".lock")]
    for file in [path, *companions]:
        file.touch()
        file.chmod(0o644)
    box = Outbox(path)
    box.append("sqlite:///x.db", LogMetrics(Resource("r"), [], None))
    assert all(private(file) for file in [path, *companions])
    box.close()


def test_a_new_outbox_is_private_in_a_private_directory(tmp_path: Path) -> None:
    path = tmp_path / "new" / "outbox.db"
    box = Outbox(path)
    box.append("sqlite:///x.db", LogMetrics(Resource("r"), [], None))
    assert private(path)
    assert path.parent.stat().st_mode & 0o777 == 0o700
    box.close()


def test_an_outbox_that_cannot_be_opened_is_a_backend_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("a file, not a directory")
    with pytest.raises(trackplug.BackendError, match="outbox"):
        Outbox(tmp_path / "file" / "outbox.db").append(
            "sqlite:///x.db", LogMetrics(Resource("r"), [], None)
        )


def fill(outbox: Path, url: str) -> None:
    """``WRITES`` single-point writes waiting for ``url``: one perf record each, the last
    one newest, so a replay out of order would show."""
    box = Outbox(outbox)
    for step in range(WRITES):
        point = MetricPoint("loss", float(step), step, 1_000 + step)
        box.append(url, LogMetrics(Resource("run"), [point], PerfRecord("loss", float(step))))
    box.close()


def test_the_replay_lock_excludes_another_outbox_object_and_is_reentrant(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    fill(path, "memory://")
    first, second = Outbox(path), Outbox(path)
    with first.replaying() as held:
        assert held
        with first.replaying() as again:  # the same object, the same thread
            assert again
        with second.replaying(wait=False) as other:  # a separate lock, as in another process
            assert not other
    with second.replaying(wait=False) as other:
        assert other


def test_concurrent_syncs_in_threads_send_each_write_once(tmp_path: Path) -> None:
    pytest.importorskip("trackplug_sql")
    outbox, target = tmp_path / "outbox.db", f"sqlite:///{tmp_path / 'target.db'}"
    fill(outbox, target)
    results: list[dict[str, int]] = []

    def sync() -> None:
        results.append(trackplug.sync(outbox=Outbox(outbox)))

    threads = [threading.Thread(target=sync) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(result.get(target, 0) for result in results) == WRITES
    assert Outbox(outbox).pending() == 0


def test_concurrent_trackplug_sync_processes_print_counts_that_add_up(tmp_path: Path) -> None:
    pytest.importorskip("trackplug_sql")
    outbox, target = tmp_path / "outbox.db", f"sqlite:///{tmp_path / 'target.db'}"
    fill(outbox, target)
    command = [sys.executable, "-m", "trackplug.cli", "sync", "--outbox", str(outbox)]
    env = {**os.environ, "COLUMNS": "200"}
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) for _ in range(8)
    ]
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    assert [process.returncode for process in processes] == [0] * 8
    sent = 0
    for output in outputs:
        match = re.search(r"Sent (\d+) of (\d+) waiting writes", output)
        if match:  # a sync that found the outbox empty says so instead
            count, waiting = int(match[1]), int(match[2])
            assert count == waiting  # true: what it saw waiting is what it sent
            sent += count
        else:
            assert "Nothing to sync" in output
    assert sent == WRITES
    with trackplug.connect(target) as tracker:
        assert [p.step for p in tracker.history("run", "loss")] == list(range(WRITES))
        assert tracker.perf("run") == PerfRecord("loss", WRITES - 1.0)  # the newest, last
