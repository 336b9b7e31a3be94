"""Fresh stores for a case, and counting what a store holds."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..worker import Context


@contextmanager
def store_url(context: Context) -> Iterator[str]:
    """The URL of an empty trackplug store for this case; a PostgreSQL store is a schema of
    its own, dropped at the end."""
    if context.backend != "postgresql":
        yield context.trackplug_url()
        return
    with postgresql_schema(context.trackplug_url(), f"trackplug_bench_{os.getpid()}") as url:
        yield url


@contextmanager
def postgresql_schema(base: str, schema: str) -> Iterator[str]:
    """A new, empty schema in the database of ``base``: the URL that works in it; the
    schema is dropped at the end."""
    import psycopg

    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            separator = "&" if "?" in base else "?"
            yield f"{base}{separator}options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def mlflow_metric_rows(database: Path) -> int:
    """Every metric point in an MLflow SQLite store, counted in its own table."""
    with sqlite3.connect(database) as connection:
        (count,) = connection.execute("SELECT count(*) FROM metrics").fetchone()
    return int(count)
