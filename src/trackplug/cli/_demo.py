"""``trackplug demo``: a small simulated training run, logged through the public API.

A few models train for some epochs; each epoch logs lolpop-style nested metrics
(``{"train": {...}, "valid": {...}}``, stored as ``train_loss``, ``valid_f1``…) with
``f1`` as the performance metric, plus the learning rate with ``log_metric``. The best
model then labels a batch of rows, summarized with ``log_prediction_metrics``.

Curves come from a seeded ``random.Random``, and the clock is simulated too: a run starts
at 2025-01-01 00:00 UTC plus ``seed`` days, one hour per model, one minute per epoch. So
running the demo again with the same seed logs exactly the same training points, which
collapse with the ones already stored (only the prediction job, timestamped now by
``log_prediction_metrics``, gains a point per metric).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from .._tracker import Tracker

__all__ = ["MODELS", "PERF_KEY", "DemoRun", "Model", "simulate"]

START_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
#: The key that ranks demo models: the valid split of the perf metric ``f1``.
PERF_KEY = "valid_f1"
LABELS = ("cat", "dog", "bird")
JOB = "demo/predictions"


@dataclass(frozen=True)
class Model:
    """A simulated model: how good it gets, how fast, and its first learning rate."""

    name: str
    ceiling: float
    speed: float
    learning_rate: float

    @property
    def resource(self) -> str:
        return f"demo/{self.name}"


MODELS = (
    Model("logreg", 0.74, 0.60, 0.1),
    Model("mlp", 0.86, 0.35, 0.01),
    Model("cnn", 0.93, 0.25, 0.003),
    Model("gbt", 0.89, 0.50, 0.05),
    Model("rnn", 0.82, 0.20, 0.001),
    Model("vit", 0.95, 0.15, 0.0003),
)


@dataclass(frozen=True)
class DemoRun:
    """What :func:`simulate` logged."""

    resources: list[str]
    epochs: int
    points: int
    job: str
    predictions: dict[str, float]


def simulate(
    tracker: Tracker, models: int = 3, epochs: int = 10, rows: int = 500, seed: int = 0
) -> DemoRun:
    """Log ``models`` x ``epochs`` of training and one prediction job of ``rows`` rows."""
    rng = random.Random(seed)
    chosen = MODELS[:models]
    points = 0
    for index, model in enumerate(chosen):
        start = START_MS + seed * DAY_MS + index * HOUR_MS
        for epoch in range(1, epochs + 1):
            points += _train_epoch(tracker, model, epoch, epochs, start, rng)
    leader = max(chosen, key=lambda m: tracker.get_metric(m.resource, PERF_KEY) or 0.0)
    labels = rng.choices(LABELS, weights=_label_weights(leader), k=rows)
    summary = tracker.log_prediction_metrics(JOB, labels)
    tracker.flush()
    return DemoRun([m.resource for m in chosen], epochs, points + len(summary), JOB, summary)


def _train_epoch(
    tracker: Tracker, model: Model, epoch: int, epochs: int, start: int, rng: random.Random
) -> int:
    """Log one epoch of ``model``; returns how many points that was."""
    timestamp = start + epoch * MINUTE_MS
    metrics = {split: _split_metrics(model, epoch, split, rng) for split in ("train", "valid")}
    tracker.log_metrics(model.resource, metrics, perf_metric="f1", step=epoch, timestamp=timestamp)
    rate = model.learning_rate * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / epochs))
    tracker.log_metric(model.resource, "learning_rate", rate, step=epoch, timestamp=timestamp)
    return sum(len(m) for m in metrics.values()) + 1


def _split_metrics(model: Model, epoch: int, split: str, rng: random.Random) -> dict[str, float]:
    """Loss falls and accuracy rises towards the model's ceiling; valid lags train and
    starts to overfit late."""
    progress = 1 - math.exp(-model.speed * epoch)
    chance = 1 / len(LABELS)
    gap = 0.0 if split == "train" else 0.03 + 0.002 * max(0, epoch - 12)
    noise = 0.008 if split == "train" else 0.015
    accuracy = chance + (model.ceiling - chance) * progress - gap + rng.gauss(0, noise)
    loss = 1.1 * (1 - progress) + (1 - model.ceiling) * 0.8 + 2 * gap + rng.gauss(0, noise)
    f1 = accuracy - 0.015 + rng.gauss(0, noise / 2)
    return {"loss": max(loss, 0.01), "accuracy": _unit(accuracy), "f1": _unit(f1)}


def _unit(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def _label_weights(model: Model) -> list[float]:
    """A slightly unbalanced class distribution; better models are a bit more balanced."""
    skew = 1 - model.ceiling
    return [0.45 + skew, 0.35, 0.20 - skew / 2]
