"""The hook specification: lolpop's ``BaseMetricsTracker`` as a pluggy contract.

A backend is a plain object whose methods are marked ``@trackplug.hookimpl``; a plugin
distribution registers a factory for it under a URL scheme (``trackplug_register_backends``).
The five operations of lolpop keep their names (``log_metric``, ``get_metric``,
``log_metrics``, ``copy_metrics``, ``log_prediction_metrics``); reads and lifecycle complete
them. ``docs/semantics.md`` is the long form of these docstrings.

What every backend hook can rely on:

* Arguments arrive validated and normalized by the facade: a :class:`~trackplug.Resource`,
  keys that pass MLflow's rule, values that are Python ``float`` (one canonical NaN),
  steps within signed 64 bits, timestamps in ms. Never raw user input.
* The facade calls each backend on its own (``subset_hook_caller``): reads go to the
  primary backend only, writes go to every backend under that backend's failure policy.
  So each hook answers for one backend, and reads are ``firstresult``.
* Hooks marked *optional* may be left out; the facade then composes them from the
  required ones. Every other hook is required, checked when the tracker opens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

import pluggy

if TYPE_CHECKING:
    from .model import Batch, Capabilities, MetricPoint, PerfRecord, Resource

__all__ = [
    "OPTIONAL_HOOKS",
    "REQUIRED_HOOKS",
    "Register",
    "best",
    "capabilities",
    "close",
    "copy_metrics",
    "flush",
    "get_metric",
    "get_perf",
    "history",
    "hookimpl",
    "hookspec",
    "latest",
    "log_metric",
    "log_metrics",
    "log_prediction_metrics",
    "resources",
    "trackplug_register_backends",
]

hookspec = pluggy.HookspecMarker("trackplug")
hookimpl = pluggy.HookimplMarker("trackplug")

#: ``register(scheme, factory)``: ``factory(url, **options)`` returns a backend object.
Register = Callable[[str, Callable[..., object]], None]


# -- discovery ---------------------------------------------------------------------------


@hookspec
def trackplug_register_backends(register: Register) -> None:
    """Called once when plugins are discovered: call ``register(scheme, factory)`` for each
    URL scheme the plugin serves (``"sqlite"``, ``"mlflow+http"``…). ``factory(url,
    **options)`` builds a backend for a URL; it should import heavy libraries itself, so
    that discovery stays cheap. A scheme registered twice is an error."""


# -- writes: broadcast to every backend, each under its own failure policy ------------------


@hookspec
def log_metric(batch: Batch) -> None:
    """Store a batch of points, grouped by resource in arrival order (lolpop's
    ``log_metric``, batched by the facade). An exact duplicate of a stored point (same
    resource, key, step, timestamp and value bits) is ignored, so replays are idempotent.
    The batch is all-or-nothing where the store allows it."""


@hookspec
def log_metrics(resource: Resource, points: Sequence[MetricPoint], perf: PerfRecord | None) -> None:
    """Store ``points`` for one resource and, unless ``perf`` is None, make ``perf`` its
    performance record (replacing any earlier one), as one atomic write: a failure leaves
    neither. The facade has already flattened lolpop's ``{split: {name: value}}`` into
    ``<split>_<name>`` keys and found the perf value."""


@hookspec(firstresult=True)
def copy_metrics(source: Resource, target: Resource) -> bool | None:
    """*Optional.* Copy the full history (every step and timestamp) and the performance
    record of exactly ``source`` into ``target``, which may already have metrics; keys are
    kept whole. Return True when done natively; without it the facade composes the copy
    from ``latest``, ``history``, ``get_perf`` and ``log_metrics``."""


@hookspec(firstresult=True)
def log_prediction_metrics(job: Resource, points: Sequence[MetricPoint]) -> bool | None:
    """*Optional.* Store the summary metrics of a prediction job (``num_predictions``, the
    class distribution or the distribution's moments and quantiles), computed by the
    facade. Return True when stored; without it the facade calls ``log_metric``."""


# -- reads: answered by the primary backend --------------------------------------------------


@hookspec(firstresult=True)
def get_metric(resource: Resource, key: str) -> float | None:
    """The latest value of ``key``: that of the point with the greatest ``(step,
    timestamp, value)`` in :func:`trackplug.model.point_order`; None if never logged."""


@hookspec(firstresult=True)
def history(resource: Resource, key: str) -> list[MetricPoint]:
    """Every point of ``key`` for ``resource``, ordered by ``point_order``; [] if none."""


@hookspec(firstresult=True)
def latest(resource: Resource) -> dict[str, float]:
    """``{key: latest value}`` for every key of ``resource``; {} if none."""


@hookspec(firstresult=True)
def resources() -> list[str]:
    """The ids of every resource that has at least one metric, sorted."""


@hookspec(firstresult=True)
def get_perf(resource: Resource) -> PerfRecord | None:
    """The performance record ``log_metrics(..., perf)`` last set for ``resource``."""


@hookspec(firstresult=True)
def best(key: str, order: Literal["max", "min"], limit: int) -> list[tuple[str, float]]:
    """Up to ``limit`` ``(resource id, latest value of key)``, best first: by value in
    ``order``, ties by resource id ascending. Resources without ``key``, or whose latest
    value is NaN, are not ranked (MLflow's ``search_runs(order_by=...)``)."""


# -- lifecycle --------------------------------------------------------------------------------


@hookspec(firstresult=True)
def capabilities() -> Capabilities:
    """What this backend keeps and how it deviates; asked once when the tracker opens."""


@hookspec
def flush() -> None:
    """Make every write this backend has accepted durable (the facade's buffer is already
    drained into it)."""


@hookspec
def close() -> None:
    """Flush, then release connections and files. Called once."""


REQUIRED_HOOKS = (
    "log_metric",
    "log_metrics",
    "get_metric",
    "history",
    "latest",
    "resources",
    "get_perf",
    "best",
    "capabilities",
    "flush",
    "close",
)
OPTIONAL_HOOKS = ("copy_metrics", "log_prediction_metrics")
