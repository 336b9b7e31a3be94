"""The figures of docs/backends/mlflow.md (a script, not the benchmark harness).

On one MLflow SQLite store, interleaved over N rounds (default 5): points/s of lolpop-style
``MlflowClient.log_metric`` once per point, of ``MlflowClient.log_batch`` directly (1,000
metrics per call), and of trackplug's MLflow backend (``Tracker.log_metric`` per point, then
``flush()``). Run: ``python backends/mlflow/scripts/figures.py [rounds]``; it works in a
temporary directory and leaves nothing behind.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from trackplug_mlflow.backend import MLflowBackend

import trackplug

N_SLOW, N_FAST = 200, 20_000


def lolpop_style(client: MlflowClient, experiment: str) -> float:
    run = client.create_run(experiment).info.run_id
    started = time.perf_counter()
    for i in range(N_SLOW):
        client.log_metric(run, "model.loss", 1.0 / (i + 1), step=i)
    return N_SLOW / (time.perf_counter() - started)


def direct_log_batch(client: MlflowClient, experiment: str) -> float:
    run = client.create_run(experiment).info.run_id
    now = time.time_ns() // 1_000_000
    started = time.perf_counter()
    metrics = [Metric("loss", 1.0 / (i + 1), now, i) for i in range(N_FAST)]
    for j in range(0, N_FAST, 1000):
        client.log_batch(run, metrics=metrics[j : j + 1000])
    return N_FAST / (time.perf_counter() - started)


def trackplug_backend(client: MlflowClient, url: str) -> float:
    backend = MLflowBackend(url, client=client)
    tracker = trackplug.Tracker(backend, flush_interval=3600, buffer_size=10**9, max_buffer=10**9)
    rid = uuid.uuid4().hex
    tracker.log_metric(rid, "warm", 0.0)
    tracker.flush()  # the run exists, as in the direct case
    started = time.perf_counter()
    for i in range(N_FAST):
        tracker.log_metric(rid, "loss", 1.0 / (i + 1), step=i)
    tracker.flush()
    rate = N_FAST / (time.perf_counter() - started)
    tracker.close()
    return rate


def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        uri = f"sqlite:///{Path(directory) / 'mlflow.db'}"
        client = MlflowClient(uri)
        experiment = client.create_experiment("figures")
        cases: dict[str, Callable[[], float]] = {
            "lolpop-style log_metric": lambda: lolpop_style(client, experiment),
            "MlflowClient.log_batch": lambda: direct_log_batch(client, experiment),
            "trackplug mlflow": lambda: trackplug_backend(client, f"mlflow+{uri}?experiment=t"),
        }
        rates: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(rounds):
            for name, case in cases.items():
                rates[name].append(case())
    median = {name: statistics.median(values) for name, values in rates.items()}
    for name, values in rates.items():
        print(f"{name:24s} {median[name]:9.0f} points/s   rounds {[round(v) for v in values]}")
    lolpop, direct, ours = median.values()
    print(f"trackplug vs lolpop-style: {ours / lolpop:.1f}x")
    print(f"trackplug overhead over log_batch: {(direct / ours - 1) * 100:+.1f} %")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
