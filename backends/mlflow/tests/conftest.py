"""Stores to test against: MLflow SQLite stores (copied from one migrated template), a
real ``mlflow server`` on 127.0.0.1, started once per session on a free port, and an MLflow
store in a new PostgreSQL database (where ``TRACKPLUG_TEST_POSTGRESQL_URL`` is set).

The first open of a fresh MLflow SQLite database runs its migrations (seconds), so the
session migrates one template database and every test copies the file. The server gets its
own copy as backend store; each backend on it uses a new experiment, so tests never see each
other's runs. ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` is lowered for the session (a test against
a dead server must fail in seconds, not after MLflow's minutes of retries).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from mlflow_server import free_port

SERVER_START_TIMEOUT = 180.0  # seconds; a loaded CI machine is slow to import mlflow
POSTGRESQL_ENV = "TRACKPLUG_TEST_POSTGRESQL_URL"


@pytest.fixture(scope="session", autouse=True)
def _quick_http_failures() -> Iterator[None]:
    """Few, short retries against servers in every test (MLflow reads these per request)."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES",)}
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "1"
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated, empty MLflow SQLite database to copy."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "template.db"
    MlflowClient(f"sqlite:///{path}").get_experiment("0")  # runs the migrations
    return path


class SQLiteStores:
    """Fresh MLflow SQLite stores: copies of the template, in one test's directory."""

    def __init__(self, template: Path, directory: Path) -> None:
        self._template = template
        self._dir = directory

    def new_path(self) -> Path:
        path = self._dir / f"{uuid.uuid4().hex}.db"
        shutil.copyfile(self._template, path)
        return path

    def new_url(self, query: str = "") -> str:
        return f"mlflow+sqlite:///{self.new_path()}{query}"


@pytest.fixture
def sqlite_stores(template_db: Path, tmp_path: Path) -> SQLiteStores:
    return SQLiteStores(template_db, tmp_path)


@pytest.fixture
def sqlite_url(sqlite_stores: SQLiteStores) -> str:
    return sqlite_stores.new_url()


class DatabaseStore:
    """An MLflow store in a PostgreSQL database of the session: new experiments in it."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def new_url(self) -> str:
        return f"mlflow+{self.uri}?experiment=test-{uuid.uuid4().hex}"


@pytest.fixture(scope="session")
def mlflow_postgresql() -> Iterator[DatabaseStore]:
    """An MLflow store in a new database of the PostgreSQL that
    ``TRACKPLUG_TEST_POSTGRESQL_URL`` names, migrated once, dropped at the end."""
    base = os.environ.get(POSTGRESQL_ENV)
    if not base:
        pytest.skip(f"{POSTGRESQL_ENV} is not set (no PostgreSQL for the MLflow store tests)")
    psycopg = pytest.importorskip("psycopg", reason="psycopg (PostgreSQL's driver) is missing")
    from mlflow.tracking import MlflowClient

    name = f"trackplug_mlflow_{uuid.uuid4().hex[:12]}"
    parts = urlsplit(base)
    uri = urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        MlflowClient(uri).get_experiment("0")  # runs the migrations
        yield DatabaseStore(uri)
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Server:
    """A running ``mlflow server``: its address, and trackplug URLs on new experiments."""

    def __init__(self, address: str, pid: int) -> None:
        self.address = address
        self.pid = pid  # leads the server's own process group (its workers too)

    def new_url(self, query: str = "") -> str:
        return f"mlflow+{self.address}?experiment=test-{uuid.uuid4().hex}{query}"

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """The server and its workers stopped (SIGSTOP) inside the block: connections are
        accepted by the kernel, and nothing answers."""
        os.killpg(self.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.killpg(self.pid, signal.SIGCONT)


def _wait_until_up(process: subprocess.Popen[bytes], address: str, log: Path) -> str | None:
    """None once the server answers /health; else why it did not start."""
    import urllib.request

    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"mlflow server exited with {process.returncode}: {log.read_text()[-2000:]}"
        try:
            with urllib.request.urlopen(f"{address}/health", timeout=2) as answer:
                if answer.status == 200:
                    return None
        except OSError:
            time.sleep(0.5)
    return f"mlflow server did not answer within {SERVER_START_TIMEOUT:.0f} s"


@pytest.fixture(scope="session")
def mlflow_server(template_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real ``mlflow server`` on a free port with a temporary SQLite store."""
    directory = tmp_path_factory.mktemp("mlflow-server")
    store = directory / "server.db"
    shutil.copyfile(template_db, store)
    port = free_port()
    address = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{store}",
        "--default-artifact-root", str(directory / "artifacts"),
        "--workers", "1",
    ]  # fmt: skip
    log = directory / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=directory, start_new_session=True
        )
    try:
        problem = _wait_until_up(process, address, log)
        if problem is not None:
            pytest.skip(f"no MLflow server for the server tests: {problem}")
        yield Server(address, process.pid)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server and its workers (its own process group). A graceful stop waits for
    the clients' keep-alive connections to close, so it gets a few seconds, then is killed:
    the server's store is a temporary file."""
    for sig, grace in ((signal.SIGTERM, 3), (signal.SIGKILL, 30)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
