"""``trackplug plot``: histories drawn with matplotlib (the ``plot`` extra).

matplotlib is imported here, when a plot is drawn, and only its object API is used (a
``Figure`` rendered by Agg): no pyplot, no global backend, nothing left open.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import click

from .._model import MetricPoint

__all__ = ["INSTALL_HINT", "MissingExtraError", "render"]

INSTALL_HINT = "plotting needs matplotlib: pip install 'trackplug[plot]'"
#: Above this many points a line has no markers.
MARKER_LIMIT = 40


class MissingExtraError(click.ClickException):
    """An optional dependency of one command is not installed."""


def render(
    series: Mapping[str, Sequence[MetricPoint]],
    key: str,
    output: Path,
    size: tuple[int, int],
    dpi: int = 100,
    title: str | None = None,
    log_y: bool = False,
) -> None:
    """Draw one line per resource (step on x, ``key`` on y) into ``output``, an image of
    ``size`` pixels (width, height) whose format follows the file's suffix (PNG without one)."""
    try:
        from matplotlib.backend_bases import FigureCanvasBase
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
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
    width, height = size
    figure = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, layout="constrained")
    axes = figure.add_subplot()
    for resource, points in series.items():
        marker = "o" if len(points) <= MARKER_LIMIT else None
        steps = [p.step for p in points]
        values = [p.value for p in points]
        axes.plot(steps, values, marker=marker, markersize=3, linewidth=1.5, label=resource)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are integers
    axes.set_xlabel("step")
    axes.set_ylabel(key)
    axes.set_title(title if title is not None else key)
    if log_y:
        axes.set_yscale("log")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.savefig(output, format=file_format, dpi=dpi)
