"""MLflow stores built once per run and copied into each case's directory.

A fresh MLflow SQLite store runs its migrations (seconds) on first open, and filling one
with 100,000 points or 1,000 runs takes MLflow tens of seconds; none of that is what the
cases time. So one child process builds, per run:

* ``template.db``: a migrated, empty store (MLflow's write cases log into a copy);
* ``history.db``: one run with one metric of ``history`` points (``log_batch``);
* ``best.db``: ``resources`` runs, each with an f1 and a loss.

``python -m benchmarks.fixtures '<json>'`` with ``directory``, ``history``, ``resources``
and ``build`` (which of "history", "best" to build besides the template).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from . import data

if TYPE_CHECKING:
    from mlflow import MlflowClient

TEMPLATE, HISTORY, BEST, CHART = "template.db", "history.db", "best.db", "chart.db"
_BATCH_LIMIT = 1000


def _client(database: Path) -> MlflowClient:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{database}")


def build_template(directory: Path) -> Path:
    template = directory / TEMPLATE
    _client(template).search_experiments()  # creates the schema: every migration
    return template


def build_history(template: Path, points: int, name: str = HISTORY) -> None:
    from mlflow.entities import Metric

    target = template.with_name(name)
    shutil.copyfile(template, target)
    client = _client(target)
    run_id = client.create_run("0", run_name=data.RESOURCE).info.run_id
    now = int(time.time() * 1000)
    metrics = [Metric(data.KEY, value, now, step) for step, value in data.series(points)]
    for start in range(0, len(metrics), _BATCH_LIMIT):
        client.log_batch(run_id, metrics=metrics[start : start + _BATCH_LIMIT])


def build_best(template: Path, resources: int) -> None:
    from mlflow.entities import Metric

    target = template.with_name(BEST)
    shutil.copyfile(template, target)
    client = _client(target)
    now = int(time.time() * 1000)
    for resource, f1, loss in data.ranked(resources):
        run_id = client.create_run("0", run_name=resource).info.run_id
        metrics = [Metric(data.RANK_KEY, f1, now, 0), Metric(data.KEY, loss, now, 0)]
        client.log_batch(run_id, metrics=metrics)


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    template = build_template(Path(spec["directory"]))
    if "history" in spec["build"]:
        build_history(template, int(spec["history"]))
    if "best" in spec["build"]:
        build_best(template, int(spec["resources"]))
    if "chart" in spec["build"]:
        build_history(template, int(spec["chart"]), CHART)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
