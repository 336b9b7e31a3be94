"""Every case, what it is compared with, and what it needs installed.

A case is one body (:mod:`benchmarks.bodies`) on one backend with one size. ``versus``
names the case a user would run instead (the MLflow side), ``limit`` the physical limit
beside it. A case whose backend is not installed (or PostgreSQL without a URL) is skipped
with its reason.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .fixtures import BEST, CHART, HISTORY, TEMPLATE

#: The environment variable that gives the PostgreSQL URL (the tests use it too).
POSTGRESQL_ENV = "TRACKPLUG_TEST_POSTGRESQL_URL"

Tool = Literal["trackplug", "mlflow", "limit", "peer"]


@dataclass(frozen=True)
class Case:
    name: str
    label: str  # what the table calls it
    tool: Tool
    body: str  # "module:function" run by the worker
    size: str  # the field of Sizes that says how many points or resources
    params: Mapping[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ()  # "mlflow", "trackplug_sql", "trackplug_mlflow", "postgresql"
    fixture: str | None = None  # an MLflow store of the run, copied in as mlflow.db
    versus: str | None = None
    limit: str | None = None
    slow: bool = False  # a scaling curve: runs only under --scale, never in a full or quick run


_TP = "benchmarks.bodies.trackplug:"
_ML = "benchmarks.bodies.mlflow_client:"
_LIMIT = "benchmarks.bodies.limits:"
_START = "benchmarks.bodies.startup:"
_PEER = "benchmarks.bodies.peers:"
_FW = "benchmarks.bodies.frameworks:"
_UI = "benchmarks.bodies.ui:"
_WRITES = "benchmarks.bodies.writes:"
_READS = "benchmarks.bodies.reads:"
_FLOOR = "benchmarks.bodies.floors:"
_SCALE = "benchmarks.bodies.scale:"
_SQLITE = {"backend": "sqlite"}
_PG = {"backend": "postgresql"}
_MEMORY = {"backend": "memory"}
_MLFLOW = {"backend": "mlflow"}
_SQL_NEEDS = ("trackplug_sql",)
_PG_NEEDS = ("trackplug_sql", "postgresql")
_MLB_NEEDS = ("trackplug_mlflow", "mlflow")
_UI_NEEDS = ("trackplug_sql", "starlette", "uvicorn", "playwright", "chromium")


def _scaling() -> tuple[Case, ...]:
    """The scaling curves: a log_metric loop, history() and iter_history() of one series
    of 100k, 1M and 5M points, on SQLite and PostgreSQL. Reads use the run's scale store."""
    stores = (("sqlite", "SQLite", _SQL_NEEDS), ("postgresql", "PostgreSQL", _PG_NEEDS))
    work: tuple[tuple[str, str, dict[str, str]], ...] = (
        ("log", "log_metric per point + flush", {}),
        ("history", "history()", {"store": "scale"}),
        ("iter-history", "iter_history(), paged", {"store": "scale"}),
    )
    tiers = (("100k", "scale_100k"), ("1m", "scale_1m"), ("5m", "scale_5m"))
    return tuple(
        Case(f"scale-{backend}-{op}-{tier}", f"{shown}, {what}", "trackplug",
             _SCALE + op.replace("-", "_"), size, {"backend": backend, **extra}, needs,
             slow=True)
        for backend, shown, needs in stores
        for op, what, extra in work
        for tier, size in tiers
    )  # fmt: skip


