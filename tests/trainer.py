"""Code under test for trackplug.testing's tests: training code as users write it, each
function opening its own tracker the way real code does — a URL in its source, the
environment, a fan-out, threads. Nothing here knows it is being tested."""

from __future__ import annotations

import math
import random
import threading

import trackplug

#: Where this code logs in production. Nothing listens on port 1 here: if a test let a
#: tracker reach it, connecting would fail.
TRACKING_URL = "mlflow+http://127.0.0.1:1?experiment=fraud"


def make_data(n: int = 200, seed: int = 0) -> list[tuple[float, float, int]]:
    """Two features; the label is 1 when a noisy line is crossed."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        x, y = rng.uniform(-1, 1), rng.uniform(-1, 1)
        rows.append((x, y, int(x + 0.5 * y + rng.gauss(0, 0.2) > 0)))
    return rows


def f1(weights: tuple[float, float, float], rows: list[tuple[float, float, int]]) -> float:
    tp = fp = fn = 0
    for x, y, label in rows:
        predicted = int(weights[0] * x + weights[1] * y + weights[2] > 0)
        tp += predicted and label
        fp += predicted and not label
        fn += label and not predicted
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def train(
    model_id: str = "sgd-1",
    epochs: int = 10,
    learning_rate: float = 0.5,
    url: str = TRACKING_URL,
) -> tuple[float, float, float]:
    """Logistic regression by SGD; logs the loss per epoch and train/valid F1."""
    rows = make_data()
    train_rows, valid_rows = rows[:150], rows[150:]
    w = [0.0, 0.0, 0.0]
    with trackplug.connect(url) as tracker:
        for epoch in range(epochs):
            loss = 0.0
            for x, y, label in train_rows:
                p = 1 / (1 + math.exp(-(w[0] * x + w[1] * y + w[2])))
                loss -= math.log(p if label else 1 - p)
                for i, feature in enumerate((x, y, 1.0)):
                    w[i] -= learning_rate * (p - label) * feature / len(train_rows)
            tracker.log_metric(model_id, "loss", loss / len(train_rows), step=epoch)
            weights = (w[0], w[1], w[2])
            scores = {"f1": f1(weights, train_rows)}, {"f1": f1(weights, valid_rows)}
            tracker.log_metrics(
                model_id,
                {"train": scores[0], "valid": scores[1]},
                perf_metric="f1",
                step=epoch,
            )
    return weights


def train_from_environment(model_id: str = "env-1") -> None:
    """Logs wherever ``$TRACKPLUG_URL`` says (else the SQLite default), never closing."""
    tracker = trackplug.connect(flush_interval=3600.0)  # points wait in its buffer
    for step in range(5):
        tracker.log_metric(model_id, "loss", 1 / (step + 1), step=step)


def train_everywhere(model_id: str = "fan-1") -> None:
    """A fan-out: a local SQLite file and the team's MLflow server."""
    with trackplug.connect("sqlite:///runs.db", TRACKING_URL) as tracker:
        for step in range(3):
            tracker.log_metric(model_id, "loss", 1 / (step + 1), step=step)


def grid_search(learning_rates: list[float], epochs: int = 3) -> None:
    """One thread per learning rate, each training with its own tracker, and a shared
    tracker that the threads report their final F1 to."""
    with trackplug.connect(TRACKING_URL) as summary:

        def run(rate: float) -> None:
            model_id = f"lr-{rate}"
            train(model_id, epochs=epochs, learning_rate=rate)
            summary.log_metric("grid", f"valid_f1.{model_id}", f1_of(model_id))

        def f1_of(model_id: str) -> float:
            with trackplug.connect(TRACKING_URL) as reader:  # reads what train() logged
                value = reader.get_metric(model_id, "valid_f1")
            return value if value is not None else math.nan

        threads = [threading.Thread(target=run, args=(rate,)) for rate in learning_rates]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
