"""Everything a plugin author imports, in one place: the stated public surface of a backend.

::

    # pyproject.toml:  [project.entry-points.trackplug]  mystore = "mystore.plugin"
    from trackplug.plugin import BackendFactory, Capabilities, UrlForm, hookimpl

    class MyStoreFactory(BackendFactory):
        options = frozenset({"timeout"})          # connect("mystore://…", timeout=3)

        def open(self, url, **options):
            return MyBackend(url, **options)      # implements the hooks of trackplug.spec

        def forms(self):
            return [UrlForm("mystore://HOST/DB", Capabilities(persistent=True))]

    @hookimpl
    def trackplug_register_backends(register):
        register("mystore", MyStoreFactory())

The hooks themselves are documented in :mod:`trackplug.spec`; the walk-through is
docs/plugin-authors.md. Any other module of trackplug is internal and may change.
"""

from __future__ import annotations

from .errors import (
    BackendError,
    BackendWarning,
    PluginError,
    PluginWarning,
    UnsupportedValueError,
    ValidationError,
)
from .model import (
    Batch,
    Capabilities,
    MetricPoint,
    PerfRecord,
    Resource,
    float_bits,
    point_order,
    rank,
    value_order,
)
from .spec import BackendFactory, LocalStore, Register, UrlForm, hookimpl
from .urls import redact_url, scheme_of
from .validation import check_key, flatten, perf_value

__all__ = [
    "BackendError",
    "BackendFactory",
    "BackendWarning",
    "Batch",
    "Capabilities",
    "LocalStore",
    "MetricPoint",
    "PerfRecord",
    "PluginError",
    "PluginWarning",
    "Register",
    "Resource",
    "UnsupportedValueError",
    "UrlForm",
    "ValidationError",
    "check_key",
    "flatten",
    "float_bits",
    "hookimpl",
    "perf_value",
    "point_order",
    "rank",
    "redact_url",
    "scheme_of",
    "value_order",
]
