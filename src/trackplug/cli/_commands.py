"""The commands. Each opens its own tracker on the URL it is given and closes it when done;
what it prints names stores by their redacted URL."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import fnmatch
import os
import re
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Literal

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .._errors import TrackplugError, UnsupportedOperationError
from .._export import KeyFilter, TableName, metric_pages, param_rows, run_rows
from .._model import Capabilities, Columns, MetricPoint, ParamValue, PerfRecord
from .._outbox import Outbox
from .._registry import ENV_URL, BackendEntry, Registry, default_registry, default_url
from .._runs import RunInfo, Runs, RunStatus
from .._tracker import Tracker, connect
from .._transfer import CopySummary
from .._transfer import copy as copy_store
from .._transfer import sync as sync_outbox
from .._urls import redact_url
from ..spec import BackendFactory, UrlForm
from . import _demo
from ._export import FORMATS, Format, write_metrics
from ._export import write as write_table
from ._output import (
    counted,
    echo_json,
    fmt_time,
    fmt_value,
    json_value,
    leaderboard_table,
    location,
    say,
    show_table,
    stdout,
    suggest,
)
from ._plot import XAxis, render

__all__ = ["COMMANDS"]


def _resolve(url: str | None) -> str:
    return url or default_url()


#: What starts a store's URL on the command line: ``scheme://``.
_URL_START = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


class StoreCommand(click.Command):
    """A reading command whose first argument, URL, may be left out, as ``ls``'s may:
    it is the first positional argument when that looks like a URL (``scheme://…``), or
    when every argument is given; otherwise ``$TRACKPLUG_URL``, else the embedded default,
    goes before the arguments given. So ``trackplug best valid_f1`` and ``trackplug best
    sqlite:///x.db valid_f1`` both work. (A resource id that itself looks like a URL needs
    the store's URL before it.)
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not self._names_store(ctx, args):
            args = [default_url(), *args]  # first, so it is the first positional argument
        return super().parse_args(ctx, args)

    def _names_store(self, ctx: click.Context, args: list[str]) -> bool:
        """Whether the first positional argument of ``args`` is a URL. The options are
        parsed by click's own parser, so an option's value is never taken for it."""
        try:
            values, extra, _ = self.make_parser(ctx).parse_args(list(args))
        except click.UsageError:
            return True  # click's own parse reports it, with the arguments as given
        first = values.get("url")  # what click would take for URL: the first positional
        if isinstance(first, str) and _URL_START.match(first):
            return True
        # Every argument given (none takes many): the first is meant as the URL, and a
        # malformed one is reported as such rather than as an extra argument.
        arguments = [p for p in self.params if isinstance(p, click.Argument)]
        given = sum(1 for p in arguments if isinstance(values.get(p.name or ""), str))
        bounded = all(p.nargs == 1 for p in arguments)
        return bounded and given + len(extra) >= len(arguments)


def _store_command() -> Callable[[Callable[..., None]], click.Command]:
    """``@click.command`` for a reading command whose URL is optional (:class:`StoreCommand`)."""
    return click.command(cls=StoreCommand)


def _store_argument() -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The URL argument of a :class:`StoreCommand`: shown as optional in its usage."""
    return click.argument("url", metavar="[URL]")


def _factory(url: str) -> BackendFactory:
    """What the backend serving ``url`` registered: the CLI's one source on backends."""
    return default_registry().lookup(url).factory


def _open_existing(url: str) -> Tracker:
    """A tracker on a store that must already exist. Backends create a missing store when
    they open it, so a misspelled path would become an empty database (MLflow's: ~1 MB):
    every reading command checks here first, with what the backend's factory says."""
    local = _factory(url).local_store(url)
    if local is not None and not local.path.exists():
        raise click.ClickException(
            f"{redact_url(url)} does not exist (no {local}); "
            "'trackplug demo' creates a store to look at"
        )
    return connect(url)


def _note(text: str) -> None:
    """A remark for people on stderr, so stdout stays the command's data."""
    click.echo(text, err=True)


# -- demo -----------------------------------------------------------------------------------


@click.command()
@click.argument("url", required=False)
@click.option(
    "--models",
    type=click.IntRange(1, len(_demo.MODELS)),
    default=3,
    show_default=True,
    help="How many models train.",
)
@click.option(
    "--epochs", type=click.IntRange(1, 1000), default=10, show_default=True, help="Epochs each."
)
@click.option(
    "--rows",
    type=click.IntRange(1, 1_000_000),
    default=500,
    show_default=True,
    help="Rows the prediction job labels.",
)
@click.option(
    "--seed", type=click.IntRange(0, 10_000), default=0, show_default=True, help="RNG seed."
)
def demo(url: str | None, models: int, epochs: int, rows: int, seed: int) -> None:
    """Simulate a small training run into URL, then show the leaderboard.

    Each model logs train/valid loss, accuracy and f1 per epoch (f1 is the perf metric)
    and its learning rate; the best one then labels ROWS rows for a prediction job.
    The same seed logs the same points, so running it again changes no training history.

    URL defaults to $TRACKPLUG_URL, else sqlite:///trackplug.db.

    \b
    Example:
      trackplug demo
      trackplug demo sqlite:///runs.db --models 5 --epochs 30
    """
    url = _resolve(url)
    started = time.perf_counter()
    with connect(url) as tracker:
        run = _demo.simulate(tracker, models, epochs, rows, seed)
        ranking = tracker.best(_demo.PERF_KEY, "max", limit=models)
        details = {resource: tracker.latest(resource) for resource, _ in ranking}
        persistent = tracker.capabilities.persistent
    console = stdout()
    say(
        console,
        f"Simulated {counted(models, 'model')} x {counted(epochs, 'epoch')} (seed {seed}) and "
        f"a prediction job of {counted(rows, 'row')}: {counted(run.points, 'point')} in "
        f"{time.perf_counter() - started:.2f} s.",
    )
    extra = ("valid_accuracy", "valid_loss", "train_f1")
    say(console, f"Leaderboard: {_demo.PERF_KEY}, best first")
    console.print(leaderboard_table(_demo.PERF_KEY, ranking, details, extra))
    shares = [f"{k.rpartition('.')[2]} {v:.1%}" for k, v in run.predictions.items() if "." in k]
    say(console, f"Prediction job {run.job}: {rows} predictions ({', '.join(shares)}).")
    say(console, f"Data: {location(url, _factory(url))}")
    if persistent:
        say(console, f"Next: trackplug ls {redact_url(url)}")
        say(console, f"      trackplug plot {redact_url(url)} valid_loss -o loss.png")


# -- ls -------------------------------------------------------------------------------------


@click.command(name="ls")
@click.argument("url", required=False)
@click.option("-k", "--key", "pattern", help="Only keys matching this glob, e.g. 'valid_*'.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def ls(url: str | None, pattern: str | None, as_json: bool) -> None:
    """List resources with their latest metrics and perf record.

    URL defaults to $TRACKPLUG_URL, else sqlite:///trackplug.db.

    \b
    Example:
      trackplug ls
      trackplug ls sqlite:///runs.db -k 'valid_*' --json
    """
    url = _resolve(url)
    with _open_existing(url) as tracker:
        runs = {run.id: run for run in _runs_of(tracker)}
        ids = sorted({*tracker.resources(), *runs})
        rows = [(r, tracker.perf(r), tracker.latest(r), runs.get(r)) for r in ids]
    if pattern is not None:
        rows = [(r, perf, _matching(latest, pattern), run) for r, perf, latest, run in rows]
        rows = [row for row in rows if row[2]]
    if as_json:
        echo_json({"url": redact_url(url), "resources": [_resource_json(*row) for row in rows]})
    elif not rows:
        _note(f"No metrics{_matching_text(pattern)} in {redact_url(url)}.")
    else:
        show_table(f"{redact_url(url)}: {len(rows)} resources", _ls_table(rows))


LsRow = tuple[str, PerfRecord | None, dict[str, float], RunInfo | None]


def _runs_of(tracker: Tracker, name: str | None = None) -> Runs:
    """The store's runs; none where the backend keeps no tags."""
    try:
        return tracker.runs(name)
    except UnsupportedOperationError:
        return Runs()


def _params_text(params: dict[str, ParamValue]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in params.items())


def _matching(latest: dict[str, float], pattern: str) -> dict[str, float]:
    return {key: value for key, value in latest.items() if fnmatch.fnmatchcase(key, pattern)}


def _matching_text(pattern: str | None) -> str:
    return f" matching {pattern!r}" if pattern is not None else ""


def _perf_text(perf: PerfRecord | None) -> str:
    return f"{perf.metric} = {fmt_value(perf.value)}" if perf is not None else ""


def _resource_json(
    resource: str, perf: PerfRecord | None, latest: dict[str, float], run: RunInfo | None
) -> object:
    return {
        "id": resource,
        "perf": None if perf is None else {"metric": perf.metric, "value": json_value(perf.value)},
        "latest": {key: json_value(value) for key, value in latest.items()},
        "run": None if run is None else _run_json(run),
    }


def _run_json(run: RunInfo) -> dict[str, object]:
    return {
        "id": run.id,
        "name": run.name,
        "status": run.status,
        "start": fmt_time(run.start),
        "end": None if run.end is None else fmt_time(run.end),
        "params": run.params,
        "tags": run.tags,
        "metrics": {key: json_value(value) for key, value in run.metrics.items()},
    }


def _ls_table(rows: list[LsRow]) -> Table:
    table = Table()
    table.add_column("resource", style="bold")
    runs = any(run is not None for *_, run in rows)
    if runs:
        table.add_column("run")
    table.add_column("perf")
    table.add_column("metric")
    table.add_column("latest", justify="right")
    for resource, perf, latest, run in rows:
        lines: list[tuple[str, float | None]] = [*latest.items()] or [("", None)]
        for index, (key, value) in enumerate(lines):
            first = index == 0
            cells = [resource if first else ""]
            if runs:
                cells.append(_run_text(run) if first else "")
            cells += [
                _perf_text(perf) if first else "",
                key,
                "" if value is None else fmt_value(value),
            ]
            table.add_row(*cells, end_section=index == len(lines) - 1)
    return table


def _run_text(run: RunInfo | None) -> str:
    if run is None:
        return ""
    return f"{run.status}\n{_params_text(run.params)}" if run.params else run.status


# -- runs and params ------------------------------------------------------------------------


@_store_command()
@_store_argument()
@click.argument("name", required=False)
@click.option(
    "-m", "--metric", "metrics", multiple=True, help="Show this metric (repeat; default: all)."
)
@click.option(
    "-p",
    "--param",
    "wanted",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only runs with this param (VALUE read as JSON, else text; repeat).",
)
@click.option(
    "--status", type=click.Choice(["running", "finished", "failed", "killed"]), help="Only these."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def runs(
    url: str,
    name: str | None,
    metrics: tuple[str, ...],
    wanted: tuple[str, ...],
    status: RunStatus | None,
    as_json: bool,
) -> None:
    """List the runs in URL (of NAME), oldest first, side by side: status, start,
    duration, params and latest metrics.

    URL may be left out: it defaults to $TRACKPLUG_URL, else sqlite:///trackplug.db.

    \b
    Example:
      trackplug runs sqlite:///runs.db sgd -m valid_loss
      trackplug runs sqlite:///runs.db -p lr=0.01 --status finished
    """
    with _open_existing(url) as tracker:
        found = tracker.runs(name, status=status, params=_param_filter(wanted))
    if as_json:
        echo_json({"url": redact_url(url), "runs": [_run_json(run) for run in found]})
    elif not found:
        _note(f"No runs{f' of {name!r}' if name else ''} in {redact_url(url)}.")
    else:
        show_table(f"{redact_url(url)}: {counted(len(found), 'run')}", _runs_table(found, metrics))


def _param_filter(wanted: tuple[str, ...]) -> dict[str, ParamValue]:
    import json

    chosen: dict[str, ParamValue] = {}
    for item in wanted:
        key, sep, text = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--param")
        try:
            chosen[key] = json.loads(text)
        except ValueError:
            chosen[key] = text
    return chosen


def _runs_table(found: Runs, metrics: tuple[str, ...]) -> Table:
    params = sorted({key for run in found for key in run.params})
    keys = list(metrics) or sorted({key for run in found for key in run.metrics})
    table = Table()
    widest = max(len(run.id) for run in found)  # ids whole: they are what users copy
    table.add_column("run", style="bold", no_wrap=True, min_width=widest)
    table.add_column("status")
    table.add_column("start", no_wrap=True, min_width=len("2026-12-02T13:35:01.123Z"))
    table.add_column("duration")
    for key in params:
        table.add_column(key, style="cyan")
    for key in keys:
        table.add_column(key, justify="right")
    for run in found:
        duration = "" if run.end is None else f"{(run.end - run.start) / 1000:.1f} s"
        table.add_row(
            run.id,
            run.status,
            fmt_time(run.start),
            duration,
            *(repr(run.params[k]) if k in run.params else "" for k in params),
            *(fmt_value(run.metrics[k]) if k in run.metrics else "" for k in keys),
        )
    return table


@_store_command()
@_store_argument()
@click.argument("resource")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def params(url: str, resource: str, as_json: bool) -> None:
    """Show the params and tags of RESOURCE (a run's id, or any resource) in URL.

    URL may be left out: it defaults to $TRACKPLUG_URL, else sqlite:///trackplug.db.

    \b
    Example:
      trackplug params sqlite:///runs.db sgd-20261202-133501.123-4f2a
    """
    with _open_existing(url) as tracker:
        held, tags = tracker.params(resource), tracker.tags(resource)
    if as_json:
        echo_json({"url": redact_url(url), "resource": resource, "params": held, "tags": tags})
    elif not held and not tags:
        _note(f"No params or tags for {resource!r} in {redact_url(url)}.")
    else:
        table = Table()
        for column in ("kind", "key", "value"):
            table.add_column(column, style="bold" if column == "key" else None)
        for key, value in held.items():
            table.add_row("param", key, repr(value))
        for key, text in tags.items():
            table.add_row("tag", key, text)
        show_table(f"{redact_url(url)}: {resource}", table)


# -- history --------------------------------------------------------------------------------


@_store_command()
@_store_argument()
@click.argument("resource")
@click.argument("key")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV: step,timestamp,value.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def history(url: str, resource: str, key: str, as_csv: bool, as_json: bool) -> None:
    """Show every point of KEY for RESOURCE, by step.

    Timestamps are milliseconds since the epoch in CSV and JSON, UTC in the table.
    CSV and JSON keep values exactly (JSON writes NaN and infinities as strings).

    URL may be left out: it defaults to $TRACKPLUG_URL, else sqlite:///trackplug.db.

    \b
    Example:
      trackplug history sqlite:///trackplug.db demo/cnn valid_loss
      trackplug history sqlite:///trackplug.db demo/cnn valid_loss --csv > loss.csv
    """
    if as_csv and as_json:
        raise click.UsageError("choose one of --csv and --json")
    with _open_existing(url) as tracker:
        points = tracker.history(resource, key)
        if not points:
            raise click.ClickException(_no_history(tracker, resource, key))
    if as_csv:
        _echo_csv(points)
    elif as_json:
        data = [
            {"step": p.step, "timestamp": p.timestamp, "value": json_value(p.value)} for p in points
        ]
        echo_json({"url": redact_url(url), "resource": resource, "key": key, "points": data})
    else:
        heading = f"{key} of {resource} in {redact_url(url)}: {len(points)} points"
        show_table(heading, _history_table(key, points))


def _no_history(tracker: Tracker, resource: str, key: str) -> str:
    resources = tracker.resources()
    if resource not in resources:
        hint = suggest(resource, resources, "resource")
        return f"{tracker.url} has no resource {resource!r}; {hint}"
    hint = suggest(key, tracker.latest(resource), "metric")
    return f"resource {resource!r} has no metric {key!r}; {hint}"


def _echo_csv(points: list[MetricPoint]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["step", "timestamp", "value"])
    writer.writerows([p.step, p.timestamp, repr(p.value)] for p in points)


def _history_table(key: str, points: list[MetricPoint]) -> Table:
    table = Table()
    table.add_column("step", justify="right")
    table.add_column(key, justify="right")
    table.add_column("time (UTC)")
    for point in points:
        table.add_row(str(point.step), fmt_value(point.value), fmt_time(point.timestamp))
    return table


# -- best -----------------------------------------------------------------------------------


@_store_command()
@_store_argument()
@click.argument("metric")
@click.option(
    "--max/--min",
    "maximize",
    default=True,
    help="Rank the greatest (default) or the smallest latest value first.",
)
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Leaderboard rows.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def best(url: str, metric: str, maximize: bool, limit: int, as_json: bool) -> None:
    """Rank resources by the latest value of METRIC (a leaderboard).

    Resources without METRIC, or whose latest value is NaN, are not ranked.

    URL may be left out: it defaults to $TRACKPLUG_URL, else sqlite:///trackplug.db.

    \b
    Example:
      trackplug best sqlite:///trackplug.db valid_f1 --limit 3
      trackplug best sqlite:///trackplug.db valid_loss --min
    """
    order: Literal["max", "min"] = "max" if maximize else "min"
    with _open_existing(url) as tracker:
        ranking = tracker.best(metric, order, limit)
        if not ranking:
            known = {key for r in tracker.resources() for key in tracker.latest(r)}
            hint = suggest(metric, known, "metric")
            raise click.ClickException(
                f"no resource in {tracker.url} has metric {metric!r}; {hint}"
            )
    if as_json:
        board = [
            {"rank": rank, "resource": resource, "value": json_value(value)}
            for rank, (resource, value) in enumerate(ranking, start=1)
        ]
        echo_json({"url": redact_url(url), "metric": metric, "order": order, "leaderboard": board})
    else:
        title = f"{redact_url(url)}: {metric}, {'greatest' if maximize else 'smallest'} first"
        show_table(title, leaderboard_table(metric, ranking))


# -- plot -----------------------------------------------------------------------------------


@_store_command()
@_store_argument()
@click.argument("key")
@click.argument("resources", nargs=-1, metavar="[RESOURCE]...")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Image file to write (.png, .svg, .pdf…)  [default: KEY.png]",
)
@click.option(
    "--width", type=click.IntRange(100, 10_000), default=800, show_default=True, help="Pixels."
)
@click.option(
    "--height", type=click.IntRange(100, 10_000), default=500, show_default=True, help="Pixels."
)
@click.option(
    "--dpi",
    type=click.IntRange(50, 600),
    default=100,
    show_default=True,
    help="Dots per inch: text size (the image stays WIDTH x HEIGHT pixels).",
)
@click.option("--title", help="Plot title  [default: KEY]")
@click.option("--log-y", is_flag=True, help="Logarithmic y axis.")
@click.option(
    "--x",
    "x_axis",
    type=click.Choice(["step", "time"]),
    default="step",
    show_default=True,
    help="What the x axis shows: the step, or the time each point was logged (UTC).",
)
def plot(
    url: str,
    key: str,
    resources: tuple[str, ...],
    output: Path | None,
    width: int,
    height: int,
    dpi: int,
    title: str | None,
    log_y: bool,
    x_axis: XAxis,
) -> None:
    """Plot the history of KEY (step on x, or time with --x time), one line per RESOURCE.

    Without RESOURCE, every resource that has KEY is drawn. Needs matplotlib
    (pip install 'trackplug[plot]').

    URL may be left out: it defaults to $TRACKPLUG_URL, else sqlite:///trackplug.db.

    \b
    Example:
      trackplug plot sqlite:///trackplug.db valid_loss -o loss.png
      trackplug plot sqlite:///trackplug.db valid_f1 demo/cnn demo/mlp -o f1.png --width 1200
    """
    output = output or Path(re.sub(r"[^\w.-]", "_", key) + ".png")
    with _open_existing(url) as tracker:
        series = _series(tracker, key, list(resources))
    render(series, key, output, (width, height), dpi, title, log_y, x_axis)
    names = ", ".join(series)
    by = "" if x_axis == "step" else f" by {x_axis}"
    say(
        stdout(),
        f"Wrote {output} ({width}x{height} px): {key}{by} of {len(series)} resources ({names}).",
    )


def _series(tracker: Tracker, key: str, resources: list[str]) -> dict[str, Columns]:
    """``{resource: history of key}`` as columns (read a page at a time, no object per
    point); every resource having ``key`` when none is named."""
    chosen = resources or [r for r in tracker.resources() if key in tracker.latest(r)]
    if not chosen:
        known = {k for r in tracker.resources() for k in tracker.latest(r)}
        raise click.ClickException(
            f"no resource in {tracker.url} has metric {key!r}; {suggest(key, known, 'metric')}"
        )
    series = {resource: tracker.history_columns(resource, key) for resource in chosen}
    for resource, columns in series.items():
        if not columns.steps:
            raise click.ClickException(_no_history(tracker, resource, key))
    return series


# -- export ---------------------------------------------------------------------------------


@_store_command()
@_store_argument()
@click.option(
    "-t",
    "--table",
    type=click.Choice(["metrics", "runs", "params"]),
    default="metrics",
    show_default=True,
    help="What to export: every point, the runs, or the params and tags.",
)
@click.option(
    "-f",
    "--format",
    "file_format",
    type=click.Choice(FORMATS),
    help="csv, json (JSON Lines) or parquet  [default: from -o's suffix, else csv]",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write  [default: stdout]",
)
@click.option(
    "-r", "--resource", "resources", multiple=True, help="Only this resource (repeatable)."
)
@click.option(
    "-k", "--key", "patterns", multiple=True, help="Only keys matching this glob (repeatable)."
)
def export(
    url: str,
    table: TableName,
    file_format: Format | None,
    output: Path | None,
    resources: tuple[str, ...],
    patterns: tuple[str, ...],
) -> None:
    """Export a table of URL as CSV, JSON Lines or Parquet, to stdout or a file.

    \b
    Tables (they join on the resource; a run's resource is its run id):
      metrics  resource, run, key, step, timestamp, value: one row per point
      runs     run_id, name, status, start, end, params, tags
      params   resource, kind (param or tag), key, value
    Timestamps, starts and ends are ms since the epoch. Values are exact (CSV: nan,
    inf, -inf; JSON: "NaN", "Infinity", "-Infinity"). Histories are read a page at a
    time, so a table of millions of points is never held in memory.

    URL may be left out: it defaults to $TRACKPLUG_URL, else sqlite:///trackplug.db.

    \b
    Example:
      trackplug export -o metrics.csv
      trackplug export sqlite:///runs.db -t runs --format json
      trackplug export sqlite:///runs.db -k 'valid_*' -o valid.parquet
    """
    chosen_format = file_format or _format_of(output)
    if resources and table == "runs":
        raise click.UsageError("-r/--resource chooses resources of the metrics or params table")
    if patterns and table != "metrics":
        raise click.UsageError("-k/--key chooses keys of the metrics table")
    with _open_existing(url) as tracker, contextlib.ExitStack() as files:
        chosen = list(resources) or None
        if chosen is not None:
            _check_resources(tracker, chosen)

        def open_output(binary: bool) -> IO[Any]:
            if output is None:
                return _stdout_stream(binary)
            if binary:
                return files.enter_context(output.open("wb"))
            return files.enter_context(output.open("w", encoding="utf-8", newline=""))

        if table == "metrics":
            pages = metric_pages(tracker, chosen, _key_filter(patterns))
            count = write_metrics(pages, chosen_format, open_output)
        else:
            rows = run_rows(tracker) if table == "runs" else param_rows(tracker, chosen)
            count = write_table(table, rows, chosen_format, open_output)
    if output is not None:
        _note(f"Wrote {counted(count, 'row')} of {table} to {output} ({chosen_format}).")


def _stdout_stream(binary: bool) -> IO[Any]:
    """stdout, as bytes (Parquet) or text; click's runner swaps both."""
    return sys.stdout.buffer if binary else sys.stdout


def _key_filter(patterns: tuple[str, ...]) -> KeyFilter:
    """The keys the ``-k`` globs choose: all without one."""
    if not patterns:
        return None
    return lambda key: any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)


def _format_of(output: Path | None) -> Format:
    """The format a file's suffix names; CSV for stdout or another suffix."""
    suffix = "" if output is None else output.suffix.lower()
    if suffix == ".parquet":
        return "parquet"
    return "json" if suffix in (".json", ".jsonl") else "csv"


def _check_resources(tracker: Tracker, chosen: list[str]) -> None:
    known = set(tracker.resources()) | set(tracker._run_ids())
    missing = [r for r in chosen if r not in known]
    if missing:
        hint = suggest(missing[0], known, "resource")
        raise click.ClickException(
            f"{tracker.url} has no resource {', '.join(map(repr, missing))}; {hint}"
        )


# -- copy -----------------------------------------------------------------------------------


@click.command(name="copy")
@click.argument("source")
@click.argument("target")
@click.option(
    "-r",
    "--resource",
    "resources",
    multiple=True,
    help="Copy only this resource (repeatable)  [default: all]",
)
def copy_command(source: str, target: str, resources: tuple[str, ...]) -> None:
    """Copy metrics from the SOURCE store to the TARGET store.

    Full histories (steps, timestamps) and perf records. Points the target already holds
    are skipped, so an interrupted copy resumes when run again, and a second run writes
    nothing.

    \b
    Example:
      trackplug copy sqlite:///trackplug.db mlflow+sqlite:///mlflow.db
      trackplug copy sqlite:///a.db postgresql://me:pw@db/metrics -r demo/cnn -r demo/mlp
    """
    with _open_existing(source) as src, connect(target) as dst:
        missing = sorted(set(resources) - set(src.resources()))
        if missing:
            hint = suggest(missing[0], src.resources(), "resource")
            raise click.ClickException(
                f"{src.url} has no resource {', '.join(map(repr, missing))}; {hint}"
            )
        if not dst.capabilities.persistent:
            _note(f"Note: {dst.url} keeps nothing once this command ends.")
        summary = _copy_with_progress(src, dst, list(resources) or None)
    say(
        stdout(),
        f"Copied {summary.resources} resources, {summary.points} points from {redact_url(source)} "
        f"to {redact_url(target)} ({summary.skipped} points were already there).",
    )


def _copy_with_progress(src: Tracker, dst: Tracker, resources: list[str] | None) -> CopySummary:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[resources]} {task.fields[resource]}"),
    )
    with Progress(*columns, console=Console(stderr=True, markup=False, emoji=False)) as bar:
        # The bar counts points (a resource may hold millions); the text, resources.
        task = bar.add_task("copying points", total=None, resources="", resource="")

        def progress(done: int, total: int, resource: str) -> None:
            bar.update(task, resources=f"{done}/{total} resources", resource=resource)

        def points(read: int) -> None:
            bar.update(task, completed=read)

        summary = copy_store(src, dst, resources=resources, progress=progress, points=points)
        bar.update(task, total=summary.points + summary.skipped)
        return summary


