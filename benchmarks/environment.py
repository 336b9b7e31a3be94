"""What the figures were measured on: the machine and the versions that matter."""

from __future__ import annotations

import os
import platform
import sqlite3
from importlib import metadata
from pathlib import Path

from .cases import POSTGRESQL_ENV

_DISTRIBUTIONS = ("trackplug", "trackplug-sql", "trackplug-mlflow", "mlflow", "sqlalchemy",
                  "psycopg")  # fmt: skip


def describe_machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    return f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}"


def versions() -> dict[str, str]:
    found = {"Python": platform.python_version(), "SQLite": sqlite3.sqlite_version}
    for name in _DISTRIBUTIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    server = postgresql_version()
    if server:
        found["PostgreSQL"] = server
    return found


def postgresql_version() -> str | None:
    url = os.environ.get(POSTGRESQL_ENV)
    if not url:
        return None
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=5) as connection:
            row = connection.execute("SHOW server_version").fetchone()
    except Exception as exc:  # the PostgreSQL cases will fail with the full reason
        return f"unreachable ({type(exc).__name__})"
    return str(row[0]).split()[0] if row else None
