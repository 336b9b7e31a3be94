"""trackplug's side of each comparison, on the backend the case names."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .. import data
from ..probes import PeakMemory, latency_figures
from ..worker import Context, Result
from .stores import mlflow_metric_rows, store_url

if TYPE_CHECKING:
    from trackplug import Tracker


def _connect(url: str) -> Tracker:
    import trackplug  # imported by the body, in the case's own interpreter

    return trackplug.connect(url)


def _count(context: Context, tracker: Tracker, resource: str, keys: Iterable[str]) -> int:
    """Points read back: through trackplug, or for the MLflow backend from MLflow's table."""
    if context.backend == "mlflow":
        return mlflow_metric_rows(context.mlflow_db)
    return sum(len(tracker.history(resource, key)) for key in keys)


def log_metric_loop(context: Context) -> Result:
    """One ``log_metric`` call per point, then ``flush``: sustained points/s."""
    points = data.series(context.size)
    with store_url(context) as url:
        tracker = _connect(url)
        log, resource, key = tracker.log_metric, data.RESOURCE, data.KEY
        start = time.perf_counter()
        for step, value in points:
            log(resource, key, value, step=step)
        tracker.flush()
        seconds = time.perf_counter() - start
        found = _count(context, tracker, resource, [key])
        tracker.close()
    return Result(seconds, len(points), len(points), found)


def log_metric_latency(context: Context) -> Result:
    """The caller's wait in each ``log_metric`` call: p50, p99, max."""
    points = data.series(context.size)
    waits = [0] * len(points)
    clock = time.perf_counter_ns
    with store_url(context) as url:
        tracker = _connect(url)
        log, resource, key = tracker.log_metric, data.RESOURCE, data.KEY
        start = time.perf_counter()
        for index, (step, value) in enumerate(points):
            before = clock()
            log(resource, key, value, step=step)
            waits[index] = clock() - before
        tracker.flush()
        seconds = time.perf_counter() - start
        found = _count(context, tracker, resource, [key])
        tracker.close()
    return Result(seconds, len(points), len(points), found, latency_figures(waits))


def batch_loop(context: Context) -> Result:
    """The batch data (many keys x steps) as one ``log_metric`` call per point. On the
    MLflow backend, also trackplug's own share: the time outside MLflow's ``log_batch``
    calls (validation, buffering, run lookup, ``Metric`` objects) over the time inside."""
    rows = data.grid(context.size, int(context.params["keys"]))
    total = sum(len(row) for row in rows)
    inside = _time_log_batch() if context.backend == "mlflow" else None
    with store_url(context) as url:
        tracker = _connect(url)
        log, resource = tracker.log_metric, data.RESOURCE
        memory = PeakMemory()
        start = time.perf_counter()
        for step, row in enumerate(rows):
            for key, value in row.items():
                log(resource, key, value, step=step)
        tracker.flush()
        seconds = time.perf_counter() - start
        figures = {"peak_rss_mib": memory.mib()}
        found = _count(context, tracker, resource, rows[0])
        tracker.close()
    if inside is not None:
        figures["own_share"] = (seconds - inside[0]) / inside[0]
    return Result(seconds, total, total, found, figures)


