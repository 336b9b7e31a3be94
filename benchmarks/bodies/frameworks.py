"""The cost of trackplug's framework adapters per training step (issue 18).

One case per framework, run by the harness in a fresh interpreter like every case. Inside
it, the same tiny CPU training runs with each logging variant — no logger, the framework's
own CSV logger, trackplug's adapter on a new SQLite file — one after the other and again
(``Sizes.fit_rounds`` interleaved rounds, each starting with another variant, after one
untimed warm-up of each), logging at every step
(``log_every_n_steps=1``, ``logging_steps=1``; Keras per batch with ``log_batches=True``) as
the worst case. Each round times whole fits of ``size`` steps and of a fifth of that; their
difference over the difference in steps is the **time per step** (what every step costs,
the background flusher's writes included), the rest the **fixed cost per fit** (set-up,
opening the store, the run's start, the final flush and close). Time is the process's CPU
time (every thread's, the flusher's included), with torch on one thread: on a shared
machine wall time moves by tens of percent between fits, far above the 2% this measures.
Each figure is the median of its rounds; ``overhead`` is trackplug's per-step median over
the no-logger one, minus one, ``overhead_vs_csv`` the same over the CSV logger's (Lightning
does logging work of its own, e.g. reading each tensor's value, only when a logger is
attached: CSVLogger pays it too). Beside it, the direct measure: ``hook_us``, the CPU time
of the adapter's per-step hook called with one step's logs (Lightning's ``log_metrics``, the
Trainer's ``on_log``, Keras's ``on_train_batch_end`` with ``log_batches``), run start and
final flush and close included, and ``hook_share``, that over the no-logger step.
What trackplug stored in the last (short) fit is counted against what the framework reported.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from ..worker import Context, Result

#: ``{variant: [(seconds per step, fixed seconds per fit) per round]}``.
Timings = dict[str, list[tuple[float, float]]]


def _timed(fit: Callable[[int], Any], steps: int) -> float:
    """CPU seconds of every thread of this process while ``fit`` runs (the garbage of
    earlier fits collected before, so that no variant pays for another's)."""
    gc.collect()
    start = time.process_time()
    fit(steps)
    return time.process_time() - start


def short_steps(steps: int) -> int:
    """The steps of the short fit of each round: the last fit of every variant."""
    return max(1, steps // 5)


def _interleaved(variants: dict[str, Callable[[int], Any]], context: Context) -> Timings:
    import torch

    torch.set_num_threads(1)  # the same for every variant; idle worker threads spin on CPU
    steps, short = context.size, short_steps(context.size)
    for fit in variants.values():  # warm-up: first-call costs (allocation, dispatch caches)
        fit(short)
    timings: Timings = {name: [] for name in variants}
    names = list(variants)
    for round_ in range(int(context.params.get("fit_rounds", 3))):
        # Each round starts with another variant: no variant always runs first (after the
        # previous round's last one) or last.
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            fit = variants[name]
            long_s, short_s = _timed(fit, steps), _timed(fit, short)
            per_step = (long_s - short_s) / (steps - short)
            timings[name].append((per_step, short_s - short * per_step))
    return timings


#: Calls of an adapter's per-step hook timed directly.
HOOK_CALLS = 5_000


def _hook_cost(
    start: Callable[[], Any], hook: Callable[[int], None], end: Callable[[], None]
) -> float:
    """CPU seconds per call of an adapter's per-step ``hook`` (given the framework's logs of
    one step), its run started before and ended after, the end (flush, close) included."""
    start()
    gc.collect()
    began = time.process_time()
    for step in range(HOOK_CALLS):
        hook(step)
    end()
    return (time.process_time() - began) / HOOK_CALLS


def _result(timings: Timings, reported: int, stored: int, hook_s: float) -> Result:
    """Medians: CPU µs per step and seconds per fit of each variant; each trackplug
    variant's overhead per step (``seconds``: one step of every variant, for the log)."""
    figures: dict[str, float] = {}
    for name, rounds in timings.items():
        figures[f"{name}_step_us"] = statistics.median(r[0] for r in rounds) * 1e6
        figures[f"{name}_fit_s"] = statistics.median(r[1] for r in rounds)
    for name in timings:
        if name.startswith("trackplug"):
            suffix = name.removeprefix("trackplug")
            for base, label in (("none", ""), ("csv", "_vs_csv")):
                if base in timings:
                    overhead = figures[f"{name}_step_us"] / figures[f"{base}_step_us"] - 1
                    figures[f"overhead{suffix}{label}"] = overhead
    # The adapter's own time per step, over the step without a logger: the direct measure,
    # below the end-to-end difference's noise (the same training differs by several % between
    # fits here).
    figures["hook_us"] = hook_s * 1e6
    figures["hook_share"] = figures["hook_us"] / figures["none_step_us"]
    total = sum(figures[f"{name}_step_us"] for name in timings) * 1e-6
    return Result(total, 0, reported, stored, figures)


def _stored(url: str) -> int:
    """Distinct ``(key, step, value)`` points of the last run in the store."""
    import trackplug

    with trackplug.connect(url) as tracker:
        run = tracker.runs()[-1]
        points = {
            (key, point.step, point.value)
            for key in tracker.latest(run.id)
            for point in tracker.history(run.id, key)
        }
    return len(points)


def lightning_steps(context: Context) -> Result:
    """A ``LightningModule`` (linear, 16 features, batches of 32) for ``size`` steps, logging
    ``train_loss`` every step: no logger, ``CSVLogger``, ``TrackplugLogger``."""
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.loggers import CSVLogger
    from torch.utils.data import DataLoader, TensorDataset

    from trackplug.integrations.lightning import TrackplugLogger

    class Regression(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(16, 1)

        def training_step(self, batch: Any, index: int) -> Any:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    data = TensorDataset(torch.randn(1024, 16), torch.randn(1024, 1))
    url = context.trackplug_url()
    csv_dir = context.directory / "csv"

    def fit(logger: Callable[[], Any]) -> Callable[[int], Any]:
        def run(steps: int) -> None:
            trainer = pl.Trainer(
                max_steps=steps,
                logger=logger(),
                log_every_n_steps=1,
                accelerator="cpu",
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                default_root_dir=context.directory,
            )
            trainer.fit(Regression(), DataLoader(data, batch_size=32))

        return run

    timings = _interleaved(
        {
            "none": fit(lambda: False),
            "csv": fit(lambda: CSVLogger(csv_dir)),
            "trackplug": fit(lambda: TrackplugLogger(url, name="bench")),
        },
        context,
    )
    reported = 2 * short_steps(context.size)  # train_loss and epoch at every step of the last
    stored = _stored(url)
    logger = TrackplugLogger(context.trackplug_url("hook"), name="hook")
    hook_s = _hook_cost(
        lambda: logger.experiment,
        lambda step: logger.log_metrics({"train_loss": 0.25, "epoch": 0}, step=step),
        lambda: logger.finalize("success"),
    )
    return _result(timings, reported, stored, hook_s)


def transformers_steps(context: Context) -> Result:
    """A 2-layer BERT from a config (hidden 16, vocab 50) on synthetic token ids, batches
    of 8, for ``size`` steps, logging every step: no callback, ``TrackplugCallback``.
    (The Trainer has no CSV logger of its own.)"""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, Trainer
    from transformers import TrainingArguments as Arguments

    from trackplug.integrations.transformers import TrackplugCallback

    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    ids, labels = torch.randint(1, 50, (256, 8)), torch.randint(0, 2, (256,))
    dataset = [{"input_ids": ids[i], "labels": labels[i]} for i in range(len(labels))]
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
    )  # fmt: skip  (two labels: the default)
    url = context.trackplug_url()
    last: list[Any] = []

    def fit(callbacks: Callable[[], list[Any]]) -> Callable[[int], Any]:
        def run(steps: int) -> None:
            args = Arguments(
                output_dir=str(context.directory / "out"),
                max_steps=steps,
                per_device_train_batch_size=8,
                logging_steps=1,
                report_to="none",
                save_strategy="no",
                use_cpu=True,
                disable_tqdm=True,
            )
            trainer = Trainer(
                model=BertForSequenceClassification(config),
                args=args,
                train_dataset=dataset,
                callbacks=callbacks(),
            )
            trainer.train()
            last[:] = [trainer]

        return run

    timings = _interleaved(
        {
            "none": fit(list),
            "trackplug": fit(lambda: [TrackplugCallback(url, name="bench")]),
        },
        context,
    )
    history = last[0].state.log_history
    reported = len(
        {
            (key, entry["step"], float(value))
            for entry in history
            for key, value in entry.items()
            if key != "step" and isinstance(value, int | float)
        }
    )
    callback = TrackplugCallback(context.trackplug_url("hook"), name="hook")
    trainer, args = last[0], last[0].args
    state, control = trainer.state, trainer.control
    logs = {"loss": 0.69, "grad_norm": 0.4, "learning_rate": 4e-05, "epoch": 0.25}

    def on_log(step: int) -> None:
        state.global_step = step
        callback.on_log(args, state, control, logs=logs)

    hook_s = _hook_cost(
        lambda: callback.on_train_begin(args, state, control, model=trainer.model),
        on_log,
        lambda: callback.on_train_end(args, state, control),
    )
    return _result(timings, reported, _stored(url), hook_s)


def keras_steps(context: Context) -> Result:
    """A dense Keras model (16 → 32 → 1) on the torch backend, batches of 32, for ``size``
    steps as one epoch: no callback, Keras's ``CSVLogger`` (per epoch), ``TrackplugCallback``
    per epoch (like CSVLogger) and with ``log_batches=True`` (every step)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    import numpy as np

    from trackplug.integrations.keras import TrackplugCallback

    rng = np.random.default_rng(0)
    csv_path = str(context.directory / "keras.csv")
    url = context.trackplug_url()
    batch_url = context.trackplug_url("batches")

    def fit(callbacks: Callable[[], list[Any]]) -> Callable[[int], Any]:
        def run(steps: int) -> None:
            x = rng.normal(size=(32 * steps, 16)).astype("float32")
            y = rng.normal(size=(32 * steps, 1)).astype("float32")
            model = keras.Sequential(
                [keras.Input((16,)), keras.layers.Dense(32, activation="relu"),
                 keras.layers.Dense(1)]
            )  # fmt: skip
            model.compile(optimizer="sgd", loss="mse")
            model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=callbacks())

        return run

    timings = _interleaved(
        {
            "none": fit(list),
            "csv": fit(lambda: [keras.callbacks.CSVLogger(csv_path)]),
            "trackplug": fit(lambda: [TrackplugCallback(url, name="bench")]),
            "trackplug_batches": fit(
                lambda: [TrackplugCallback(batch_url, name="bench", log_batches=True)]
            ),
        },
        context,
    )
    # the last fits' epoch loss; with batches, every batch's too
    reported = 1 + (1 + short_steps(context.size))
    stored = _stored(url) + _stored(batch_url)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    callback = TrackplugCallback(context.trackplug_url("hook"), name="hook", log_batches=True)
    callback.set_model(model)
    callback.set_params({"epochs": 1, "steps": HOOK_CALLS, "verbose": 0})
    hook_s = _hook_cost(
        callback.on_train_begin,
        lambda step: callback.on_train_batch_end(step, {"loss": 0.5}),
        callback.on_train_end,
    )
    return _result(timings, reported, stored, hook_s)
