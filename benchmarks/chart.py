"""The PNG of the headline ratios: how many times better trackplug is than the MLflow way."""

from __future__ import annotations

from pathlib import Path

from .cases import BY_NAME
from .report import fmt_ratio
from .stats import Summaries, advantage

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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return True
