"""What the framework adapters (Lightning, transformers, Keras) share, in one place.

- :func:`open_target`: a URL, several URLs (a fan-out) or an existing
  :class:`~trackplug.Tracker` becomes a tracker, and whether the adapter owns it (opened it,
  so closes it) or only borrows it (flushes it, never closes it).
- :func:`flatten_params`: hyperparameters (nested mappings, ``Namespace``, dataclasses,
  lists of mappings) flattened the way Lightning's own loggers do (``{"a": {"b": 1}}`` →
  ``{"a/b": 1}``), each value made a param trackplug keeps (a JSON scalar, at most 6,000
  characters) and each key a valid key.
- :func:`metric_values`: a framework's logs reduced to what a metric can be (real numbers).
- :class:`TrainingRun`: one training run — the tracker, the trackplug run, its params and
  metrics, and its end with the framework's word for it mapped by :data:`STATUSES`. A run
  that a training which raised never ended is ended ``failed`` when the next one starts,
  when the adapter is closed, or when the interpreter exits (before the trackers close,
  which would call it ``finished``).

Nothing here imports a framework.
"""

from __future__ import annotations

import atexit
import math
import numbers
import re
import warnings
import weakref
from collections.abc import Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from .. import Tracker, TrackplugWarning, ValidationError, connect
from .._params import MAX_PARAM_LENGTH
from .._validation import _CONTROL_CHARS, _key_problem

if TYPE_CHECKING:
    from .._model import ParamValue
    from .._runs import Run

__all__ = [
    "STATUSES",
    "Target",
    "TrainingRun",
    "flatten_params",
    "metric_values",
    "open_target",
    "run_status",
    "safe_key",
]

#: Where an adapter writes: a URL, several URLs (the first is the primary), a tracker, or
#: None for ``trackplug.connect()``'s default (``$TRACKPLUG_URL``, else SQLite).
Target: TypeAlias = str | Sequence[str] | Tracker | None

EndStatus = Literal["finished", "failed", "killed"]
#: The frameworks' words for how training ended, as a run's status. Lightning says
#: ``success``, ``failed`` or ``finished`` (SLURM requeue); ``interrupted`` (Ctrl-C) is
#: ``failed``, as a ``with start_run()`` block that Ctrl-C leaves is.
STATUSES: dict[str, EndStatus] = {
    "success": "finished",
    "finished": "finished",
    "failed": "failed",
    "interrupted": "failed",
    "killed": "killed",
}


def run_status(status: str) -> EndStatus:
    """``status`` (a framework's word, see :data:`STATUSES`) as a run's end status."""
    try:
        return STATUSES[status]
    except KeyError:
        known = ", ".join(sorted(STATUSES))
        raise ValidationError(f"run status {status!r} is not one of {known}") from None


def open_target(target: Target, **connect_options: Any) -> tuple[Tracker, bool]:
    """``(tracker, owned)``: a given tracker as it is (not owned), else a new one on the
    URL(s) (owned: the adapter closes it)."""
    if isinstance(target, Tracker):
        if connect_options:
            raise ValidationError(
                f"options {sorted(connect_options)} are for opening a tracker from URLs; "
                "this tracker is already open"
            )
        return target, False
    if target is None:
        return connect(**connect_options), True
    urls = [target] if isinstance(target, str) else list(target)
    if not urls or not all(isinstance(url, str) for url in urls):
        raise ValidationError(
            f"a tracker target is a URL, a list of URLs or a trackplug.Tracker, not {target!r}"
        )
    return connect(*urls, **connect_options), True


# -- params -----------------------------------------------------------------------------------

_BAD_KEY_CHARS = re.compile(r"[^/\w.\- :]")


#: Keys already made safe: a framework logs the same few keys at every step.
_safe_keys: dict[object, str | None] = {}


def safe_key(key: object) -> str | None:
    """``key`` as a valid trackplug key: characters outside ``[/\\w.\\- :]`` become ``_``
    (as MLflow's Lightning logger strips them); None when it still breaks the key rule
    (empty, too long, ``..``)."""
    try:
        return _safe_keys[key]
    except (KeyError, TypeError):  # new, or unhashable
        pass
    text = _BAD_KEY_CHARS.sub("_", str(key)).lstrip("/")
    safe = None if _key_problem(text) else text
    if type(key) is str and len(_safe_keys) < 4096:
        _safe_keys[key] = safe
    return safe


