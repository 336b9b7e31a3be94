"""Every adapter on a fan-out whose MLflow secondary is down: the primary (SQLite) gets each
run as it happens, the secondary's writes wait in the outbox, and ``trackplug sync`` — once
a real ``mlflow server`` has come up on that address — completes them: the same runs, status,
params and every point."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import trackplug

FRAMEWORKS = ("lightning", "transformers", "keras")


def train_lightning(target: list[str], outbox: Path, tmp_path: Path) -> None:
    from test_fw_lightning import HPARAMS, Regression, fit

    from trackplug.integrations.lightning import TrackplugLogger

    logger = TrackplugLogger(target, name="lightning", outbox=outbox)
    fit(Regression(**HPARAMS), [logger], tmp_path, epochs=1)


def train_transformers(target: list[str], outbox: Path, tmp_path: Path) -> None:
    from test_fw_transformers import trainer

    from trackplug.integrations.transformers import TrackplugCallback

    trainer(tmp_path, [TrackplugCallback(target, name="transformers", outbox=outbox)]).train()


def train_keras(target: list[str], outbox: Path, tmp_path: Path) -> None:
    from test_fw_keras import fit, mlp

    from trackplug.integrations.keras import TrackplugCallback

    fit(mlp(), [TrackplugCallback(target, name="keras", outbox=outbox)])


TRAIN: dict[str, Callable[[list[str], Path, Path], None]] = {
    "lightning": train_lightning,
    "transformers": train_transformers,
    "keras": train_keras,
}


def test_a_dead_mlflow_secondary_spools_and_trackplug_sync_completes_every_run(
    tmp_path: Path, late_mlflow_server: Any
) -> None:
    installed = [name for name in FRAMEWORKS if importlib.util.find_spec(name) is not None]
    if importlib.util.find_spec("torch") is None or not installed:
        pytest.skip("no framework (with torch) is installed")
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    mlflow_url = f"mlflow+{late_mlflow_server.uri}?experiment=frameworks"
    outbox = tmp_path / "outbox.db"
    for name in installed:
        with pytest.warns(trackplug.BackendWarning):  # the secondary failed: spooled
            TRAIN[name]([store, mlflow_url], outbox, tmp_path)
    assert outbox.exists()

    late_mlflow_server.start_or_fail()
    synced = subprocess.run(
        [sys.executable, "-m", "trackplug.cli", "sync", "--outbox", str(outbox)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert synced.returncode == 0, synced.stderr
    with trackplug.connect(store) as primary, trackplug.connect(mlflow_url) as secondary:
        for name in installed:
            (run,) = primary.runs(name)
            (copied,) = secondary.runs(name)
            assert (copied.id, copied.status) == (run.id, "finished")
            assert copied.params == {k: str(v) for k, v in run.params.items()}  # MLflow: text
            assert set(copied.metrics) == set(run.metrics)
            for key in run.metrics:
                assert [p[:3] for p in secondary.history(run.id, key)] == [
                    p[:3] for p in primary.history(run.id, key)
                ]
