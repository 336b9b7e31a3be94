"""PyTorch Lightning logs through trackplug: :class:`TrackplugLogger`, a Lightning ``Logger``.

::

    from lightning.pytorch import Trainer
    from lightning.pytorch.loggers import CSVLogger
    from trackplug.integrations.lightning import TrackplugLogger

    logger = TrackplugLogger("sqlite:///runs.db", name="mnist")   # or URLs, or a Tracker
    Trainer(logger=[logger, CSVLogger("logs")]).fit(model)

Each ``trainer.fit`` (and each ``validate``, ``test`` or ``predict`` call, which Lightning
finalizes the same way) is one trackplug run named ``name``: the module's and datamodule's
hyperparameters are its params, every ``self.log``-ged value a metric at the trainer's step,
and ``finalize`` its end (``success`` → ``finished``, ``failed`` → ``failed``). Only global
rank zero opens a tracker and writes (``rank_zero_only``), as Lightning's own loggers do.
Importing this module imports Lightning.
"""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Mapping
from typing import Any

from ._session import Target, TrainingRun, flatten_params, metric_values

try:
    from lightning.fabric.loggers.logger import rank_zero_experiment
    from lightning.fabric.utilities.logger import _add_prefix, _convert_params
    from lightning.fabric.utilities.rank_zero import rank_zero_only
    from lightning.pytorch.loggers.logger import Logger
except ModuleNotFoundError as missing:  # pragma: no cover - depends on the environment
    raise ImportError(
        "trackplug.integrations.lightning needs Lightning: pip install 'trackplug[lightning]' "
        "(or pip install lightning)"
    ) from missing

__all__ = ["TrackplugLogger"]


class TrackplugLogger(Logger):
    """A Lightning logger writing runs to trackplug.

    Args:
        tracker: a trackplug URL, a list of URLs (a fan-out: the first is the primary), a
            :class:`trackplug.Tracker` (flushed at the end of each run, never closed), or
            None for ``trackplug.connect()``'s default. A tracker opened from URLs is opened
            when a run starts and closed when it ends.
        name: the runs' name (a run id is ``<name>-<UTC start>-<4 hex>``).
        tags: string tags set on every run.
        prefix: put before every metric key, with ``-`` (as Lightning's loggers do).
        connect_options: passed to ``trackplug.connect`` (``on_error=``, ``outbox=``,
            ``experiment=`` for MLflow…).
    """

    LOGGER_JOIN_CHAR = "-"

    def __init__(
        self,
        tracker: Target = None,
        *,
        name: str = "lightning",
        tags: Mapping[str, str] | None = None,
        prefix: str = "",
        **connect_options: Any,
    ) -> None:
        super().__init__()
        self._training = TrainingRun(tracker, name, tags, connect_options)
        self._prefix = prefix

    @property
    def name(self) -> str:
        """The runs' name (checkpoints go under ``<default_root_dir>/<name>/<version>``)."""
        return self._training.name

    @property
    def version(self) -> str:
        """The id of the current (or last) run; starts one on rank zero if none has been.
        Other ranks answer ``""``: Lightning takes the checkpoint directory from rank zero."""
        if self._training.last_id is None:
            _ = self.experiment
        return self._training.last_id or ""

    @property
    def save_dir(self) -> str | None:
        """None: trackplug keeps nothing in a directory of the logger's (Lightning then puts
        checkpoints under the trainer's ``default_root_dir``)."""
        return None

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The open :class:`trackplug.Run` (started here if none is): log to it directly,
        e.g. ``self.logger.experiment.set_tags({...})``. Other ranks get a dummy."""
        return self._training.run or self._training.start()

    @property
    def tracker(self) -> Any:
        """The tracker of the open run, or None between runs."""
        return self._training.tracker

    @rank_zero_only
    def log_hyperparams(
        self, params: dict[str, Any] | Namespace | None, *args: Any, **kwargs: Any
    ) -> None:
        """Params of the run: nested dicts, Namespaces and dataclasses flattened with
        ``/`` (``{"opt": {"lr": 0.1}}`` → ``opt/lr``), values as Lightning's loggers keep
        them (JSON scalars; anything else as its ``str()``). Write-once: the same value
        again is a no-op, another raises :class:`trackplug.ParamConflictError`."""
        flat = flatten_params(_convert_params(params))
        _ = self.experiment
        self._training.log_params(flat)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Every real number of ``metrics`` at ``step`` (None: the run's next step)."""
        if self._prefix:
            metrics = _add_prefix(metrics, self._prefix, self.LOGGER_JOIN_CHAR)
        values = metric_values(metrics)
        _ = self.experiment
        self._training.log_metrics(values, step)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """End the run: ``success``/``finished`` → ``finished``, ``failed`` (an exception,
        Ctrl-C included) → ``failed``. Its tracker is closed (or flushed, if given)."""
        self._training.end(status)
