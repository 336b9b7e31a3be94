"""trackplug: a pluggable metrics tracker for machine-learning code.

::

    import trackplug

    with trackplug.connect("sqlite:///runs.db") as t:
        t.log_metric("model-1", "loss", 0.5, step=3)
        t.get_metric("model-1", "loss")          # 0.5

A backend is a pluggy plugin. Its distribution declares an entry point in the group
``trackplug`` that names a module, and the module registers a factory per URL scheme::

    # pyproject.toml:  [project.entry-points.trackplug]  mystore = "mystore.plugin"
    from trackplug.plugin import BackendFactory, hookimpl

    @hookimpl
    def trackplug_register_backends(register):
        register("mystore", MyStoreFactory())   # a BackendFactory: open(url), forms()…

``trackplug.plugin`` is everything a plugin author imports; ``trackplug.spec`` lists the
hooks; ``docs/plugin-authors.md`` walks through one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import (
    BackendError,
    BackendWarning,
    ClosedError,
    CloseWarning,
    InvalidTypeError,
    ParamConflictError,
    PluginError,
    PluginWarning,
    TrackplugError,
    TrackplugWarning,
    UnknownBackendError,
    UnsupportedOperationError,
    UnsupportedValueError,
    ValidationError,
)
from ._model import Capabilities, Columns, MetricPoint, PerfRecord, Resource
from ._tracker import Tracker, connect
from .spec import hookimpl, hookspec

if TYPE_CHECKING:
    from ._registry import DEFAULT_URL, Registry
    from ._runs import Run, RunInfo, Runs
    from ._transfer import CopySummary, copy, sync
    from ._urls import redact_url

#: Names loaded on first use (``import trackplug`` must stay under 60 ms): their modules
#: pull in plugin discovery, URL parsing and the outbox's sqlite3.
_LAZY = {
    "DEFAULT_URL": "_registry",
    "Registry": "_registry",
    "CopySummary": "_transfer",
    "copy": "_transfer",
    "Run": "_runs",
    "RunInfo": "_runs",
    "Runs": "_runs",
    "sync": "_transfer",
    "redact_url": "_urls",
}

__all__ = [
    "DEFAULT_URL",
    "BackendError",
    "BackendWarning",
    "Capabilities",
    "CloseWarning",
    "ClosedError",
    "Columns",
    "CopySummary",
    "InvalidTypeError",
    "MetricPoint",
    "ParamConflictError",
    "PerfRecord",
    "PluginError",
    "PluginWarning",
    "Registry",
    "Resource",
    "Run",
    "RunInfo",
    "Runs",
    "Tracker",
    "TrackplugError",
    "TrackplugWarning",
    "UnknownBackendError",
    "UnsupportedOperationError",
    "UnsupportedValueError",
    "ValidationError",
    "__version__",
    "connect",
    "copy",
    "hookimpl",
    "hookspec",
    "redact_url",
    "sync",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":  # importlib.metadata costs milliseconds: only when asked
        from importlib.metadata import version

        return version("trackplug")
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value  # once: later lookups do not come here
        return value
    raise AttributeError(f"module 'trackplug' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, "__version__"})
