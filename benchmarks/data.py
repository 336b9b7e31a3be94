"""Input data, built before any timer starts; the same data for trackplug and MLflow."""

from __future__ import annotations

import random

#: The resource (a trackplug resource id; an MLflow run name) that single-run cases use.
RESOURCE = "model-1"
#: The metric that single-series cases log.
KEY = "loss"
#: The metric that ``best`` ranks by.
RANK_KEY = "f1"


def series(n: int, seed: int = 1) -> list[tuple[int, float]]:
    """``n`` points of one metric as ``(step, value)``, steps 0..n-1."""
    rng = random.Random(seed)
    return [(step, rng.random()) for step in range(n)]


def batch_keys(count: int) -> list[str]:
    return [f"metric_{index:03d}" for index in range(count)]


def grid(n: int, keys: int, seed: int = 2) -> list[dict[str, float]]:
    """``n`` points as one ``{key: value}`` dict per step: ``keys`` keys x ``n // keys`` steps."""
    rng = random.Random(seed)
    names = batch_keys(keys)
    return [{name: rng.random() for name in names} for _ in range(n // keys)]


def resource_id(index: int) -> str:
    return f"model-{index:04d}"


def ranked(resources: int, seed: int = 3) -> list[tuple[str, float, float]]:
    """``(resource id, f1, loss)`` for each resource that ``best`` ranks."""
    rng = random.Random(seed)
    return [(resource_id(index), rng.random(), rng.random()) for index in range(resources)]


def best_of(rows: list[tuple[str, float, float]]) -> str:
    """The id of the resource with the greatest f1."""
    return max(rows, key=lambda row: row[1])[0]