# -- sync -----------------------------------------------------------------------------------


@click.command()
@click.argument("urls", nargs=-1)
@click.option(
    "--outbox",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The outbox file  [default: $TRACKPLUG_OUTBOX, else .trackplug/outbox.db]",
)
def sync(urls: tuple[str, ...], outbox: Path | None) -> None:
    """Replay the writes waiting in the outbox to their backends, oldest first.

    A backend whose policy is 'spool' (the default for every backend after the first)
    keeps the writes it could not take in the outbox. This sends them: to the URLs given,
    or to every URL the outbox holds writes for. A backend still failing keeps its writes
    for the next try, and the command exits 1.

    \b
    Example:
      trackplug sync
      TRACKPLUG_OUTBOX=~/outbox.db trackplug sync mlflow+https://mlflow.example.org
    """
    box = Outbox(outbox)
    if not box.path.exists():
        say(stdout(), f"Nothing to sync: there is no outbox at {box.path}.")
        return
    with box.replaying():  # counted under the lock a concurrent sync holds: counts are true
        waiting = {url: box.pending(url) for url in (urls or box.urls())}
        sent = _sync_with_progress(box, list(waiting))
    for url, count in sent.items():
        say(stdout(), f"Sent {count} of {waiting[url]} waiting writes to {redact_url(url)}.")
    if not sent:
        say(stdout(), f"Nothing to sync: the outbox {box.path} is empty.")