CASES: tuple[Case, ...] = (
    # one log_metric call per point, incl. the final flush
    Case("tp-sqlite-log-metric", "trackplug, SQLite", "trackplug", _TP + "log_metric_loop",
         "per_point", _SQLITE, _SQL_NEEDS, versus="mlflow-log-metric",
         limit="limit-sqlite-executemany"),
    Case("tp-postgresql-log-metric", "trackplug, PostgreSQL", "trackplug",
         _TP + "log_metric_loop", "per_point_postgresql", _PG, _PG_NEEDS,
         versus="mlflow-log-metric", limit="limit-postgresql-copy"),
    Case("tp-memory-log-metric", "trackplug, memory", "trackplug", _TP + "log_metric_loop",
         "per_point", _MEMORY, versus="mlflow-log-metric", limit="limit-list-append"),
    Case("tp-mlflow-log-metric", "trackplug, MLflow backend (SQLite store)", "trackplug",
         _TP + "log_metric_loop", "mlflow_backend_per_point", _MLFLOW, _MLB_NEEDS, TEMPLATE,
         versus="lolpop-log-metric"),
    Case("mlflow-log-metric", "MlflowClient.log_metric, SQLite store", "mlflow",
         _ML + "log_metric_loop", "mlflow_per_point", {}, ("mlflow",), TEMPLATE),
    Case("lolpop-log-metric", 'lolpop-style: MlflowClient.log_metric, key "<id>.<name>"',
         "mlflow", _ML + "log_metric_loop", "mlflow_per_point", {"lolpop": True}, ("mlflow",),
         TEMPLATE),
    Case("limit-sqlite-executemany", "limit: sqlite3 executemany, 1 transaction, indexed",
         "limit", _LIMIT + "sqlite_executemany", "per_point"),
    Case("limit-list-append", "limit: list.append of tuples", "limit", _LIMIT + "list_append",
         "per_point"),
    # caller latency
    Case("tp-sqlite-latency", "trackplug, SQLite", "trackplug", _TP + "log_metric_latency",
         "per_point", _SQLITE, _SQL_NEEDS, versus="mlflow-log-metric"),
    Case("tp-postgresql-latency", "trackplug, PostgreSQL", "trackplug",
         _TP + "log_metric_latency", "per_point_postgresql", _PG, _PG_NEEDS,
         versus="mlflow-log-metric"),
    Case("tp-memory-latency", "trackplug, memory", "trackplug", _TP + "log_metric_latency",
         "per_point", _MEMORY, versus="mlflow-log-metric"),
    # batch logging
    Case("tp-sqlite-batch-loop", "trackplug, SQLite, log_metric per point", "trackplug",
         _TP + "batch_loop", "batch", _SQLITE, _SQL_NEEDS, versus="mlflow-log-batch",
         limit="limit-sqlite-executemany"),
    Case("tp-sqlite-batch-dict", "trackplug, SQLite, log_metrics per step", "trackplug",
         _TP + "batch_dict", "batch", _SQLITE, _SQL_NEEDS, versus="mlflow-log-batch",
         limit="limit-sqlite-executemany"),
    Case("tp-mlflow-batch-loop", "trackplug, MLflow backend, log_metric per point",
         "trackplug", _TP + "batch_loop", "batch", _MLFLOW, _MLB_NEEDS, TEMPLATE,
         versus="mlflow-log-batch"),
    Case("trackio-batch-dict", "trackio log(dict) per step, local", "peer",
         _PEER + "trackio_log_dict", "batch", {}, ("trackio",)),
    Case("mlflow-log-batch", "MlflowClient.log_batch, 1,000 per call", "mlflow",
         _ML + "log_batch", "batch", {}, ("mlflow",), TEMPLATE),
    # reads
    Case("tp-sqlite-history", "trackplug history(), SQLite", "trackplug", _TP + "history",
         "history", _SQLITE, _SQL_NEEDS, versus="mlflow-history"),
    Case("tp-postgresql-history", "trackplug history(), PostgreSQL", "trackplug",
         _TP + "history", "history", _PG, _PG_NEEDS, versus="mlflow-history"),
    Case("mlflow-history", "MlflowClient.get_metric_history", "mlflow", _ML + "history",
         "history", {}, ("mlflow",), HISTORY),
    Case("tp-sqlite-best", "trackplug best(), SQLite", "trackplug", _TP + "best", "resources",
         _SQLITE, _SQL_NEEDS, versus="mlflow-best"),
    Case("tp-postgresql-best", "trackplug best(), PostgreSQL", "trackplug", _TP + "best",
         "resources", _PG, _PG_NEEDS, versus="mlflow-best"),
    Case("mlflow-best", "MlflowClient.search_runs(order_by=…)", "mlflow", _ML + "best",
         "resources", {}, ("mlflow",), BEST),
    # moving a run MLflow logged off MLflow, or to another experiment (peak memory too)
    Case("tp-migrate-mlflow-sqlite", "trackplug copy, MLflow (?runs=all) -> SQLite",
         "trackplug", _TP + "migrate_mlflow", "history", _SQLITE,
         (*_SQL_NEEDS, *_MLB_NEEDS), HISTORY, versus="mlflow-migrate"),
    Case("tp-migrate-mlflow-mlflow", "trackplug copy, MLflow (?runs=all) -> MLflow",
         "trackplug", _TP + "migrate_mlflow", "history", _MLFLOW,
         (*_SQL_NEEDS, *_MLB_NEEDS), HISTORY, versus="mlflow-migrate"),
    Case("mlflow-migrate", "MlflowClient.get_metric_history + log_batch", "mlflow",
         _ML + "migrate", "history", {}, ("mlflow",), HISTORY),
    # a fresh process to the first durable point
    Case("tp-sqlite-startup", "trackplug, new SQLite file", "trackplug",
         _START + "trackplug_first_point", "first_point", _SQLITE, _SQL_NEEDS,
         versus="mlflow-startup"),
    Case("mlflow-startup", "MLflow, new SQLite store (incl. migrations)", "mlflow",
         _START + "mlflow_first_point", "first_point", {}, ("mlflow",)),
    # a whole run as a fresh process: start_run, 10 params, 1,000 points, end
    Case("tp-sqlite-run", "trackplug, new SQLite file: start_run + log_metric",
         "trackplug", _START + "trackplug_run", "run", _SQLITE, _SQL_NEEDS,
         versus="mlflow-fluent-run"),
    Case("mlflow-fluent-run", "MLflow fluent API, new SQLite store: start_run + log_metric",
         "mlflow", _START + "mlflow_fluent_run", "run", {}, ("mlflow",)),
    # a framework's training step with trackplug's adapter, beside no logger and its CSV logger
    Case("fw-lightning", "Lightning: TrackplugLogger (SQLite) vs no logger, CSVLogger",
         "trackplug", _FW + "lightning_steps", "train_steps", _SQLITE,
         ("trackplug_sql", "lightning")),
    Case("fw-transformers", "transformers.Trainer: TrackplugCallback (SQLite) vs no callback",
         "trackplug", _FW + "transformers_steps", "trainer_steps", _SQLITE,
         ("trackplug_sql", "transformers", "accelerate")),
    Case("fw-keras", "Keras (torch): TrackplugCallback (SQLite) vs no callback, CSVLogger",
         "trackplug", _FW + "keras_steps", "train_steps", _SQLITE, ("trackplug_sql", "keras")),
    # issue 20: a long metric for a chart: sampled vs whole, trackplug vs MLflow, and plotted;
    # trackplug's sample from an up-to-date rollup (as a dashboard watching the run keeps
    # it), right after logging (the writer's close built it) and after a writer that left it
    # unbuilt (as one killed before closing: the first sampled read builds it)
    Case("tp-sqlite-sampled", "trackplug history_sampled(1,000), SQLite, rollup up to date",
         "trackplug", _UI + "history_sampled", "chart", {**_SQLITE, "rollup": "fresh"}, _SQL_NEEDS,
         versus="mlflow-sampled", limit="tp-sqlite-whole"),
    Case("tp-sqlite-sampled-first", "trackplug history_sampled(1,000), SQLite, first after "
         "logging (rollup built by the writer's close)", "trackplug", _UI + "history_sampled",
         "chart", _SQLITE, _SQL_NEEDS, versus="mlflow-sampled", limit="tp-sqlite-whole"),
    Case("tp-sqlite-sampled-unbuilt", "trackplug history_sampled(1,000), SQLite, first after "
         "a writer that left the rollup unbuilt (the read builds it)", "trackplug",
         _UI + "history_sampled", "chart", {**_SQLITE, "rollup": "unbuilt"}, _SQL_NEEDS,
         versus="mlflow-sampled", limit="tp-sqlite-whole"),
    Case("tp-sqlite-whole", "trackplug history(), SQLite", "trackplug", _UI + "history_whole",
         "chart", _SQLITE, _SQL_NEEDS, versus="mlflow-whole"),
    Case("mlflow-sampled", "MLflow get_metric_history_bulk_interval(1,000), SQLite store",
         "mlflow", _UI + "mlflow_sampled", "chart", {}, ("mlflow",), CHART),
    Case("mlflow-whole", "MlflowClient.get_metric_history, SQLite store", "mlflow",
         _UI + "mlflow_whole", "chart", {}, ("mlflow",), CHART),
    Case("ui-sqlite-chart", "trackplug ui in chromium: page opened to chart drawn, SQLite, "
         "rollup up to date", "trackplug", _UI + "chart_in_browser", "chart",
         {**_SQLITE, "rollup": "fresh"},
         (*_SQL_NEEDS, "starlette", "uvicorn", "playwright", "chromium")),
    Case("ui-sqlite-chart-first", "trackplug ui in chromium: page opened to chart drawn, "
         "SQLite, first after logging (rollup built by the writer's close)", "trackplug",
         _UI + "chart_in_browser", "chart", _SQLITE,
         (*_SQL_NEEDS, "starlette", "uvicorn", "playwright", "chromium")),
    # issue 19: writes
    Case("limit-postgresql-copy", "limit: psycopg COPY binary, 1 transaction, same table shape",
         "limit", _WRITES + "postgresql_copy_binary", "per_point_postgresql", _PG, _PG_NEEDS),
    Case("tp-sqlite-one-series", "trackplug, SQLite, N points into 1 series", "trackplug",
         _TP + "log_metric_loop", "series", _SQLITE, _SQL_NEEDS),
    Case("tp-sqlite-many-series", "trackplug, SQLite, 1 point into each of N resources",
         "trackplug", _WRITES + "many_series", "series", _SQLITE, _SQL_NEEDS,
         limit="tp-sqlite-one-series"),
    Case("tp-postgresql-one-series", "trackplug, PostgreSQL, N points into 1 series", "trackplug",
         _TP + "log_metric_loop", "series", _PG, _PG_NEEDS),
    Case("tp-postgresql-many-series", "trackplug, PostgreSQL, 1 point into each of N resources",
         "trackplug", _WRITES + "many_series", "series", _PG, _PG_NEEDS,
         limit="tp-postgresql-one-series"),
    Case("tp-sqlite-series-memory", "trackplug, SQLite, memory per series", "trackplug",
         _WRITES + "series_memory", "series_memory", _SQLITE, _SQL_NEEDS),
    # issue 19: reads. A history of `reads` (1M) and `reads_large` (5M) points: whole, paged
    # (iter_history), as columns (history_columns) and by the raw driver on the same store;
    # PostgreSQL's small reads beside the same statement on a plain psycopg connection
    # (seconds per call)
    *(
        case
        for size, tag in (("reads", "1m"), ("reads_large", "5m"))
        for backend, shown, params, needs, raw in (
            ("sqlite", "SQLite", _SQLITE, _SQL_NEEDS, "sqlite3 fetchall"),
            ("postgresql", "PostgreSQL", _PG, _PG_NEEDS, "psycopg binary fetchall"),
        )
        for case in (
            Case(f"tp-{backend}-history-{tag}", f"trackplug history(), {shown}", "trackplug",
                 _READS + "history", size, params, needs, limit=f"raw-{backend}-history-{tag}"),
            Case(f"tp-{backend}-iter-history-{tag}", f"trackplug iter_history(), {shown}",
                 "trackplug", _READS + "iter_history", size, params, needs,
                 limit=f"raw-{backend}-history-{tag}"),
            Case(f"tp-{backend}-history-columns-{tag}", f"trackplug history_columns(), {shown}",
                 "trackplug", _READS + "history_columns", size, params, needs,
                 limit=f"raw-{backend}-history-{tag}"),
            Case(f"raw-{backend}-history-{tag}", f"limit: {raw}, same rows", "limit",
                 _READS + "raw_history", size, params, needs),
        )
    ),
    # stop 28 (branch frame): the 1M-point store read whole by frame() and trackplug export
    Case("tp-sqlite-frame-1m", "trackplug frame(), SQLite", "trackplug", _READS + "frame",
         "reads", _SQLITE, (*_SQL_NEEDS, "pandas"), limit="raw-sqlite-history-1m"),
    *(
        Case(f"tp-sqlite-export-{fmt}-1m", f"trackplug export -f {fmt}, SQLite", "trackplug",
             _READS + "export", "reads", {**_SQLITE, "format": fmt}, needs,
             limit="raw-sqlite-history-1m")
        for fmt, needs in (("csv", _SQL_NEEDS), ("parquet", (*_SQL_NEEDS, "pyarrow")))
    ),
    *(
        case
        for read, tag in (("get_metric", "get-metric"), ("latest", "latest"), ("best", "best"))
        for case in (
            Case(f"tp-postgresql-{tag}-call", f"trackplug {read}(), PostgreSQL, per call",
                 "trackplug", _READS + "small_read", "small_reads", {**_PG, "read": read},
                 _PG_NEEDS, limit=f"raw-postgresql-{tag}-call"),
            Case(f"raw-postgresql-{tag}-call", "limit: psycopg, same query, per call", "limit",
                 _READS + "raw_small_read", "small_reads", {**_PG, "read": read}, _PG_NEEDS),
        )
    ),
    # peak memory
    Case("tp-sqlite-rss", "trackplug, SQLite", "trackplug", _TP + "peak_memory", "rss",
         _SQLITE, _SQL_NEEDS),
    # issue 19: scaling
    # floors of the absolute-time targets, measured in the same run (targets are ratios to them)
    Case("floor-python", "floor: python -c pass", "limit", _FLOOR + "python_start",
         "first_point"),
    Case("floor-sqlite3", 'floor: python -c "import sqlite3"', "limit",
         _FLOOR + "sqlite3_start", "first_point"),
    Case("floor-call-latency", "floor: a bare Python call appending a tuple", "limit",
         _FLOOR + "call_latency", "per_point"),
    Case("floor-sqlite-select", "floor: sqlite3 indexed SELECT of the series, fetchall",
         "limit", _FLOOR + "sqlite_select", "history"),
    Case("floor-sqlite-best", "floor: sqlite3 indexed top-1 query", "limit",
         _FLOOR + "sqlite_best", "resources"),
    Case("floor-ui-chart", "floor: the same page charting a short metric", "limit",
         _UI + "chart_in_browser", "chart_floor", _SQLITE, _UI_NEEDS),
    # trackio, where it can do the shape: one call per point (it has no history read); ~6,000
    # calls/s, so it logs as many points as the MLflow backend does
    Case("trackio-log-metric", "trackio log({loss: value}) per point, local", "peer",
         _PEER + "trackio_log_metric", "mlflow_backend_per_point", {}, ("trackio",)),
    # the scaling curves, --scale only
    *_scaling(),
)  # fmt: skip

BY_NAME: dict[str, Case] = {case.name: case for case in CASES}


def missing(need: str) -> str | None:
    """Why ``need`` is not met here, or None when it is."""
    if need == "postgresql":
        return None if os.environ.get(POSTGRESQL_ENV) else f"{POSTGRESQL_ENV} is not set"
    if need == "chromium":
        from .bodies.ui import chromium_missing

        return chromium_missing()
    if importlib.util.find_spec(need) is None:
        return f"{need} is not installed"
    return None


def skip_reason(case: Case) -> str | None:
    reasons = [reason for reason in map(missing, case.needs) if reason]
    return "; ".join(reasons) or None