def flatten_params(params: object, delimiter: str = "/") -> dict[str, ParamValue]:
    """Hyperparameters as params: nested mappings, ``Namespace`` and dataclasses flattened
    with ``delimiter`` (a list of mappings by index), as Lightning's ``_flatten_dict`` does;
    each value a JSON scalar (see :func:`param_value`); keys made valid by :func:`safe_key`.
    A key that cannot be made valid is left out, with a warning naming it."""
    flat: dict[str, ParamValue] = {}
    dropped: list[str] = []
    for key, value in _flatten(_as_mapping(params), delimiter, "").items():
        safe = safe_key(key)
        if safe is None:
            dropped.append(key)
        else:
            flat[safe] = param_value(safe, value)
    if dropped:
        warnings.warn(
            f"hyperparameters {dropped} were not logged: their names cannot be param keys "
            "(1 to 250 characters, no '..')",
            TrackplugWarning,
            stacklevel=2,
        )
    return flat


def _as_mapping(value: object) -> Mapping[Any, Any] | None:
    """A mapping's, Namespace's or dataclass instance's fields; None for anything else."""
    from dataclasses import asdict, is_dataclass

    if isinstance(value, Mapping):
        return value
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if type(value).__name__ == "Namespace" and hasattr(value, "__dict__"):
        return vars(value)  # argparse's, or any Namespace of that shape
    return None


