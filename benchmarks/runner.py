"""Runs the cases: each in a fresh interpreter and a fresh temporary directory, rounds
interleaved (round 1 of every case, then round 2, ...), every record checked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from . import scale
from .bodies.stores import postgresql_schema
from .cases import POSTGRESQL_ENV, Case
from .fixtures import BEST, CHART, HISTORY
from .sizes import Sizes
from .worker import RECORD_PREFIX

#: The repository root: workers import ``benchmarks`` from here, whatever their directory.
ROOT = Path(__file__).resolve().parent.parent
#: No case may run longer than this (seconds).
CASE_TIMEOUT = 1800

Record = dict[str, Any]


class RunFailed(Exception):
    """A case failed: a wrong count read back, an error, or no record at all."""


def worker_env(directory: Path) -> dict[str, str]:
    """The environment of a worker: the repo importable, every store inside ``directory``."""
    env = dict(os.environ)
    for name in ("MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID", "TRACKPLUG_URL"):
        env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{directory / 'mlflow.db'}"
    env["TRACKPLUG_OUTBOX"] = str(directory / "outbox.db")
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["DO_NOT_TRACK"] = "true"
    return env


def _python(module: str, spec: dict[str, Any], directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, json.dumps(spec)],
        cwd=directory,
        env=worker_env(directory),
        capture_output=True,
        text=True,
        timeout=CASE_TIMEOUT,
        check=False,
    )


def build_fixtures(cases: Sequence[Case], sizes: Sizes, directory: Path) -> bool:
    """The MLflow stores the cases copy (see :mod:`benchmarks.fixtures`), if any needs one;
    False when none does."""
    wanted = {case.fixture for case in cases if case.fixture}
    if not wanted:
        return False
    built = (("history", HISTORY), ("best", BEST), ("chart", CHART))
    build = [name for name, file in built if file in wanted]
    spec = {
        "directory": str(directory),
        "history": sizes.history,
        "resources": sizes.resources,
        "chart": sizes.chart,
        "build": build,
    }
    done = _python("benchmarks.fixtures", spec, directory)
    if done.returncode != 0:
        raise RunFailed(f"building the MLflow fixtures failed:\n{done.stderr[-4000:]}")
    return True


@contextmanager
def scale_stores(cases: Sequence[Case], sizes: Sizes, directory: Path) -> Iterator[bool]:
    """The stores the scaling curves read (:mod:`benchmarks.scale`), if any case reads one,
    built in ``directory``; False when none does. A PostgreSQL one is dropped at the end."""
    series = scale.wanted(cases, sizes)
    if not series:
        yield False
        return
    with ExitStack() as stack:
        urls = {}
        for backend in series:
            if backend == "postgresql":
                schema = postgresql_schema(
                    os.environ[POSTGRESQL_ENV], f"trackplug_scale_{os.getpid()}"
                )
                # a 5,000,000-point history() on a loaded machine outlasts the default 30 s
                urls[backend] = f"{stack.enter_context(schema)}&timeout={CASE_TIMEOUT}"
            else:
                urls[backend] = f"sqlite:///{directory / 'scale.db'}"
        done = _python("benchmarks.scale", {"urls": urls, "series": series}, directory)
        if done.returncode != 0:
            raise RunFailed(f"building the scale stores failed:\n{done.stderr[-4000:]}")
        (directory / scale.STORES).write_text(json.dumps(urls))
        yield True


def case_spec(
    case: Case, round_: int, sizes: Sizes, directory: Path, fixtures: Path | None = None
) -> dict[str, Any]:
    params = {**case.params, "keys": sizes.batch_keys, "fit_rounds": sizes.fit_rounds}
    if fixtures is not None:
        params["fixtures"] = str(fixtures)  # the run's prebuilt stores (MLflow's, scale's)
    if os.environ.get(POSTGRESQL_ENV):
        params["postgresql_url"] = os.environ[POSTGRESQL_ENV]
    return {
        "case": case.name,
        "round": round_,
        "body": case.body,
        "size": getattr(sizes, case.size),
        "directory": str(directory),
        "params": params,
    }


def parse_record(stdout: str) -> Record | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(RECORD_PREFIX):
            found: Record = json.loads(line[len(RECORD_PREFIX) :])
            return found
    return None


def run_case(case: Case, round_: int, sizes: Sizes, fixtures: Path) -> Record:
    """One case, once, in a fresh interpreter and directory; raises RunFailed on a problem."""
    with tempfile.TemporaryDirectory(prefix=f"trackplug-bench-{case.name}-") as name:
        directory = Path(name)
        if case.fixture:
            shutil.copyfile(fixtures / case.fixture, directory / "mlflow.db")
        started = time.perf_counter()
        spec = case_spec(case, round_, sizes, directory, fixtures)
        done = _python("benchmarks.worker", spec, directory)
        wall = time.perf_counter() - started
    record = parse_record(done.stdout)
    where = f"case {case.name}, round {round_}"
    if record is None:
        raise RunFailed(f"{where}: no record (exit {done.returncode})\n{done.stderr[-4000:]}")
    if record["problem"]:
        raise RunFailed(f"{where}: {record['problem']}\n{done.stderr[-2000:]}")
    record["process_s"] = wall
    return record


def run_rounds(
    cases: Sequence[Case],
    sizes: Sizes,
    fixtures: Path,
    sink: Callable[[Record], None],
) -> list[Record]:
    """Round 1 of every case, then round 2, ...; each record goes to ``sink`` as it comes."""
    records = []
    for round_ in range(1, sizes.repeats + 1):
        for case in cases:
            record = run_case(case, round_, sizes, fixtures)
            sink(record)
            records.append(record)
    return records
