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
docs/plugin-authors.md. ``MemoryBackend`` is the reference every backend is judged by (and
a backend to build on in tests). The modules whose names start with ``_`` are internal and
may change; import from here, ``trackplug`` or ``trackplug.spec``.
"""

from __future__ import annotations

from ._batch import BatchColumns, ColumnBatch, batch_columns
from ._errors import (
    BackendError,
    BackendWarning,
    ParamConflictError,
    PluginError,
    PluginWarning,
    UnsupportedValueError,
    ValidationError,
)
from ._memory import MemoryBackend
from ._model import (
    FLOAT_MAX,
    INT64_MAX,
    INT64_MIN,
    Batch,
    Capabilities,
    ColumnsPage,
    HistoryPage,
    MetricPoint,
    ParamValue,
    PerfRecord,
    Resource,
    columns_page,
    cursor_order,
    float_bits,
    gc_paused,
    order_cursor,
    page_after,
    page_of,
    point_order,
    rank,
    sample_buckets,
    sample_edges,
    sample_points,
    value_order,
)
from ._params import RUN_END_TAG, RUN_STATUS_TAG, param_text, raise_on_conflict, user_tags
from ._predictions import ProblemType
from ._urls import redact_chain, redact_url, scheme_of, timeout_of
from ._validation import check_key, check_step, check_value, flatten, now_ms, perf_value
from ._watchdog import Watch, Watchdog, cut_socket
from .spec import BackendFactory, LocalStore, Register, UrlForm, hookimpl

__all__ = [
    "FLOAT_MAX",
    "INT64_MAX",
    "INT64_MIN",
    "RUN_END_TAG",
    "RUN_STATUS_TAG",
    "BackendError",
    "BackendFactory",
    "BackendWarning",
    "Batch",
    "BatchColumns",
    "Capabilities",
    "ColumnBatch",
    "ColumnsPage",
    "HistoryPage",
    "LocalStore",
    "MemoryBackend",
    "MetricPoint",
    "ParamConflictError",
    "ParamValue",
    "PerfRecord",
    "PluginError",
    "PluginWarning",
    "ProblemType",
    "Register",
    "Resource",
    "UnsupportedValueError",
    "UrlForm",
    "ValidationError",
    "Watch",
    "Watchdog",
    "batch_columns",
    "check_key",
    "check_step",
    "check_value",
    "columns_page",
    "cursor_order",
    "cut_socket",
    "flatten",
    "float_bits",
    "gc_paused",
    "hookimpl",
    "now_ms",
    "order_cursor",
    "page_after",
    "page_of",
    "param_text",
    "perf_value",
    "point_order",
    "raise_on_conflict",
    "rank",
    "redact_chain",
    "redact_url",
    "sample_buckets",
    "sample_edges",
    "sample_points",
    "scheme_of",
    "timeout_of",
    "user_tags",
    "value_order",
]
