"""8 processes x 10,000 points into one store at once: nothing lost, nothing locked.

Every process opens the store itself at the same moment (so the schema is created under
contention too) and flushes every 100 points, so about 800 write transactions compete. This
is a test, not a benchmark: it asserts counts, never durations.
"""

from __future__ import annotations

import multiprocessing
import traceback
from multiprocessing.synchronize import Event

import trackplug

PROCESSES = 8
POINTS = 10_000


def _work(url: str, worker: int, start: Event, errors: multiprocessing.Queue[str]) -> None:
    try:
        start.wait()
        with trackplug.connect(url, buffer_size=100, flush_interval=0.01) as tracker:
            for i in range(POINTS):
                if i % 2:  # half to the shared resource: the same series rows contend
                    tracker.log_metric("shared", "x", float(i), step=worker * POINTS + i)
                else:
                    tracker.log_metric(f"worker-{worker}", "x", float(i), step=i)
    except BaseException:
        errors.put(f"worker {worker}: {traceback.format_exc()}")
        raise


def _run(url: str) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    errors: multiprocessing.Queue[str] = context.Queue()
    workers = [
        context.Process(target=_work, args=(url, n, start, errors)) for n in range(PROCESSES)
    ]
    for process in workers:
        process.start()
    start.set()
    for process in workers:
        process.join(timeout=300)
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert failures == []
    assert [process.exitcode for process in workers] == [0] * PROCESSES

    with trackplug.connect(url) as tracker:
        shared = tracker.history("shared", "x")
        assert len(shared) == PROCESSES * POINTS // 2
        assert [p.step for p in shared] == sorted(
            n * POINTS + i for n in range(PROCESSES) for i in range(1, POINTS, 2)
        )
        for n in range(PROCESSES):
            mine = tracker.history(f"worker-{n}", "x")
            assert [p.value for p in mine] == [float(i) for i in range(0, POINTS, 2)]
        assert tracker.get_metric("shared", "x") == float(POINTS - 1)  # worker 7's last step
        assert len(tracker.resources()) == PROCESSES + 1


def test_eight_processes_into_one_sqlite_file(sqlite_url: str) -> None:
    _run(sqlite_url)


def test_eight_processes_into_one_postgresql_store(pg_url: str) -> None:
    _run(pg_url)