def _sync_with_progress(box: Outbox, urls: list[str]) -> dict[str, int]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    console = Console(stderr=True, markup=False, emoji=False)
    # A bar for people at a terminal; scripts and logs get the summary lines alone.
    with Progress(
        *columns, console=console, transient=True, disable=not console.is_terminal
    ) as bar:
        task = bar.add_task("syncing", total=len(urls))

        def progress(done: int, total: int, url: str) -> None:
            bar.update(task, completed=done, description=f"syncing {redact_url(url)}")

        return sync_outbox(*urls, outbox=box, progress=progress)


# -- ui -------------------------------------------------------------------------------------


@click.command(name="ui")
@click.argument("url", required=False)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Anything but loopback lets others read the store.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    help="Port to listen on [default: a free one].",
)
def ui(url: str | None, host: str, port: int) -> None:
    """Serve a read-only dashboard of a store: runs, charts, leaderboard, predictions.

    URL defaults to $TRACKPLUG_URL, else sqlite:///trackplug.db. Needs the ui extra
    (pip install "trackplug[ui]"). Ctrl-C stops it.

    \b
    Example:
      trackplug ui
      trackplug ui sqlite:///runs.db --port 8080
    """
    url = _resolve(url)
    try:
        from .. import ui as dashboard
    except ImportError as exc:  # starlette or uvicorn: the extra is not installed
        raise click.ClickException(
            f'trackplug ui needs {exc.name or "the ui extra"}: pip install "trackplug[ui]"'
        ) from None
    if not dashboard.is_loopback(host):
        _note(
            f"Warning: serving on {host}, not loopback: anyone who can reach this machine can "
            "read the store's metrics, params and tags (the dashboard has no login)."
        )
    # serve() returns on Ctrl-C or SIGTERM, once its requests are answered; a Ctrl-C before
    # its handler is in place (while the store opens) is the end too, not an error.
    with _open_existing(url) as tracker, contextlib.suppress(KeyboardInterrupt):
        dashboard.serve(tracker, host, port)
    _note("trackplug ui: stopped")


