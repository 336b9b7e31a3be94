"""How values, times, tables and machine-readable output look, in one place.

Tables are for people (values to 6 significant digits); ``--json`` and ``--csv`` are for
scripts and keep every value exactly. JSON has no NaN or infinity, so those values are
written as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (``float()`` reads
them back); CSV writes Python's ``nan``, ``inf`` and ``-inf``.
"""

from __future__ import annotations

import difflib
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, NamedTuple
from urllib.parse import unquote, urlsplit

import click
from rich.console import Console
from rich.table import Table

from ..urls import redact_url, scheme_of

__all__ = [
    "MLFLOW_TRACKING_URI",
    "LocalStore",
    "echo_json",
    "fmt_time",
    "fmt_value",
    "json_value",
    "leaderboard_table",
    "local_store",
    "location",
    "say",
    "show_table",
    "stdout",
    "suggest",
]


def stdout() -> Console:
    """A console on the current stdout (click's runner swaps it) that prints text as it
    is: resource ids may contain ``[…]`` or ``:name:``, which are not markup or emoji."""
    return Console(highlight=False, markup=False, emoji=False)


def fmt_value(value: float) -> str:
    """A value for people: 6 significant digits; ``nan``, ``inf``, ``-inf`` as such."""
    return format(value, ".6g")


def fmt_time(timestamp_ms: int) -> str:
    """Milliseconds since the epoch as ISO 8601 UTC, or the number if out of range."""
    try:
        moment = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    except (OverflowError, ValueError, OSError):
        return str(timestamp_ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_value(value: float) -> float | str:
    """A value JSON can hold: finite floats as numbers, the others as strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def echo_json(data: object) -> None:
    """Strict JSON (no NaN literals) on stdout, never wrapped."""
    click.echo(json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False))


def say(console: Console, text: str) -> None:
    """One plain line: never wrapped, never read as rich markup."""
    console.print(text, soft_wrap=True, markup=False, emoji=False)


def show_table(heading: str, table: Table) -> None:
    """A heading line (unwrapped, however long the URL in it) over a table, on stdout."""
    console = stdout()
    say(console, heading)
    console.print(table)


def leaderboard_table(
    metric: str,
    ranking: Sequence[tuple[str, float]],
    details: Mapping[str, Mapping[str, float]] | None = None,
    extra: Sequence[str] = (),
) -> Table:
    """Rank, resource and value of ``metric``, then the ``extra`` metrics of each resource
    taken from ``details`` (``{resource: {key: value}}``; blank where missing)."""
    table = Table()
    table.add_column("rank", justify="right")
    table.add_column("resource")
    for name in (metric, *extra):
        table.add_column(name, justify="right")
    for rank, (resource, value) in enumerate(ranking, start=1):
        known = (details or {}).get(resource, {})
        more = [fmt_value(known[name]) if name in known else "" for name in extra]
        table.add_row(str(rank), resource, fmt_value(value), *more)
    return table


#: The environment variable that names the store of ``mlflow://`` (MLflow reads it itself).
MLFLOW_TRACKING_URI = "MLFLOW_TRACKING_URI"


class LocalStore(NamedTuple):
    """The file or folder on this machine that a URL keeps its data in."""

    kind: Literal["file", "folder"]
    path: Path
    named_by: str = ""  # where the path comes from, when not from the URL itself


def local_store(url: str) -> LocalStore | None:
    """Where on this machine ``url`` keeps its data: the database file of SQLite URLs
    (``sqlite:///runs.db``, ``mlflow+sqlite:///mlflow.db``…) or the folder of MLflow's file
    store (``mlflow+file:///path``); for ``mlflow://``, the store ``$MLFLOW_TRACKING_URI``
    names. None for servers, in-memory stores and unknown schemes.

    The one rule for "does this store exist": reading commands check it before a backend
    opens (and creates) the store."""
    if scheme_of(url) != "mlflow":
        return _local_store(url)
    # Unset, it is MLflow's default (./mlruns or ./mlflow.db: MLflow's own choice); a bare
    # word may be a path or "databricks": both are left to MLflow.
    local = _local_store(os.environ.get(MLFLOW_TRACKING_URI, ""))
    return local._replace(named_by=f", named by ${MLFLOW_TRACKING_URI}") if local else None


def _local_store(url: str) -> LocalStore | None:
    parts = urlsplit(url)
    kinds = parts.scheme.lower().split("+")
    if "sqlite" in kinds:  # SQLAlchemy's spelling: sqlite:///relative, sqlite:////absolute
        path = unquote(parts.path[1:])
        return LocalStore("file", Path(path)) if path not in ("", ":memory:") else None
    if kinds[-1] == "file" and parts.path:  # a file URI: file:///absolute
        return LocalStore("folder", Path(unquote(parts.path)))
    return None


def location(url: str) -> str:
    """Where a URL keeps its data, in words, password redacted."""
    safe = redact_url(url)
    if scheme_of(url) == "memory":
        return f"{safe} (in memory: gone when this command ends; use sqlite:///runs.db to keep it)"
    local = local_store(url)
    return f"{safe} ({local.kind} {local.path.resolve()}{local.named_by})" if local else safe


def suggest(name: str, known: Iterable[str], what: str) -> str:
    """``did you mean 'x'?`` when a close name exists, else a short list of ``known``."""
    names = sorted(set(known))
    if not names:
        return f"there are no {what}s"
    close = difflib.get_close_matches(name, names, n=3)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    shown = ", ".join(names[:8]) + (f" (+{len(names) - 8} more)" if len(names) > 8 else "")
    return f"{what}s: {shown}"


def counted(number: int, noun: str) -> str:
    """``"1 model"``, ``"3 models"``."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"
