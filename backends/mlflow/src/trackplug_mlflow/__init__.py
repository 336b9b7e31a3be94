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

from trackplug import Capabilities, hookimpl
from trackplug.spec import Register
from trackplug.urls import scheme_of

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


class _Factory:
    """The factory the registry calls for every MLflow scheme."""

    def __call__(self, url: str, **options: Any) -> MLflowBackend:
        """Opens a backend: imports mlflow now, not at discovery."""
        from .backend import MLflowBackend

        return MLflowBackend(url, **{k: v for k, v in options.items() if k in OPTIONS})

    @staticmethod
    def capabilities_for(url: str) -> Capabilities:
        """What a store at ``url`` keeps (``trackplug backends`` asks): it depends on the
        kind of store, server, database or file; for ``mlflow://``, on the store MLflow's
        configuration names."""
        from .capabilities import CAPABILITIES_BY_KIND
        from .urls import parse_url, store_kind

        store = scheme_of(url).partition("+")[2]
        kind = store_kind(f"{store}://") if store else parse_url(url).kind
        return CAPABILITIES_BY_KIND[kind]


#: ``open_backend(url, **options)`` opens a backend; ``open_backend.capabilities_for(url)``
#: says what it would keep, without opening it.
open_backend = _Factory()


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