def _flatten(params: Mapping[Any, Any] | None, delimiter: str, parent: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in (params or {}).items():
        name = f"{parent}{delimiter}{key}" if parent else str(key)
        nested = _as_mapping(value)
        if nested is not None:
            flat.update(_flatten(nested, delimiter, name))
        elif _mappings(value):
            for index, item in enumerate(value):
                flat.update(_flatten(item, delimiter, f"{name}{delimiter}{index}"))
        else:
            flat[name] = value
    return flat


def _mappings(value: object) -> bool:
    """A non-empty list of mappings (Lightning flattens it by index)."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, MutableMapping) for v in value)
    )


def param_value(key: str, value: object) -> ParamValue:
    """A JSON scalar as it is; a numpy or torch scalar as its Python number; anything else
    (a list, an enum, a class, NaN) as its ``str()``, as Lightning's ``_sanitize_params``
    does. Control characters but newlines (which no store can keep) become U+FFFD; text
    past MLflow's 6,000 characters is cut there, with a warning."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()  # a numpy or torch scalar
    if value is None or isinstance(value, bool | str | int):
        scalar: ParamValue = value
    elif isinstance(value, numbers.Real) and math.isfinite(float(value)):
        scalar = float(value)
    else:
        scalar = str(value)
    if isinstance(scalar, str):
        scalar = _CONTROL_CHARS.sub(_printable, scalar)
    if isinstance(scalar, str) and len(scalar) > MAX_PARAM_LENGTH:
        warnings.warn(
            f"hyperparameter {key!r} is {len(scalar)} characters long: its first "
            f"{MAX_PARAM_LENGTH} (MLflow's limit for a param) were logged",
            TrackplugWarning,
            stacklevel=3,
        )
        scalar = scalar[:MAX_PARAM_LENGTH]
    return scalar


def _printable(match: re.Match[str]) -> str:
    return match[0] if match[0] == "\n" else "\ufffd"


# -- metrics ----------------------------------------------------------------------------------


def metric_values(logs: Mapping[str, object] | None) -> dict[str, float]:
    """The real numbers of a framework's ``logs`` (Python, numpy or torch scalars), under
    valid keys; text, booleans, None and arrays are not metrics and are left out."""
    found: dict[str, float] = {}
    for key, value in (logs or {}).items():
        if type(value) is not float and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            value = value.item()
        if type(value) is float or (
            isinstance(value, numbers.Real) and not isinstance(value, bool)
        ):
            name = safe_key(key)
            if name is not None:
                found[name] = float(value)
    return found


# -- runs -------------------------------------------------------------------------------------


class TrainingRun:
    """One run of one adapter at a time, on the tracker its target names.

    :meth:`start` opens the tracker (when the adapter owns it) and starts a run;
    :meth:`end` ends it with a framework's status and closes an owned tracker (a borrowed
    one is flushed), so everything is durable when training returns. The next
    :meth:`start` opens a new run.
    """

    def __init__(
        self,
        target: Target,
        name: str,
        tags: Mapping[str, str] | None = None,
        connect_options: Mapping[str, Any] | None = None,
    ) -> None:
        from .._runs import check_run_name

        self.target = target
        self.name = check_run_name(name)
        self.tags = dict(tags or {})
        self.connect_options = dict(connect_options or {})
        #: The run being logged to, None between runs.
        self.run: Run | None = None
        #: The id of the last run started (kept after it ends: Lightning's ``version``).
        self.last_id: str | None = None
        self._tracker: Tracker | None = None
        self._owned = False

    @property
    def tracker(self) -> Tracker | None:
        """The tracker of the current run (None between runs of an owned tracker)."""
        return self._tracker

    def start(self, params: Mapping[str, ParamValue] | None = None) -> Run:
        """A new run (ending one a raising training left open as ``failed``)."""
        if self.run is not None:
            self.end("failed")
        self._tracker, self._owned = open_target(self.target, **self.connect_options)
        try:
            self.run = self._tracker.start_run(self.name, params=params, tags=self.tags)
        except BaseException:
            self._release()
            raise
        self.last_id = self.run.id
        _open_runs.add(self)
        return self.run

    def log_params(self, params: Mapping[str, ParamValue]) -> None:
        if self.run is not None and params:
            self.run.log_params(params)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None) -> None:
        """Log at ``step`` (None: the run's next step)."""
        if self.run is None or not metrics:
            return
        if step is None:
            self.run.log_metrics(metrics)
            return
        # The framework's step, so the run's step counters are not needed; one point at a
        # time, which the buffer batches (a log_metrics call is a write of its own, all or
        # nothing: ~10x the cost into SQLite, and these values are checked already).
        log, run_id = self.run.tracker.log_metric, self.run.id
        for key, value in metrics.items():
            log(run_id, key, value, step=step)

    def end(self, status: str) -> None:
        """End the run with ``status`` (a framework's word, :data:`STATUSES`); nothing when
        no run is open. An owned tracker is closed, a borrowed one flushed."""
        end_status = run_status(status)
        run, self.run = self.run, None
        _open_runs.discard(self)
        if run is None:
            return
        try:
            run.end(end_status)
        finally:
            self._release()

    def log_after_end(self, metrics: Mapping[str, float], step: int | None) -> None:
        """Metrics that come when no run is open (an evaluation after training): into the
        last run, or, before any, into a run of their own, ended at once."""
        if not metrics:
            return
        if self.last_id is None:
            self.start()
            self.log_metrics(metrics, step)
            self.end("success")
            return
        tracker, owned = open_target(self.target, **self.connect_options)
        try:
            tracker.log_metrics(self.last_id, metrics, step=step or 0)
        finally:
            _release(tracker, owned)

    def _release(self) -> None:
        tracker, self._tracker = self._tracker, None
        if tracker is not None:
            _release(tracker, self._owned)


class TrainingRunView:
    """What a callback shows of its :class:`TrainingRun` (``self._training``)."""

    _training: TrainingRun

    @property
    def run(self) -> Run | None:
        """The open :class:`trackplug.Run`, or None outside training."""
        return self._training.run

    @property
    def last_run_id(self) -> str | None:
        """The id of the run of the last training (kept after it ends)."""
        return self._training.last_id


def _release(tracker: Tracker, owned: bool) -> None:
    """Close a tracker the adapter opened; flush one it was given."""
    if owned:
        tracker.close()
    else:
        tracker.flush()


#: Runs started and not ended: a training that raised never ends its run.
_open_runs: weakref.WeakSet[TrainingRun] = weakref.WeakSet()


@atexit.register
def _fail_open_runs() -> None:
    """At exit, a run whose training never ended it is ``failed``. Registered after the
    trackers' own exit handler, so it runs first (atexit runs in reverse order)."""
    for training in list(_open_runs):
        try:
            training.end("failed")
        except Exception as exc:  # the trackers' handler still closes the rest
            message = f"run {training.last_id} could not be ended: {exc}"
            warnings.warn(message, TrackplugWarning, stacklevel=1)
