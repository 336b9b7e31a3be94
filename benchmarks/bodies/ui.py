"""The dashboard's budget (issue 20): one long metric, read whole and sampled for a chart by
trackplug and by MLflow, and plotted by ``trackplug ui`` in a real browser.

The same points everywhere (``data.series``); a sample asks for :data:`SAMPLE` points.
MLflow's sampled read is what its own UI's charts call
(``get-history-bulk-interval``: ``get_metric_history_bulk_interval`` of its store), which
keeps evenly spaced rows, not each bucket's extremes.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .. import data
from ..worker import Context, Result
from .stores import store_url

if TYPE_CHECKING:
    from trackplug import MetricPoint, Tracker

#: Points a chart asks for (the page asks for twice its width in pixels).
SAMPLE = 1000
#: The browser, as the browser tests find it.
CHROMIUM = os.environ.get("TRACKPLUG_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def _filled(url: str, size: int, context: Context) -> tuple[Tracker, dict[str, float]]:
    """A tracker on ``url`` once ``size`` points of the metric are stored, reopened cold,
    and the writer's figures: seconds to log and flush the points, and to close (where the
    SQL backend builds the rollup of a series written in bulk). ``params["rollup"]``:
    ``"fresh"``: sampled once before (as a dashboard watching the run would have);
    ``"unbuilt"``: the writer's close builds nothing (as a writer killed before closing
    leaves it: the first sampled read builds the rollup); else just logged and closed."""
    import trackplug

    points = [trackplug.MetricPoint(data.KEY, v, s, 1_000 + s) for s, v in data.series(size)]
    unbuilt = context.params.get("rollup") == "unbuilt"
    start = time.perf_counter()
    with _rollup_at_close(never=unbuilt), trackplug.connect(url) as writer:
        for first in range(0, len(points), 100_000):
            writer.log_points(data.RESOURCE, points[first : first + 100_000])
        writer.flush()
        logged = time.perf_counter()
        if context.params.get("rollup") == "fresh":
            writer.history_sampled(data.RESOURCE, data.KEY, SAMPLE)
        sampled = time.perf_counter()
    closed = time.perf_counter()
    tracker = trackplug.connect(url)
    tracker.get_metric("absent", data.KEY)  # opens the connection, outside the timer
    return tracker, {"writer_log_s": logged - start, "writer_close_s": closed - sampled}


@contextmanager
def _rollup_at_close(never: bool) -> Iterator[None]:
    """With ``never``, no rollup is built at close (trackplug_sql's threshold out of reach)."""
    if not never:
        yield
        return
    from trackplug_sql import rollup

    kept = rollup.BUILD_AT_CLOSE
    rollup.BUILD_AT_CLOSE = 2**63
    try:
        yield
    finally:
        rollup.BUILD_AT_CLOSE = kept


def _sample_problem(sample: Sequence[MetricPoint], size: int) -> str | None:
    """What is wrong with a sample of ``data.series(size)``: too long, out of order, or
    missing an end, the least or the greatest value."""
    values = [value for _, value in data.series(size)]
    steps = [point.step for point in sample]
    if len(sample) > SAMPLE:
        return f"{len(sample)} points sampled, {SAMPLE} asked for"
    if steps != sorted(steps) or steps[:1] != [0] or steps[-1:] != [size - 1]:
        return "the sample is out of order or lacks the first or last point"
    kept = {point.value for point in sample}
    if min(values) not in kept or max(values) not in kept:
        return "the sample lost the least or the greatest value"
    return None


def history_sampled(context: Context) -> Result:
    """``history_sampled(..., 1000)`` of one ``size``-point metric, from a store reopened cold
    (its rollup up to date, or not: ``params["rollup"]``)."""
    with store_url(context) as url:
        tracker, figures = _filled(url, context.size, context)
        start = time.perf_counter()
        sample = tracker.history_sampled(data.RESOURCE, data.KEY, SAMPLE)
        seconds = time.perf_counter() - start
        tracker.close()
    return Result(seconds, 0, 1, 1, figures, mismatch=_sample_problem(sample, context.size))


def history_whole(context: Context) -> Result:
    """``history()`` of the same metric, from a store reopened cold (the sample's yardstick)."""
    with store_url(context) as url:
        tracker, figures = _filled(url, context.size, context)
        start = time.perf_counter()
        read = tracker.history(data.RESOURCE, data.KEY)
        seconds = time.perf_counter() - start
        tracker.close()
    return Result(seconds, len(read), context.size, len(read), figures)


def _mlflow_run(context: Context) -> tuple[object, str]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=context.mlflow_uri)
    (run,) = client.search_runs(["0"])  # outside the timer; opens the store
    return client, run.info.run_id


def mlflow_sampled(context: Context) -> Result:
    """MLflow's own sampled read of the fixture's ``size``-point metric: 1,000 rows."""
    client, run_id = _mlflow_run(context)
    store = client._tracking_client.store  # type: ignore[attr-defined]  # what its server calls
    start = time.perf_counter()
    sample = store.get_metric_history_bulk_interval(
        [run_id], data.KEY, max_results=SAMPLE, start_step=None, end_step=None
    )
    seconds = time.perf_counter() - start
    values = [value for _, value in data.series(context.size)]
    kept = {metric.value for metric in sample}
    lost = [
        name for name, v in (("least", min(values)), ("greatest", max(values))) if v not in kept
    ]
    figures = {"extremes_lost": float(len(lost))}
    found = 1 if 0 < len(sample) <= SAMPLE else 0
    return Result(seconds, 0, 1, found, figures)


def mlflow_whole(context: Context) -> Result:
    """``MlflowClient.get_metric_history`` of the same fixture metric."""
    client, run_id = _mlflow_run(context)
    start = time.perf_counter()
    read = client.get_metric_history(run_id, data.KEY)  # type: ignore[attr-defined]
    seconds = time.perf_counter() - start
    return Result(seconds, len(read), context.size, len(read))


def chart_in_browser(context: Context) -> Result:
    """``trackplug ui`` on the store, chromium opening the page linked to the metric's
    chart: the time from the start of navigation to the chart drawn (``performance.now()``
    when uPlot has drawn it), the page's own clock. The browser is started outside it."""
    from playwright.sync_api import sync_playwright

    from trackplug.ui import Dashboard

    with store_url(context) as url:
        tracker, figures = _filled(url, context.size, context)
        dashboard = Dashboard(tracker)
        thread = threading.Thread(target=dashboard.run, daemon=True)
        thread.start()
        try:
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(dashboard.address + "static/app.css")  # warm: connection, not data
                fragment = f"#view=runs&runs={data.RESOURCE}&key={data.KEY}&x=step&log=0"
                page.goto(dashboard.address + fragment)
                page.wait_for_function("window.trackplug.drawnAt !== null", timeout=60_000)
                drawn_ms = page.evaluate("window.trackplug.drawnAt")
                points = page.evaluate("Number(document.body.dataset.chartPoints)")
                browser.close()
        finally:
            dashboard.stop()
            thread.join(timeout=10)
            tracker.close()
    seconds = float(drawn_ms) / 1000
    mismatch = None if 0 < points <= 2 * 1280 else f"the chart drew {points} points"
    figures["points_drawn"] = float(points)
    return Result(seconds, 0, 1, 1, figures, mismatch=mismatch)


def chromium_missing() -> str | None:
    """Why the browser case cannot run here, or None."""
    if not os.path.exists(CHROMIUM):
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    return None
