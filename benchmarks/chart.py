"""The PNGs: the headline ratios (how many times better trackplug is than the MLflow way),
and the scaling curves of a ``--scale`` run (time and peak memory per point against size)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from .cases import BY_NAME, CASES
from .report import fmt_ratio
from .sizes import Sizes
from .stats import Summaries, advantage

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: (bar label, case, figure): each bar compares the case with its ``versus`` case.
HEADLINES = (
    ("log_metric per point, SQLite", "tp-sqlite-log-metric", "points_per_s"),
    ("log_metric per point, PostgreSQL", "tp-postgresql-log-metric", "points_per_s"),
    ("log_metric per point, memory", "tp-memory-log-metric", "points_per_s"),
    ("log_metric p99 latency, SQLite", "tp-sqlite-latency", "p99_us"),
    ("batch logging, SQLite", "tp-sqlite-batch-loop", "points_per_s"),
    ("history of one metric, SQLite", "tp-sqlite-history", "seconds"),
    ("best of N resources, SQLite", "tp-sqlite-best", "seconds"),
    ("fresh process to first point, SQLite", "tp-sqlite-startup", "seconds"),
    ("MLflow backend vs lolpop-style", "tp-mlflow-log-metric", "points_per_s"),
    ("MLflow backend vs raw log_batch", "tp-mlflow-batch-loop", "points_per_s"),
)


def headline_ratios(summaries: Summaries) -> list[tuple[str, float]]:
    bars = []
    for label, case, figure in HEADLINES:
        ratio = advantage(summaries, case, BY_NAME[case].versus, figure)
        if ratio is not None:
            bars.append((label, ratio))
    return bars


def draw(summaries: Summaries, path: Path, subtitle: str) -> bool:
    """Write the chart to ``path``; False (nothing written) when no ratio was measured."""
    bars = headline_ratios(summaries)
    if not bars:
        return False
    plt = _pyplot()
    labels, ratios = zip(*reversed(bars), strict=True)
    figure, axes = plt.subplots(figsize=(9, 0.45 * len(bars) + 1.4), dpi=110)
    colors = ["#2a7ab9" if ratio >= 1 else "#c0504d" for ratio in ratios]
    axes.barh(labels, ratios, color=colors)
    axes.set_xscale("log")
    axes.axvline(1, color="black", linewidth=0.8)
    for index, ratio in enumerate(ratios):
        axes.text(ratio, index, f" {fmt_ratio(ratio)}", va="center", fontsize=9)
    axes.set_xlim(right=max(ratios) * 6)
    axes.set_xlabel("times better than the MLflow way (ratio of medians, log scale)")
    axes.set_title(f"trackplug vs MLflow, same machine, same run\n{subtitle}", fontsize=10)
    _save(figure, path)
    return True


def scaling_curves(summaries: Summaries, sizes: Sizes) -> dict[str, list[tuple[int, float, float]]]:
    """label -> ``(points, µs per point, peak MiB)`` of each scaling case that ran, by size."""
    curves: dict[str, list[tuple[int, float, float]]] = {}
    for case in CASES:
        figures = summaries.get(case.name)
        if case.slow and figures:
            points = getattr(sizes, case.size)
            per_point = figures["seconds"].median / points * 1e6
            curves.setdefault(case.label, []).append(
                (points, per_point, figures["peak_rss_mib"].median)
            )
    return curves


def draw_scaling(summaries: Summaries, sizes: Sizes, path: Path, subtitle: str) -> bool:
    """Time per point and peak memory against the size, a line per store and work (log
    scales: a flat time per point is linear growth); False when no scaling case ran."""
    curves = scaling_curves(summaries, sizes)
    if not curves:
        return False
    plt = _pyplot()
    figure, (times, memory) = plt.subplots(1, 2, figsize=(11, 4.6), dpi=110)
    styles = {"iter_history": ":", "history": "--"}  # the first match: iter_ before history
    for label, points in curves.items():
        sizes_, per_point, peak = zip(*sorted(points), strict=True)
        color = "#2a7ab9" if label.startswith("SQLite") else "#d98b2b"
        style = next((line for work, line in styles.items() if work in label), "-")
        for axes, values in ((times, per_point), (memory, peak)):
            axes.plot(sizes_, values, style, color=color, marker="o", label=label)
    times.set(
        xscale="log",
        yscale="log",
        xlabel="points in the series",
        ylabel="µs per point (median)",
        title="time per point (flat = linear)",
    )
    memory.set(
        xscale="log",
        yscale="log",
        xlabel="points in the series",
        ylabel="MiB above start (median)",
        title="peak resident memory",
    )
    memory.legend(fontsize=8)
    figure.suptitle(f"trackplug at scale, one machine\n{subtitle}", fontsize=10)
    _save(figure, path)
    return True


def _pyplot() -> ModuleType:
    """pyplot on the Agg backend (no display), imported only when a chart is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
