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


def _time_child(script: str, url: str) -> tuple[float, dict[str, float]]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script, url],
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