def _time_log_batch() -> list[float]:
    """Wrap ``MlflowClient.log_batch`` so that each call adds its seconds to the list."""
    from mlflow import MlflowClient

    spent = [0.0]
    log_batch = MlflowClient.log_batch

    def timed(*args: Any, **kwargs: Any) -> Any:
        before = time.perf_counter()
        try:
            return log_batch(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - before

    MlflowClient.log_batch = timed  # type: ignore[method-assign]
    return spent


def batch_dict(context: Context) -> Result:
    """The batch data as one ``log_metrics(resource, {key: value}, step=...)`` per step."""
    rows = data.grid(context.size, int(context.params["keys"]))
    total = sum(len(row) for row in rows)
    with store_url(context) as url:
        tracker = _connect(url)
        log, resource = tracker.log_metrics, data.RESOURCE
        start = time.perf_counter()
        for step, row in enumerate(rows):
            log(resource, row, step=step)
        tracker.flush()
        seconds = time.perf_counter() - start
        found = _count(context, tracker, resource, rows[0])
        tracker.close()
    return Result(seconds, total, total, found)


def history(context: Context) -> Result:
    """``history()`` of one metric with ``size`` points, from a store reopened cold."""
    points = data.series(context.size)
    with store_url(context) as url:
        with _connect(url) as writer:
            for step, value in points:
                writer.log_metric(data.RESOURCE, data.KEY, value, step=step)
        tracker = _connect(url)
        tracker.get_metric("absent", data.KEY)  # opens the connection, outside the timer
        start = time.perf_counter()
        read = tracker.history(data.RESOURCE, data.KEY)
        seconds = time.perf_counter() - start
        tracker.close()
    steps_ok = [point.step for point in read] == [step for step, _ in points]
    mismatch = None if steps_ok else "history is not ordered by step"
    return Result(seconds, len(read), len(points), len(read), mismatch=mismatch)


def best(context: Context) -> Result:
    """``best(f1, "max", limit=1)`` over ``size`` resources, from a store reopened cold."""
    rows = data.ranked(context.size)
    with store_url(context) as url:
        with _connect(url) as writer:
            for resource, f1, loss in rows:
                writer.log_metrics(resource, {data.RANK_KEY: f1, data.KEY: loss})
        tracker = _connect(url)
        tracker.get_metric("absent", data.RANK_KEY)  # opens the connection
        start = time.perf_counter()
        top = tracker.best(data.RANK_KEY, order="max", limit=1)
        seconds = time.perf_counter() - start
        found = len(tracker.resources())
        tracker.close()
    expected_best = data.best_of(rows)
    mismatch = None if top[0][0] == expected_best else f"best is {top}, not {expected_best}"
    return Result(seconds, 0, len(rows), found, mismatch=mismatch)


def peak_memory(context: Context) -> Result:
    """Peak RSS while logging ``size`` points, above the process after import."""
    import trackplug_sql.sqlite  # noqa: F401  # the backend's import, in the baseline

    import trackplug

    memory = PeakMemory()
    with store_url(context) as url:
        tracker = trackplug.connect(url)
        log, resource, key = tracker.log_metric, data.RESOURCE, data.KEY
        start = time.perf_counter()
        for step in range(context.size):
            log(resource, key, step * 0.001, step=step)
        tracker.flush()
        seconds = time.perf_counter() - start
        figures = {"peak_rss_mib": memory.mib()}
        found = _count(context, tracker, resource, [key])
        tracker.close()
    return Result(seconds, context.size, context.size, found, figures)


def migrate_mlflow(context: Context) -> Result:
    """``trackplug.copy`` of every run of the fixture's MLflow store (``?runs=all``: one run,
    one metric of ``size`` points, logged by MLflow) into ``params["backend"]``: into a
    new trackplug SQLite store, or into a new experiment of the same MLflow store (the
    work of MLflow's own loop). Peak memory above the process after import is a figure:
    the source is read a page at a time."""
    import trackplug_mlflow.store  # noqa: F401  # mlflow's import, in the baseline
    import trackplug_sql.sqlite  # noqa: F401

    import trackplug

    source = f"mlflow+{context.mlflow_uri}?runs=all&experiment=Default"
    target = (
        f"mlflow+{context.mlflow_uri}?experiment=copy"
        if context.backend == "mlflow"
        else context.trackplug_url()
    )
    with trackplug.connect(source) as src, trackplug.connect(target) as dst:
        src.resources()  # opens both stores outside the timer, as MLflow's side does
        dst.resources()
        memory = PeakMemory()
        start = time.perf_counter()
        summary = trackplug.copy(src, dst)
        seconds = time.perf_counter() - start
        figures = {"peak_rss_mib": memory.mib()}
    with _connect(target) as tracker:
        (resource,) = tracker.resources()
        found = len(tracker.history(resource, data.KEY))
    return Result(seconds, summary.points, context.size, found, figures)
