"""The shared contract suite (``trackplug-contract``) on every store this distribution serves."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from trackplug_sql import SQLBackend, sqlite

contract = pytest.importorskip(
    "trackplug_contract", reason="the contract suite: pip install -e ./contract_tests"
)


class TestSQLiteFile(contract.BackendContract):  # type: ignore[name-defined,misc]
    """A new SQLite file per backend; reopening opens the same file again."""

    @pytest.fixture(autouse=True)
    def _directory(self, tmp_path: Path) -> None:
        self._dir = tmp_path

    def make_backend(self) -> SQLBackend:
        return SQLBackend(f"sqlite:///{self._dir / f'{uuid.uuid4().hex}.db'}")

    def reopen_backend(self, backend: SQLBackend) -> SQLBackend:
        backend.close()
        return SQLBackend(backend.url)


class TestSQLiteMemory(contract.BackendContract):  # type: ignore[name-defined,misc]
    """``sqlite://``: a new in-memory database per backend, declared not persistent."""

    def make_backend(self) -> SQLBackend:
        return SQLBackend("sqlite://")


class TestPostgreSQL(contract.BackendContract):  # type: ignore[name-defined,misc]
    """A new PostgreSQL schema per backend, dropped at the end of the test."""

    @pytest.fixture(autouse=True)
    def _schemas(self, pg_schemas: Any) -> None:  # conftest.PostgreSQLSchemas; skips if unset
        self._pg = pg_schemas
        self._urls: dict[int, str] = {}

    def make_backend(self) -> SQLBackend:
        url = self._pg.new_url()
        backend = SQLBackend(url)
        self._urls[id(backend)] = url  # backend.url is redacted; trust auth has no password
        return backend

    def make_backend_with_password(self, password: str) -> SQLBackend:
        """Trust authentication accepts any password, so the store still opens."""
        parts = urlsplit(self._pg.new_url())
        host = parts.netloc.rpartition("@")[2]
        user = parts.username or "postgres"
        netloc = f"{user}:{quote(password, safe='')}@{host}"
        return SQLBackend(urlunsplit(parts._replace(netloc=netloc)))

    def reopen_backend(self, backend: SQLBackend) -> SQLBackend:
        url = self._urls[id(backend)]
        backend.close()
        reopened = SQLBackend(url)
        self._urls[id(reopened)] = url
        return reopened


class TestSQLiteFileReadAhead(TestSQLiteFile):
    """The same, a whole history read 3 points a page (each next page read ahead in a
    thread, ``trackplug_sql.sqlite._read_ahead``): the contract's histories are short, and
    the store's page is 131,072 points."""

    @pytest.fixture(autouse=True)
    def _pages_of_three(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(sqlite, "READ_AHEAD_PAGE", 3)
