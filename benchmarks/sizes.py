"""How much each case logs or reads: the full run, the ``--quick`` smoke run, and the
scaling curves of ``--scale`` (the full sizes; only the scaling cases run)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    """Points (or resources) per case; ``repeats`` rounds of every case."""

    repeats: int
    per_point: int  # trackplug log_metric one call per point, and the physical limits
    # issue 19 states the PostgreSQL write at 200,000 points; at 50,000 the final flush and
    # the fixed costs (an unoverlapped last batch, a commit more) were ~40% of the case
    per_point_postgresql: int
    mlflow_per_point: int  # MlflowClient.log_metric and lolpop-style logging
    mlflow_backend_per_point: int  # trackplug's MLflow backend, one log_metric per point
    batch: int  # batch logging, as batch_keys keys x (batch // batch_keys) steps
    batch_keys: int
    history: int  # points of the one metric whose history is read
    resources: int  # resources ranked by best()
    rss: int  # points logged while the peak resident memory is watched
    first_point: int = 1  # a fresh process's first durable point
    run: int = 1_000  # points of a run started, with 10 params, and ended by a fresh process
    train_steps: int = 500  # training steps of each fit of a framework case (Lightning, Keras)
    trainer_steps: int = 60  # the same for transformers' Trainer (its steps cost ~20x more)
    fit_rounds: int = 3  # interleaved rounds of every logging variant inside a framework case
    chart: int = 1_000_000  # points of the metric sampled for a chart and plotted (trackplug ui)
    series: int = 100_000  # resources of one point each, and points of the one series beside
    series_memory: int = 400_000  # resources logged while the memory per series is measured
    reads: int = 1_000_000  # points of the history read whole, paged and raw (issue 19)
    reads_large: int = 5_000_000  # the same at the largest size (full run only)
    small_reads: int = 2_000  # calls of get_metric / latest / best timed per round
    chart_floor: int = 1_000  # the same page's floor: the chart of a metric this short
    # the scaling curves (``--scale`` only): one series of this many points, written and read
    scale_100k: int = 100_000
    scale_1m: int = 1_000_000
    scale_5m: int = 5_000_000


FULL = Sizes(
    repeats=3,
    per_point=200_000,
    per_point_postgresql=200_000,
    mlflow_per_point=2_000,
    mlflow_backend_per_point=20_000,
    batch=100_000,
    batch_keys=100,
    history=100_000,
    resources=1_000,
    rss=1_000_000,
)

QUICK = Sizes(
    repeats=2,
    per_point=20_000,
    per_point_postgresql=5_000,
    mlflow_per_point=100,
    mlflow_backend_per_point=1_000,
    batch=5_000,
    batch_keys=50,
    history=5_000,
    resources=50,
    rss=100_000,
    train_steps=20,
    trainer_steps=10,
    fit_rounds=1,
    chart=20_000,
    series=5_000,
    series_memory=20_000,
    reads=20_000,
    reads_large=20_000,
    small_reads=200,
)
