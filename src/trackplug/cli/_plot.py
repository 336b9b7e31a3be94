"""``trackplug plot``: histories drawn with matplotlib (the ``plot`` extra).

matplotlib is imported here, when a plot is drawn, and only its object API is used (a
``Figure`` rendered by Agg): no pyplot, no global backend, nothing left open.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

from .._model import Columns

if TYPE_CHECKING:  # matplotlib is imported when a plot is drawn
    from matplotlib.figure import Figure

__all__ = ["INSTALL_HINT", "MissingExtraError", "XAxis", "draw", "render"]

#: What the x axis of a plot shows.
XAxis = Literal["step", "time"]

INSTALL_HINT = "plotting needs matplotlib: pip install 'trackplug[plot]'"
#: Above this many points a line has no markers.
MARKER_LIMIT = 40


class MissingExtraError(click.ClickException):
    """An optional dependency of one command is not installed."""


def render(
    series: Mapping[str, Columns],
    key: str,
    output: Path,
    size: tuple[int, int],
    dpi: int = 100,
    title: str | None = None,
    log_y: bool = False,
    x_axis: XAxis = "step",
) -> None:
    """Draw one line per resource (``x_axis`` on x, ``key`` on y) into ``output``, an image
    of ``size`` pixels (width, height) whose format follows the file's suffix (PNG without
    one)."""
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError as exc:
        raise MissingExtraError(INSTALL_HINT) from exc
    file_format = output.suffix.lstrip(".").lower() or "png"
    supported = FigureCanvasBase.get_supported_filetypes()
    if file_format not in supported:
        raise click.BadParameter(
            f"{output.name!r} is not an image file matplotlib writes; use one of "
            + ", ".join(f".{suffix}" for suffix in sorted(supported)),
            param_hint="'-o' / '--output'",
        )
    figure = draw(series, key, size, dpi, title, log_y, x_axis)
    figure.savefig(output, format=file_format, dpi=dpi)


def draw(
    series: Mapping[str, Columns],
    key: str,
    size: tuple[int, int],
    dpi: int = 100,
    title: str | None = None,
    log_y: bool = False,
    x_axis: XAxis = "step",
) -> Figure:
    """The figure :func:`render` saves."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    width, height = size
    figure = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, layout="constrained")
    axes = figure.add_subplot()
    for resource, columns in series.items():
        marker = "o" if len(columns.steps) <= MARKER_LIMIT else None
        xs: Any = columns.steps if x_axis == "step" else _times(key, columns)
        axes.plot(xs, columns.values, marker=marker, markersize=3, linewidth=1.5, label=resource)
    if x_axis == "time":
        locator = AutoDateLocator()  # type: ignore[no-untyped-call]  # matplotlib's own
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
        axes.set_xlabel("time (UTC)")
    else:
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are integers
        axes.set_xlabel("step")
    axes.set_ylabel(key)
    axes.set_title(title if title is not None else key)
    if log_y:
        axes.set_yscale("log")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return figure


def _times(key: str, columns: Columns) -> list[datetime]:
    """The points' times as UTC datetimes (which matplotlib draws as dates)."""
    try:
        return [
            datetime.fromtimestamp(stamp / 1000, UTC).replace(tzinfo=None)
            for stamp in columns.timestamps
        ]
    except (OverflowError, ValueError, OSError):
        step, stamp = next(
            (step, stamp)
            for step, stamp in zip(columns.steps, columns.timestamps, strict=True)
            if not _shown(stamp)
        )
        raise click.ClickException(
            f"{key} at step {step} has timestamp {stamp} (ms), "
            "past the dates a time axis shows; plot it by step"
        ) from None


def _shown(stamp: int) -> bool:
    """Whether a time axis can show this timestamp (ms)."""
    try:
        datetime.fromtimestamp(stamp / 1000, UTC)
    except (OverflowError, ValueError, OSError):
        return False
    return True
