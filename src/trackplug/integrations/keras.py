"""Keras 3 logs through trackplug: :class:`TrackplugCallback`, a ``keras.callbacks.Callback``.

::

    from trackplug.integrations.keras import TrackplugCallback

    model.fit(x, y, epochs=10, callbacks=[TrackplugCallback("sqlite:///runs.db", name="mlp")])

Each ``model.fit`` is one trackplug run: the optimizer's config (``optimizer/…``), the fit's
parameters (``fit/epochs``, ``fit/steps``…) and the model's name and size are its params;
every epoch's logs (what ``History`` records) metrics at the epoch's index; with
``log_batches=True`` every training batch's logs too, as ``batch/<key>`` at the batch's
number counted across epochs. ``on_train_end`` ends the run ``finished``; Keras tells
callbacks nothing when ``fit`` raises, so that run stays ``running`` until this callback's
next ``fit``, or the interpreter's exit, ends it ``failed``. Works with every Keras backend
(JAX, TensorFlow, torch). Importing this module imports Keras.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._session import Target, TrainingRun, TrainingRunView, flatten_params, metric_values

try:
    import keras
except ModuleNotFoundError as missing:  # pragma: no cover - depends on the environment
    raise ImportError(
        "trackplug.integrations.keras needs Keras 3: pip install 'trackplug[keras]'"
    ) from missing

__all__ = ["TrackplugCallback"]

#: The prefix of batch metrics: they are running means over the epoch so far (what Keras
#: reports per batch), not the epoch's values that History records under the bare key.
BATCH_PREFIX = "batch/"


class TrackplugCallback(TrainingRunView, keras.callbacks.Callback):  # type: ignore[misc]  # Keras is untyped
    """A Keras callback writing each ``fit`` as a trackplug run.

    Args:
        tracker: a trackplug URL, a list of URLs (a fan-out: the first is the primary), a
            :class:`trackplug.Tracker` (flushed after each run, never closed), or None for
            ``trackplug.connect()``'s default.
        name: the runs' name.
        tags: string tags set on every run.
        log_batches: also log every training batch's logs (``batch/<key>``).
        connect_options: passed to ``trackplug.connect`` (``on_error=``, ``outbox=``…).
    """

    def __init__(
        self,
        tracker: Target = None,
        *,
        name: str = "keras",
        tags: Mapping[str, str] | None = None,
        log_batches: bool = False,
        **connect_options: Any,
    ) -> None:
        super().__init__()
        self._training = TrainingRun(tracker, name, tags, connect_options)
        self.log_batches = log_batches
        self._batches = 0

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self._batches = 0
        self._training.start(self._hyperparameters())

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self.log_batches:
            values = metric_values(logs)
            batch_values = {f"{BATCH_PREFIX}{key}": value for key, value in values.items()}
            self._training.log_metrics(batch_values, self._batches)
        self._batches += 1

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._training.log_metrics(metric_values(logs), epoch)

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        self._training.end("success")

    def _hyperparameters(self) -> dict[str, Any]:
        """The optimizer's config, the fit's parameters, the model's name and size."""
        model = self.model
        optimizer = getattr(model, "optimizer", None)
        return flatten_params(
            {
                "optimizer": optimizer.get_config() if optimizer is not None else {},
                "fit": dict(self.params or {}),
                "model": {"name": model.name, "parameters": model.count_params()},
            }
        )
