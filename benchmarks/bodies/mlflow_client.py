"""What a user would use instead: ``MlflowClient`` on MLflow's SQLite store.

The store is a copy of the run's fixture (migrated once per run, see
:mod:`benchmarks.fixtures`), so these time logging and reading, not MLflow's migrations.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .. import data
from ..probes import PeakMemory, latency_figures
from ..worker import Context, Result
from .stores import mlflow_metric_rows

if TYPE_CHECKING:
    from mlflow import MlflowClient

#: MLflow's own limit on metrics per ``log_batch`` call.
BATCH_LIMIT = 1000
#: The default experiment of a fresh store.
EXPERIMENT = "0"


def _client(context: Context) -> MlflowClient:
    from mlflow import MlflowClient  # imported by the body, in the case's own interpreter

    return MlflowClient(tracking_uri=context.mlflow_uri)


def _run_id(client: MlflowClient, name: str) -> str:
    return str(client.create_run(EXPERIMENT, run_name=name).info.run_id)


def log_metric_loop(context: Context) -> Result:
    """One ``MlflowClient.log_metric`` per point; with ``params["lolpop"]`` the key is
    lolpop's ``"<resource id>.<name>"``. Each call's latency is timed too: the clock's
    cost (< 0.1 us) is nothing beside a call of milliseconds."""
    points = data.series(context.size)
    key = f"{data.RESOURCE}.{data.KEY}" if context.params.get("lolpop") else data.KEY
    client = _client(context)
    run_id = _run_id(client, data.RESOURCE)
    waits = [0] * len(points)
    clock, log = time.perf_counter_ns, client.log_metric
    start = time.perf_counter()
    for index, (step, value) in enumerate(points):
        before = clock()
        log(run_id, key, value, step=step)
        waits[index] = clock() - before
    seconds = time.perf_counter() - start
    found = mlflow_metric_rows(context.mlflow_db)
    return Result(seconds, len(points), len(points), found, latency_figures(waits))


def log_batch(context: Context) -> Result:
    """The batch data as ``MlflowClient.log_batch`` calls of 1,000 metrics (MLflow's limit)."""
    from mlflow.entities import Metric

    rows = data.grid(context.size, int(context.params["keys"]))
    now = int(time.time() * 1000)
    metrics = [
        Metric(key, value, now, step) for step, row in enumerate(rows) for key, value in row.items()
    ]
    chunks = [metrics[i : i + BATCH_LIMIT] for i in range(0, len(metrics), BATCH_LIMIT)]
    client = _client(context)
    run_id = _run_id(client, data.RESOURCE)
    memory = PeakMemory()
    start = time.perf_counter()
    for chunk in chunks:
        client.log_batch(run_id, metrics=chunk)
    seconds = time.perf_counter() - start
    figures = {"peak_rss_mib": memory.mib()}
    found = mlflow_metric_rows(context.mlflow_db)
    return Result(seconds, len(metrics), len(metrics), found, figures)


def history(context: Context) -> Result:
    """``get_metric_history`` of the fixture's one metric of ``size`` points."""
    client = _client(context)
    (run,) = client.search_runs([EXPERIMENT])  # outside the timer; opens the store
    start = time.perf_counter()
    read = client.get_metric_history(run.info.run_id, data.KEY)
    seconds = time.perf_counter() - start
    return Result(seconds, len(read), context.size, len(read))


def best(context: Context) -> Result:
    """``search_runs(order_by=["metrics.f1 DESC"], max_results=1)`` over ``size`` runs."""
    client = _client(context)
    client.get_experiment(EXPERIMENT)  # opens the store, outside the timer
    order_by = [f"metrics.{data.RANK_KEY} DESC"]
    start = time.perf_counter()
    top = client.search_runs([EXPERIMENT], order_by=order_by, max_results=1)
    seconds = time.perf_counter() - start
    expected_best = data.best_of(data.ranked(context.size))
    name = top[0].info.run_name if top else None
    mismatch = None if name == expected_best else f"best is {name}, not {expected_best}"
    found = mlflow_metric_rows(context.mlflow_db) // 2  # two metrics per run
    return Result(seconds, 0, context.size, found, mismatch=mismatch)


def migrate(context: Context) -> Result:
    """What an MLflow user writes to move a run: ``get_metric_history`` of each key, then
    ``log_batch`` of 1,000 at a time into a new run (here in a new experiment of the same
    store, as trackplug's copy into MLflow does). Peak memory above the process after
    import is a figure: the history is held whole, as ``get_metric_history`` returns it."""
    from mlflow.entities import Metric

    client = _client(context)
    (run,) = client.search_runs([EXPERIMENT])  # outside the timer; opens the store
    memory = PeakMemory()
    start = time.perf_counter()
    target = client.create_run(client.create_experiment("copy"), run_name=run.info.run_name)
    for key in run.data.metrics:
        history = client.get_metric_history(run.info.run_id, key)
        metrics = [Metric(m.key, m.value, m.timestamp, m.step) for m in history]
        for begin in range(0, len(metrics), BATCH_LIMIT):
            client.log_batch(target.info.run_id, metrics=metrics[begin : begin + BATCH_LIMIT])
    client.set_terminated(target.info.run_id)
    seconds = time.perf_counter() - start
    figures = {"peak_rss_mib": memory.mib()}
    found = len(client.get_metric_history(target.info.run_id, data.KEY))
    return Result(seconds, found, context.size, found, figures)
