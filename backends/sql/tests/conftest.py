"""Stores to test against: SQLite files, SQLite in memory, and a real PostgreSQL.

PostgreSQL tests read ``TRACKPLUG_TEST_POSTGRESQL_URL`` (e.g.
``postgresql://postgres@127.0.0.1:5432/test``) and skip when it is unset. Each test gets its
own schema (``search_path`` through the URL's ``options``), dropped afterwards, so parallel
runs never see each other's tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

PG_ENV = "TRACKPLUG_TEST_POSTGRESQL_URL"


def postgresql_base_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(
            f"PostgreSQL tests need {PG_ENV}, e.g. postgresql://postgres@127.0.0.1:5432/test"
        )
    return url


def with_search_path(url: str, schema: str, settings: str = "") -> str:
    """``url`` whose connections use ``schema`` first (libpq's ``options`` parameter), and
    any other server ``settings`` (e.g. ``-cstatement_timeout=100``)."""
    separator = "&" if "?" in url else "?"
    options = f"-csearch_path={schema} {settings}".strip()
    return f"{url}{separator}options={quote(options, safe='')}"


class PostgreSQLSchemas:
    """Creates uniquely named schemas and drops every one of them at the end."""

    def __init__(self, base_url: str) -> None:
        import psycopg

        self._base = base_url
        self._admin = psycopg.connect(base_url, autocommit=True)
        self._created: list[str] = []

    def new_schema(self) -> str:
        """The name of a new, empty schema (see :func:`with_search_path`)."""
        schema = f"trackplug_test_{uuid.uuid4().hex[:12]}"
        self._admin.execute(f"CREATE SCHEMA {schema}")  # a generated identifier
        self._created.append(schema)
        return schema

    def url(self, schema: str, settings: str = "") -> str:
        """A URL on ``schema``; ``settings`` as in :func:`with_search_path`."""
        return with_search_path(self._base, schema, settings)

    def new_url(self) -> str:
        return self.url(self.new_schema())

    def drop_all(self) -> None:
        for schema in self._created:
            self._admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        self._admin.close()


def _schemas() -> Iterator[PostgreSQLSchemas]:
    schemas = PostgreSQLSchemas(postgresql_base_url())
    try:
        yield schemas
    finally:
        schemas.drop_all()


@pytest.fixture
def pg_schemas() -> Iterator[PostgreSQLSchemas]:
    yield from _schemas()


@pytest.fixture(scope="module")
def module_pg_schemas() -> Iterator[PostgreSQLSchemas]:
    """The same for a store a whole test module shares."""
    yield from _schemas()


@pytest.fixture
def pg_url(pg_schemas: PostgreSQLSchemas) -> str:
    return pg_schemas.new_url()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


@pytest.fixture(params=["sqlite-file", "sqlite-memory", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every kind of store this distribution serves."""
    if request.param == "sqlite-file":
        return f"sqlite:///{tmp_path / 'runs.db'}"
    if request.param == "sqlite-memory":
        return "sqlite://"
    schemas: PostgreSQLSchemas = request.getfixturevalue("pg_schemas")
    return schemas.new_url()


@pytest.fixture(params=["sqlite-file", "postgresql"])
def persistent_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Stores whose data a second connection sees."""
    if request.param == "sqlite-file":
        return f"sqlite:///{tmp_path / 'runs.db'}"
    schemas: PostgreSQLSchemas = request.getfixturevalue("pg_schemas")
    return schemas.new_url()
