"""A fresh process's time to the first durable point on a new store.

The body starts a child interpreter and times it from outside, start to exit: interpreter
start, import, opening a new store (for MLflow: creating its schema by its migrations), one
point, close. The child reports its own split (import, the rest) on stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from ..worker import Context, Result
from .stores import mlflow_metric_rows

_TRACKPLUG_CHILD = """
import json, sys, time
start = time.perf_counter()
import trackplug
imported = time.perf_counter()
tracker = trackplug.connect(sys.argv[1])
tracker.log_metric("model-1", "loss", 0.5)
tracker.close()
print(json.dumps({"import_s": imported - start, "store_s": time.perf_counter() - imported}))
"""

_MLFLOW_CHILD = """
import json, sys, time
start = time.perf_counter()
from mlflow import MlflowClient
imported = time.perf_counter()
client = MlflowClient(tracking_uri=sys.argv[1])
run = client.create_run("0", run_name="model-1")
client.log_metric(run.info.run_id, "loss", 0.5)
print(json.dumps({"import_s": imported - start, "store_s": time.perf_counter() - imported}))
"""


#: A run as a script makes one: start it with 10 params, log ``argv[2]`` points, end it.
_TRACKPLUG_RUN = """
import json, sys, time
start = time.perf_counter()
import trackplug
imported = time.perf_counter()
params = {f"param_{i}": i / 10 for i in range(10)}
with trackplug.connect(sys.argv[1]) as tracker:
    with tracker.start_run("sgd", params=params) as run:
        for step in range(int(sys.argv[2])):
            run.log_metric("loss", 1 / (step + 1))
print(json.dumps({"import_s": imported - start, "store_s": time.perf_counter() - imported}))
"""

_MLFLOW_RUN = """
import json, sys, time
start = time.perf_counter()
import mlflow
imported = time.perf_counter()
mlflow.set_tracking_uri(sys.argv[1])
params = {f"param_{i}": i / 10 for i in range(10)}
with mlflow.start_run(run_name="sgd"):
    mlflow.log_params(params)
    for step in range(int(sys.argv[2])):
        mlflow.log_metric("loss", 1 / (step + 1), step=step)
print(json.dumps({"import_s": imported - start, "store_s": time.perf_counter() - imported}))
"""


def _time_child(script: str, *args: str) -> tuple[float, dict[str, float]]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=False,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"the child failed:\n{done.stderr}")
    split: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return seconds, split


def trackplug_first_point(context: Context) -> Result:
    """``import trackplug``, ``connect`` to a new store, one point, ``close``."""
    url = context.trackplug_url("fresh")
    seconds, split = _time_child(_TRACKPLUG_CHILD, url)
    import trackplug

    with trackplug.connect(url) as tracker:
        found = len(tracker.history("model-1", "loss"))
    return Result(seconds, 0, 1, found, split)


def mlflow_first_point(context: Context) -> Result:
    """``from mlflow import MlflowClient``, a new SQLite store (its migrations), one run,
    one ``log_metric``."""
    fresh = context.directory / "fresh-mlflow.db"
    seconds, split = _time_child(_MLFLOW_CHILD, f"sqlite:///{fresh}")
    return Result(seconds, 0, 1, mlflow_metric_rows(fresh), split)


def trackplug_run(context: Context) -> Result:
    """A fresh process: ``start_run`` with 10 params, ``size`` points without ``step=``,
    the run's end, ``close``, on a new SQLite file."""
    url = context.trackplug_url("run")
    seconds, split = _time_child(_TRACKPLUG_RUN, url, str(context.size))
    import trackplug

    with trackplug.connect(url) as tracker:
        (run,) = tracker.runs("sgd")
        found = len(tracker.history(run.id, "loss"))
        mismatch = None if (run.status, len(run.params)) == ("finished", 10) else str(run)
    return Result(seconds, context.size, context.size, found, split, mismatch)


def mlflow_fluent_run(context: Context) -> Result:
    """The same with MLflow's fluent API on a new SQLite store: ``mlflow.start_run``,
    ``log_params``, one ``log_metric`` per point."""
    fresh = context.directory / "run-mlflow.db"
    seconds, split = _time_child(_MLFLOW_RUN, f"sqlite:///{fresh}", str(context.size))
    return Result(seconds, context.size, context.size, mlflow_metric_rows(fresh), split)
