"""What each kind of MLflow store keeps, as trackplug capabilities; no mlflow import here,
so ``trackplug backends`` can show them without MLflow's 2.5 s import."""

from __future__ import annotations

from trackplug import Capabilities

from .urls import Kind

__all__ = ["CAPABILITIES_BY_KIND"]

#: What a database store keeps (MLflow 3.17, measured in tests/test_mlflow_backend.py):
#: ±inf -> ±1.7976931348623157e308; NaN kept; an exact duplicate stored once (the metric
#: table's primary key); every signed 64-bit step and timestamp kept. The sign of zero
#: differs by database: SQLite drops it, PostgreSQL keeps it but folds -0.0 and 0.0 at one
#: step and timestamp into whichever came first. So -0.0 is sent as 0.0 to every database
#: store and server (whatever database a server stands on): one behaviour, as declared.
#: No ``max_batch_size``: ``RunStore.log`` splits batches to MLflow's limit itself.
#: Params are MLflow params: text, ``str(value)``, as every kind of store keeps them.
_DATABASE = Capabilities(
    persistent=True,
    params="string",
    infinity="clamp",
    nan="keep",
    negative_zero="positive",
    duplicates="collapse",
)
#: MLflow's legacy file store writes ``repr(value)`` lines: ±inf and -0.0 survive, and
#: every copy of a point is appended.
_FILE = Capabilities(
    persistent=True,
    params="string",
    infinity="keep",
    nan="keep",
    negative_zero="keep",
    duplicates="keep",
)
CAPABILITIES_BY_KIND: dict[Kind, Capabilities] = {
    "server": _DATABASE,  # MLflow 3 servers stand on a database store
    "database": _DATABASE,
    "file": _FILE,
}