# -- backends -------------------------------------------------------------------------------


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def backends(as_json: bool) -> None:
    """List the installed backends: URL scheme, plugin, distribution, capabilities.

    Capabilities are what the backend declares: whether data persists, and every way it
    deviates from the reference backend. Where they depend on the URL (a SQLite file or
    in memory; MLflow's kind of store) each kind of URL is shown.

    \b
    Example:
      trackplug backends
      trackplug backends --json
    """
    registry = Registry()  # discovered now: this command is about what is installed
    entries = sorted(registry.backends.values(), key=lambda entry: entry.scheme)
    if as_json:
        echo_json(
            {
                "default_url": redact_url(default_url()),
                "backends": [_entry_json(e) for e in entries],
            }
        )
        return
    table = Table()
    for column in ("scheme", "plugin", "distribution", "version", "capabilities"):
        table.add_column(column)
    for entry in entries:
        described = _forms_text(_forms(entry))
        table.add_row(
            f"{entry.scheme}://", entry.plugin, entry.distribution, entry.version, described
        )
    show_table("Installed backends", table)
    say(stdout(), _default_text(registry))


def _forms(entry: BackendEntry) -> list[UrlForm]:
    """The forms of URL of ``entry.scheme`` and what each keeps, as its factory declares
    them now (``form`` may ask the environment); a factory that cannot say is shown as
    declaring nothing."""
    factory = entry.factory
    try:
        patterns = [f.pattern for f in factory.forms() if f.scheme == entry.scheme]
        return [factory.form(pattern) for pattern in patterns or [f"{entry.scheme}://"]]
    except Exception as exc:  # a broken plugin must not hide the other backends
        warnings.warn(
            f"{entry.scheme}://: capabilities unknown: {type(exc).__name__}: {exc}", stacklevel=1
        )
        return [UrlForm(f"{entry.scheme}://", None)]


