"""trackplug-mlflow: trackplug's MLflow backend, and a drop-in for lolpop's tracker.

A trackplug plugin like any third-party one: the entry point ``mlflow`` (group
``trackplug``) names this module, whose hook registers the MLflow schemes::

    import trackplug

    with trackplug.connect("mlflow+sqlite:///mlflow.db?experiment=demo") as t:
        t.log_metric("model-1", "loss", 0.5, step=3)   # run "model-1" of experiment "demo"

Each trackplug resource is one MLflow run (see :mod:`trackplug_mlflow.backend`);
``MLFlowMetricsTracker`` keeps lolpop's interface (:mod:`trackplug_mlflow.lolpop`).
Importing this module does not import mlflow (~2.5 s): opening a URL does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trackplug import hookimpl
from trackplug.spec import Register

if TYPE_CHECKING:
    from .backend import MLflowBackend
    from .lolpop import MLFlowMetricsTracker

__all__ = ["SCHEMES", "MLFlowMetricsTracker", "MLflowBackend", "open_backend"]

#: Every URL scheme this plugin serves (``mlflow+postgresql+psycopg2://`` too, by prefix).
SCHEMES = (
    "mlflow",
    "mlflow+http",
    "mlflow+https",
    "mlflow+sqlite",
    "mlflow+postgresql",
    "mlflow+file",
)


#: The ``connect(url, **options)`` options this backend takes; ``connect`` gives every
#: backend of a fan-out the same options, so the others' are ignored (as trackplug-sql does).
OPTIONS = ("experiment", "client", "probe_timeout")


def open_backend(url: str, **options: Any) -> MLflowBackend:
    """The factory the registry calls: imports mlflow now, not at discovery."""
    from .backend import MLflowBackend

    return MLflowBackend(url, **{k: v for k, v in options.items() if k in OPTIONS})


@hookimpl
def trackplug_register_backends(register: Register) -> None:
    for scheme in SCHEMES:
        register(scheme, open_backend)


def __getattr__(name: str) -> Any:
    if name == "MLflowBackend":
        from .backend import MLflowBackend

        return MLflowBackend
    if name == "MLFlowMetricsTracker":
        from .lolpop import MLFlowMetricsTracker

        return MLFlowMetricsTracker
    raise AttributeError(f"module 'trackplug_mlflow' has no attribute {name!r}")
