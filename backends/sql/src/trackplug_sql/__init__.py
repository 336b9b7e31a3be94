"""trackplug-sql: the SQL backend of trackplug, for SQLite and PostgreSQL.

A trackplug plugin like any third-party one: the entry point ``sql`` (group ``trackplug``)
names this module, whose hook registers the ``sqlite`` and ``postgresql`` schemes (and
``postgres``, which libpq accepts too)::

    import trackplug

    with trackplug.connect("sqlite:///runs.db") as t:      # or sqlite://, postgresql://…
        t.log_metric("model-1", "loss", 0.5, step=3)

Importing this module is cheap: the SQLite store imports ``sqlite3``, and the PostgreSQL
store SQLAlchemy and psycopg, only when a URL of theirs is opened.
"""

from __future__ import annotations

from trackplug.plugin import Register, hookimpl

from .backend import POSTGRESQL_SCHEMES, SQLBackend, SQLFactory

__all__ = ["SQLBackend", "SQLFactory", "trackplug_register_backends"]


@hookimpl
def trackplug_register_backends(register: Register) -> None:
    factory = SQLFactory()
    register("sqlite", factory)
    for scheme in POSTGRESQL_SCHEMES:  # also postgresql+psycopg://, by the registry
        register(scheme, factory)