def _forms_text(forms: list[UrlForm]) -> str:
    """One line per form; the form is named where a scheme has several."""
    if len(forms) == 1:
        (form,) = forms
        return _describe_capabilities(form.capabilities) + (
            f" ({form.summary})" if form.summary else ""
        )
    return "\n".join(f"{form}: {_describe_capabilities(form.capabilities)}" for form in forms)


def _describe_capabilities(caps: Capabilities | None) -> str:
    """``persistent`` or ``not persistent``, then each field that differs from the
    reference; ``not declared`` for None."""
    if caps is None:
        return "not declared"
    reference = Capabilities()
    deviations = [
        f"{field.name}={getattr(caps, field.name)}"
        for field in dataclasses.fields(caps)
        if field.name != "persistent"
        and getattr(caps, field.name) != getattr(reference, field.name)
    ]
    return ", ".join(["persistent" if caps.persistent else "not persistent", *deviations])


def _entry_json(entry: BackendEntry) -> object:
    return {
        "scheme": entry.scheme,
        "plugin": entry.plugin,
        "distribution": entry.distribution,
        "version": entry.version,
        "capabilities": [
            {"url": form.pattern, **dataclasses.asdict(form.capabilities)}
            for form in _forms(entry)
            if form.capabilities is not None
        ],
    }


def _default_text(registry: Registry) -> str:
    """The default store, where it comes from, and whether a backend serves it."""
    url = default_url()
    source = f"${ENV_URL}" if os.environ.get(ENV_URL) else "the embedded default"
    try:
        registry.lookup(url)
    except TrackplugError:
        return f"Default store ({source}): {redact_url(url)}, which no installed backend serves"
    return f"Default store ({source}): {redact_url(url)}"


COMMANDS = (demo, ls, runs, params, history, best, plot, export, ui, copy_command, sync, backends)
