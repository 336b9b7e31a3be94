"""Hugging Face ``transformers.Trainer`` logs through trackplug: :class:`TrackplugCallback`.

::

    from trackplug.integrations.transformers import TrackplugCallback

    Trainer(model, args, train_dataset=..., callbacks=[TrackplugCallback("sqlite:///runs.db")])
    # or, with $TRACKPLUG_URL (else sqlite:///trackplug.db), as the Trainer's other trackers:
    TrainingArguments(..., report_to="trackplug")   # after importing this module

Each ``trainer.train()`` is one trackplug run: the ``TrainingArguments`` (``to_dict()``, hub
tokens masked) and the model's config (under ``model/``) are its params, every ``on_log`` a
set of metrics at ``state.global_step`` (exactly what ``trainer.state.log_history`` records),
``on_train_end`` its end (``finished``). The Trainer tells callbacks nothing when training
raises: that run stays ``running`` until this callback's next ``train()``, or the
interpreter's exit, ends it ``failed``. Metrics logged outside ``train()`` (a later
``trainer.evaluate()``) go to the last training's run. Only the main process
(``state.is_world_process_zero``) writes. Importing this module imports transformers and
adds ``"trackplug"`` to the Trainer's ``report_to`` names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._session import Target, TrainingRun, TrainingRunView, flatten_params, metric_values, safe_key

try:
    from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
    from transformers.integrations import integration_utils
except ModuleNotFoundError as missing:  # pragma: no cover - depends on the environment
    raise ImportError(
        "trackplug.integrations.transformers needs transformers: "
        "pip install 'trackplug[transformers]'"
    ) from missing

__all__ = ["REPORT_TO", "TrackplugCallback"]

#: The name that selects this callback in ``TrainingArguments(report_to=...)``.
REPORT_TO = "trackplug"
DEFAULT_NAME = "transformers"


class TrackplugCallback(TrainingRunView, TrainerCallback):
    """A ``TrainerCallback`` writing each ``train()`` as a trackplug run.

    Args:
        tracker: a trackplug URL, a list of URLs (a fan-out: the first is the primary), a
            :class:`trackplug.Tracker` (flushed after each run, never closed), or None for
            ``trackplug.connect()``'s default (``$TRACKPLUG_URL``, else SQLite) — what
            ``report_to="trackplug"`` uses.
        name: the runs' name; default ``args.run_name`` where it is a valid run name, else
            ``"transformers"``.
        tags: string tags set on every run.
        connect_options: passed to ``trackplug.connect`` (``on_error=``, ``outbox=``…).
    """

    def __init__(
        self,
        tracker: Target = None,
        *,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        **connect_options: Any,
    ) -> None:
        self._name = name
        self._training = TrainingRun(tracker, name or DEFAULT_NAME, tags, connect_options)

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: Any = None,
        **kwargs: Any,
    ) -> None:
        if not state.is_world_process_zero:
            return
        if self._name is None:
            self._training.name = _run_name(args.run_name)
        self._training.start(_params(args, model))

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not state.is_world_process_zero:
            return
        values = metric_values(logs)
        if self._training.run is not None:
            self._training.log_metrics(values, state.global_step)
        else:
            self._training.log_after_end(values, state.global_step)

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if state.is_world_process_zero:
            self._training.end("success")


def _run_name(run_name: str | None) -> str:
    """``args.run_name`` when it makes a valid run name, else ``"transformers"``."""
    from .._runs import MAX_NAME_LENGTH

    name = safe_key(run_name) if run_name else None
    return name if name and len(name) <= MAX_NAME_LENGTH else DEFAULT_NAME


def _params(args: TrainingArguments, model: Any) -> dict[str, Any]:
    """The arguments (``to_dict()`` masks hub tokens) and the model's config under ``model/``."""
    config = getattr(model, "config", None)
    return {
        **flatten_params(args.to_dict()),  # type: ignore[no-untyped-call]
        **flatten_params({"model": config.to_dict()} if config is not None else {}),
    }


def _register() -> None:
    """``report_to="trackplug"``: the Trainer looks names up in this table when it is built
    (``get_reporting_integration_callbacks``) and builds the callback with no argument."""
    integration_utils.INTEGRATION_TO_CALLBACK.setdefault(REPORT_TO, TrackplugCallback)


_register()
