"""Fixtures of the framework adapters' tests: each framework imported only by its own test
module (skipped with the reason where it is missing), and an ``mlflow server`` started on a
port chosen before it runs (a fan-out's dead secondary that comes up later).

Keras reads ``KERAS_BACKEND`` once, when it is first imported: the Keras tests use torch,
set here (only if nothing chose a backend already) before any of them imports Keras.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow_server import MlflowServer

os.environ.setdefault("KERAS_BACKEND", "torch")


@pytest.fixture
def late_mlflow_server(tmp_path: Path) -> Iterator[MlflowServer]:
    pytest.importorskip("trackplug_mlflow", reason="the MLflow backend is not installed")
    pytest.importorskip("mlflow.server", reason="the full mlflow (its server) is not installed")
    saved = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"  # the dead server fails at once
    server = MlflowServer(tmp_path / "mlflow")
    server.root.mkdir()
    try:
        yield server
    finally:
        server.kill()
        if saved is None:
            os.environ.pop("MLFLOW_HTTP_REQUEST_MAX_RETRIES", None)
        else:
            os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = saved
