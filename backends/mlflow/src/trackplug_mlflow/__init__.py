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

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from trackplug.plugin import BackendFactory, LocalStore, Register, UrlForm, hookimpl, redact_url

from .capabilities import CAPABILITIES_BY_KIND

if TYPE_CHECKING:
    from .backend import MLflowBackend
    from .lolpop import MLFlowMetricsTracker

__all__ = ["SCHEMES", "MLFlowMetricsTracker", "MLflowBackend", "MLflowFactory"]

#: The environment variable that names the store of ``mlflow://`` (MLflow reads it itself).
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
#: Every form of URL this plugin serves (``mlflow+postgresql+psycopg2://`` too, by prefix).
FORMS = (
    UrlForm("mlflow+http://HOST:PORT", CAPABILITIES_BY_KIND["server"]),
    UrlForm("mlflow+https://HOST", CAPABILITIES_BY_KIND["server"]),
    UrlForm("mlflow+sqlite:///FILE", CAPABILITIES_BY_KIND["database"]),
    UrlForm("mlflow+postgresql://USER:PASSWORD@HOST/DATABASE", CAPABILITIES_BY_KIND["database"]),
    UrlForm("mlflow+file:///FOLDER", CAPABILITIES_BY_KIND["file"]),
)
#: ``mlflow://``: what it keeps depends on the store MLflow's configuration names.
CONFIGURED = UrlForm("mlflow://", None, "MLflow's own configuration")
SCHEMES = ("mlflow", *(form.scheme for form in FORMS))


class MLflowFactory(BackendFactory):
    """What trackplug-mlflow registers for every MLflow scheme."""

    options = frozenset({"experiment", "client", "probe_timeout"})

    def open(self, url: str, **options: Any) -> MLflowBackend:
        """Opens a backend: imports mlflow now, not at discovery."""
        from .backend import MLflowBackend

        return MLflowBackend(url, **options)

    def forms(self) -> list[UrlForm]:
        """Cheap: what ``mlflow://`` keeps is :meth:`form`'s to work out."""
        return [CONFIGURED, *FORMS]

    def form(self, url: str) -> UrlForm:
        """What a store at ``url`` keeps depends on its kind (server, database or file); for
        ``mlflow://``, on the kind of store MLflow's configuration names."""
        from .urls import parse_url, store_kind

        scheme = url.partition("://")[0].lower()
        store = scheme.partition("+")[2]
        if store:
            found = [form for form in FORMS if form.scheme == scheme]
            kind = store_kind(f"{store}://")
            return found[0] if found else UrlForm(f"{scheme}://", CAPABILITIES_BY_KIND[kind])
        configured = os.environ.get(TRACKING_URI_ENV)
        summary = (
            f"the store ${TRACKING_URI_ENV} names: {redact_url(configured)}"
            if configured
            else f"MLflow's default store: ${TRACKING_URI_ENV} is unset"
        )
        return UrlForm("mlflow://", CAPABILITIES_BY_KIND[parse_url(url).kind], summary)

    def local_store(self, url: str) -> LocalStore | None:
        """The database file of ``mlflow+sqlite:///FILE``, the folder of
        ``mlflow+file:///FOLDER``; for ``mlflow://``, those of the store
        ``$MLFLOW_TRACKING_URI`` names. Unset, it is MLflow's default (./mlruns or
        ./mlflow.db: MLflow's own choice), and a bare word may be a path or "databricks":
        both are left to MLflow."""
        store = url.partition("://")[0].lower().partition("+")[2]
        if store:
            return _local(f"{store}://{url.partition('://')[2]}")
        local = _local(os.environ.get(TRACKING_URI_ENV, ""))
        return local._replace(named_by=f", named by ${TRACKING_URI_ENV}") if local else None


def _local(tracking_uri: str) -> LocalStore | None:
    parts = urlsplit(tracking_uri)
    kinds = parts.scheme.lower().split("+")
    if "sqlite" in kinds:  # SQLAlchemy's spelling: sqlite:///relative, sqlite:////absolute
        path = unquote(parts.path[1:])
        return LocalStore("file", Path(path)) if path not in ("", ":memory:") else None
    if kinds[-1] == "file" and parts.path:  # a file URI: file:///absolute
        return LocalStore("folder", Path(unquote(parts.path)))
    return None


@hookimpl
def trackplug_register_backends(register: Register) -> None:
    factory = MLflowFactory()
    for scheme in SCHEMES:
        register(scheme, factory)


def __getattr__(name: str) -> Any:
    if name == "MLflowBackend":
        from .backend import MLflowBackend

        return MLflowBackend
    if name == "MLFlowMetricsTracker":
        from .lolpop import MLFlowMetricsTracker

        return MLFlowMetricsTracker
    raise AttributeError(f"module 'trackplug_mlflow' has no attribute {name!r}")
