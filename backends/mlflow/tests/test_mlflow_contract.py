"""The shared contract suite (``trackplug-contract``) on an MLflow SQLite store, on a real
``mlflow server`` and on an MLflow store in PostgreSQL, each with the deviations the backend
declares (``CAPABILITIES``)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings
from trackplug_mlflow.backend import MLflowBackend

contract = pytest.importorskip(
    "trackplug_contract", reason="the contract suite: pip install -e ./contract_tests"
)
from trackplug_contract.profiles import Kind, active_profile  # noqa: E402


class MLflowPace:
    """Fewer examples in the fast profile: ``pace`` = (examples per property test, runs of
    the state machine, steps per run). Every MLflow call is a database
    transaction or an HTTP request (tens of ms), so the suite's own fast profile takes ten
    minutes here; ``--trackplug-profile thorough`` runs the suite's thorough profile."""

    pace: tuple[int, int, int] = (8, 3, 15)

    def hypothesis_settings(self, kind: Kind) -> settings:
        base: settings = super().hypothesis_settings(kind)  # type: ignore[misc]
        if active_profile() != "fast":
            return base
        if kind == "stateful":
            return settings(base, max_examples=self.pace[1], stateful_step_count=self.pace[2])
        return settings(base, max_examples=self.pace[0])


class TestMLflowSQLite(MLflowPace, contract.BackendContract):  # type: ignore[name-defined,misc]
    """A fresh copy of a migrated MLflow SQLite database per backend."""

    @pytest.fixture(autouse=True)
    def _stores(self, sqlite_stores: Any) -> None:  # conftest.SQLiteStores
        self.stores = sqlite_stores

    def make_backend(self) -> MLflowBackend:
        return MLflowBackend(self.stores.new_url())

    def reopen_backend(self, backend: MLflowBackend) -> MLflowBackend:
        return MLflowBackend(backend.target.url)  # no password in a SQLite URL


class TestMLflowServer(MLflowPace, contract.BackendContract):  # type: ignore[name-defined,misc]
    """A new experiment on one real ``mlflow server`` per backend. Every call is an HTTP
    request to a server doing the SQLite store's work, so fewer examples still: the same
    backend code runs with more examples in :class:`TestMLflowSQLite`; this class proves
    the HTTP path keeps the contract."""

    pace = (3, 1, 15)

    @pytest.fixture(autouse=True)
    def _server(self, mlflow_server: Any) -> None:  # conftest.Server; skips if none starts
        self.server = mlflow_server

    def make_backend(self) -> MLflowBackend:
        return MLflowBackend(self.server.new_url())

    def reopen_backend(self, backend: MLflowBackend) -> MLflowBackend:
        return MLflowBackend(backend.target.url)

    def make_backend_with_password(self, password: str) -> MLflowBackend:
        """The server has no authentication: it ignores the credentials, the URL keeps them."""
        address = self.server.address.replace("http://", f"http://user:{password}@")
        return MLflowBackend(f"mlflow+{address}?experiment=password-test")


class TestMLflowPostgreSQL(MLflowPace, contract.BackendContract):  # type: ignore[name-defined,misc]
    """A new experiment in one MLflow store in PostgreSQL per backend (skipped, with the
    reason, where ``TRACKPLUG_TEST_POSTGRESQL_URL`` is not set)."""

    @pytest.fixture(autouse=True)
    def _store(self, mlflow_postgresql: Any) -> None:  # conftest.DatabaseStore
        self.store = mlflow_postgresql

    def make_backend(self) -> MLflowBackend:
        return MLflowBackend(self.store.new_url())

    def reopen_backend(self, backend: MLflowBackend) -> MLflowBackend:
        return MLflowBackend(backend.target.url)  # no password in the test URL


class TestMLflowSQLiteEveryRun(MLflowPace, contract.BackendContract):  # type: ignore[name-defined,misc]
    """``?runs=all`` on one experiment: every run of it is a resource, found through the
    run index (:mod:`trackplug_mlflow.native`) instead of trackplug's tag; the runs this
    backend creates keep the contract."""

    pace = (4, 2, 10)

    @pytest.fixture(autouse=True)
    def _stores(self, sqlite_stores: Any) -> None:  # conftest.SQLiteStores
        self.stores = sqlite_stores

    def make_backend(self) -> MLflowBackend:
        return MLflowBackend(self.stores.new_url("?runs=all&experiment=every"))

    def reopen_backend(self, backend: MLflowBackend) -> MLflowBackend:
        return MLflowBackend(backend.target.url)
