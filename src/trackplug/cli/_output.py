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
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

import click
from rich.console import Console
from rich.table import Table

from .._registry import DEFAULT_URL
from .._urls import redact_url
from ..spec import BackendFactory

__all__ = [
    "echo_json",
    "fmt_time",
    "fmt_value",
    "json_value",
    "leaderboard_table",
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


def location(url: str, factory: BackendFactory) -> str:
    """Where a URL keeps its data, in words, password redacted: what its backend's
    factory declares (a store that does not persist, a file or folder on this machine)."""
    safe = redact_url(url)
    caps = factory.capabilities(url)
    if caps is not None and not caps.persistent:
        return f"{safe} (in memory: gone when this command ends; use {DEFAULT_URL} to keep it)"
    local = factory.local_store(url)
    return f"{safe} ({local})" if local else safe


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
