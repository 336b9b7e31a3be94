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
  required ones (``copy_metrics``, ``log_prediction_metrics``, ``best``) or has nothing to
  do (``flush``, ``close``). Implementing one means doing its work: the facade never asks
  for a ``True`` back. Every other hook is required, checked when the tracker opens.

What a plugin registers is a :class:`BackendFactory` per URL scheme: how to open a backend
for a URL, the forms of URL it serves and what each keeps (:class:`UrlForm`), the options it
takes, and where a URL keeps its data on this machine (:class:`LocalStore`). The CLI and
``connect`` ask only this; no backend is named anywhere in the core.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import pluggy

from ._model import Capabilities

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path  # pathlib costs milliseconds: not loaded by ``import trackplug``

    from ._model import (
        Batch,
        ColumnsPage,
        HistoryPage,
        MetricPoint,
        ParamValue,
        PerfRecord,
        Resource,
    )

__all__ = [
    "OPTIONAL_HOOKS",
    "PARAM_HOOKS",
    "REQUIRED_HOOKS",
    "BackendFactory",
    "LocalStore",
    "Register",
    "UrlForm",
    "best",
    "capabilities",
    "close",
    "copy_metrics",
    "flush",
    "get_metric",
    "get_params",
    "get_perf",
    "get_tags",
    "history",
    "history_columns_page",
    "history_page",
    "history_page_after",
    "history_sampled",
    "hookimpl",
    "hookspec",
    "latest",
    "log_metric",
    "log_metrics",
    "log_params",
    "log_prediction_metrics",
    "resources",
    "set_tags",
    "tagged",
    "trackplug_register_backends",
]

hookspec = pluggy.HookspecMarker("trackplug")
hookimpl = pluggy.HookimplMarker("trackplug")


class UrlForm(NamedTuple):
    """One form of URL a backend serves, and what a store of that form keeps."""

    #: How to write it; upper-case words are placeholders: ``"sqlite:///FILE"``.
    pattern: str
    #: What such a store keeps; None: not declared.
    capabilities: Capabilities | None
    #: A few words shown beside the pattern, e.g. ``"in memory"``.
    summary: str = ""

    def __str__(self) -> str:
        return f"{self.pattern} ({self.summary})" if self.summary else self.pattern

    @property
    def scheme(self) -> str:
        """The scheme of the pattern (a pattern is no URL: ``PORT`` is no port)."""
        return self.pattern.partition("://")[0].lower()


class LocalStore(NamedTuple):
    """The file or folder on this machine that a URL keeps its data in."""

    kind: Literal["file", "folder"]
    path: Path
    #: Where the path comes from, when not from the URL itself (", named by $VAR").
    named_by: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.path.resolve()}{self.named_by}"


class BackendFactory:
    """Everything trackplug knows about a backend: what a plugin registers for a scheme.

    Subclass it and implement :meth:`open` and :meth:`forms`; the rest has defaults::

        class JsonFileFactory(BackendFactory):
            def open(self, url):
                return JsonFileBackend(url)

            def forms(self):
                return [UrlForm("jsonfile:///PATH", Capabilities(persistent=True))]

    Nothing here may open a store, or import a heavy library before :meth:`open`.
    """

    #: The keyword options :meth:`open` takes (``connect(url, **options)``); any other
    #: option is refused with a ``ValidationError`` naming it and the backend. None: any
    #: option is taken (a bare factory with ``**options``).
    options: frozenset[str] | None = frozenset()

    def open(self, url: str, **options: Any) -> object:
        """A backend for ``url``, implementing the hooks; creates the store if missing."""
        raise NotImplementedError(f"{type(self).__name__} must implement open(url, **options)")

    def forms(self) -> Sequence[UrlForm]:
        """Every form of URL served, for help, "did you mean" and ``trackplug backends``
        (which shows ``form(pattern)`` of each). Keep it cheap: no I/O, no heavy import."""
        raise NotImplementedError(f"{type(self).__name__} must implement forms()")

    def form(self, url: str) -> UrlForm:
        """The form ``url`` has (by default the form whose pattern it is, else the first
        form of its scheme). Override it
        when one scheme has several forms (a file or in memory), or when what a URL keeps
        depends on the environment (the store a variable names)."""
        forms = self.forms()
        scheme = url.partition("://")[0].lower()
        for form in [f for f in forms if f.pattern == url] or forms:  # a pattern is its form
            if form.scheme == scheme:
                return form
        return UrlForm(f"{scheme}://", None)

    def capabilities(self, url: str) -> Capabilities | None:
        """What a store at ``url`` keeps, without opening it: its form's declaration."""
        return self.form(url).capabilities

    def local_store(self, url: str) -> LocalStore | None:
        """Where ``url`` keeps its data on this machine; None for servers and in-memory
        stores. Reading commands refuse a URL whose local store does not exist, instead of
        letting :meth:`open` create an empty one for a typo."""
        return None


class CallableFactory(BackendFactory):
    """A bare ``factory(url, **options)`` registered as it was before :class:`BackendFactory`
    existed: one form, nothing declared; its options are its keyword parameters."""

    def __init__(self, scheme: str, build: Callable[..., object]) -> None:
        self._scheme = scheme
        self._build = build
        self.options = _keyword_options(build)

    def open(self, url: str, **options: Any) -> object:
        return self._build(url, **options)

    def forms(self) -> Sequence[UrlForm]:
        return [UrlForm(f"{self._scheme}://", None)]


def _keyword_options(build: Callable[..., object]) -> frozenset[str] | None:
    import inspect

    try:
        parameters = list(inspect.signature(build).parameters.values())[1:]  # after the URL
    except (TypeError, ValueError):  # a builtin without a signature: it tells nothing
        return None
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    keyword = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return frozenset(p.name for p in parameters if p.kind in keyword)


#: ``register(scheme, factory)``: a :class:`BackendFactory`, or a bare callable
#: ``factory(url, **options)`` returning a backend (then nothing else is declared).
Register = Callable[[str, "BackendFactory | Callable[..., object]"], None]


# -- discovery ---------------------------------------------------------------------------


@hookspec
def trackplug_register_backends(register: Register) -> None:
    """Called once when plugins are discovered: call ``register(scheme, factory)`` for each
    URL scheme the plugin serves (``"sqlite"``, ``"mlflow+http"``…), with a
    :class:`BackendFactory`. It should import heavy libraries in ``open``, so that discovery
    stays cheap. A scheme registered twice is an error."""


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
def copy_metrics(source: Resource, target: Resource) -> object:
    """*Optional.* Copy the full history (every step and timestamp) and the performance
    record of exactly ``source`` into ``target``, which may already have metrics; keys are
    kept whole. Without it the facade composes the copy from ``latest``, ``history``,
    ``get_perf`` and ``log_metrics``; return :data:`NotImplemented` to leave one copy to
    the facade. Any other return value (None too) means done."""


@hookspec(firstresult=True)
def log_prediction_metrics(job: Resource, points: Sequence[MetricPoint]) -> object:
    """*Optional.* Store the summary metrics of a prediction job (``num_predictions``, the
    class distribution or the distribution's moments and quantiles), computed by the
    facade. Without it, or when it returns :data:`NotImplemented`, the facade calls
    ``log_metric``."""


# -- reads: answered by the primary backend --------------------------------------------------


@hookspec(firstresult=True)
def get_metric(resource: Resource, key: str) -> float | None:
    """The latest value of ``key``: that of the point with the greatest ``(step,
    timestamp, value)`` in :func:`trackplug._model.point_order`; None if never logged."""


@hookspec(firstresult=True)
def history(resource: Resource, key: str) -> list[MetricPoint]:
    """Every point of ``key`` for ``resource``, ordered by ``point_order``; [] if none."""


@hookspec(firstresult=True)
def history_page(resource: Resource, key: str, cursor: str | None, limit: int) -> HistoryPage:
    """*Optional.* One page of ``history(resource, key)``: up to ``limit`` (at least 1)
    points that follow ``cursor`` in ``point_order`` (from the first point when None), and
    the cursor where the next page starts, None when no point follows. A page holds at
    least one point while any follow. ``cursor`` is only ever one this backend returned;
    the facade never reads it. Paging an unchanged history gives ``history()`` exactly, a
    page at a time, so a long history is read in bounded memory. Without it the facade
    reads ``history()`` once and pages it. A keyset cursor
    (:func:`trackplug.plugin.order_cursor`) keeps each page one range of an index."""


@hookspec(firstresult=True)
def history_page_after(
    resource: Resource, key: str, after: tuple[int, int, int], limit: int
) -> HistoryPage:
    """*Optional, beside* ``history_page``. The first page of the points whose
    ``point_order`` follows ``after`` (a ``(step, timestamp, value_order)``, which no point
    need have): up to ``limit`` of them, and the ``history_page`` cursor where the next page
    starts, None when no point follows. A live reader asks for what is new, never reading
    the history from its start; a keyset store seeks there (one range of its index). The
    facade calls it only for a backend that has ``history_page`` too; without it,
    ``iter_history(since=...)`` pages from the first point and skips what comes before."""


@hookspec(firstresult=True)
def history_columns_page(
    resource: Resource, key: str, cursor: str | None, limit: int
) -> ColumnsPage:
    """*Optional.* ``history_page(resource, key, cursor, limit)`` as columns, with no point
    object built: a :class:`~trackplug.plugin.ColumnsPage` of the page's steps, timestamps
    and values (best as ``array("q")``, ``array("q")``, ``array("d")``: taken without a
    copy; values exact, NaN, ±inf and -0.0 by their bits) and the cursor where the next
    page starts, None when no point follows. The cursors are this hook's own (they may be
    ``history_page``'s). ``Tracker.history_columns`` reads it a page at a time into its
    columns, so a long history costs the columns and one page. Without it the facade
    turns the history's pages (``history_page``, else ``history()``) into columns;
    :func:`~trackplug.plugin.columns_page` turns a ``HistoryPage`` into one."""


@hookspec(firstresult=True)
def history_sampled(resource: Resource, key: str, max_points: int) -> list[MetricPoint]:
    """*Optional.* A downsampled history for charts, at most ``max_points`` points (the
    facade passes at least 4): the whole history when it has no more points; else a subset
    of it, in history order, holding its first and last points and, in buckets splitting
    the step range (the timestamp range when all steps are equal), each bucket's points of
    least and greatest ``value_order`` — so the global min and max (and any NaN) are kept
    and no spike disappears. :func:`trackplug._model.sample_points` is the rule; a backend
    may bucket differently as long as the sample keeps those properties. Without it the
    facade samples the history, read a page at a time where ``history_page`` is there."""


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
    """*Optional.* Up to ``limit`` ``(resource id, latest value of key)``, best first: by
    value in ``order``, ties by resource id ascending. Resources without ``key``, or whose
    latest value is NaN, are not ranked (MLflow's ``search_runs(order_by=...)``). Without
    it the facade ranks ``get_metric`` of every resource by :func:`trackplug._model.rank`."""


# -- params and tags: optional, as a group (PARAM_HOOKS) ---------------------------------------
#
# A backend implements all five or none. Without them, asking for params, tags or runs
# raises UnsupportedOperationError before anything is written (never a silent drop).


@hookspec
def log_params(resource: Resource, params: Mapping[str, ParamValue]) -> None:
    """*Optional (params and tags).* Store write-once params: a key already held with the
    same value (as this store keeps it: ``Capabilities.stored_param``) is a no-op; with
    another value, raise :class:`~trackplug.ParamConflictError` (``raise_on_conflict``)
    and store none of ``params``. Values are checked JSON scalars; keep their type, or
    declare ``Capabilities(params="string")`` and keep ``str(value)``."""


@hookspec(firstresult=True)
def get_params(resource: Resource) -> dict[str, ParamValue]:
    """*Optional (params and tags).* ``{key: value}`` of every param of ``resource``; {}."""


@hookspec
def set_tags(resource: Resource, tags: Mapping[str, str]) -> None:
    """*Optional (params and tags).* Set string tags, replacing earlier values of the same
    keys, all or nothing. Keys starting with ``trackplug.`` come from the facade (runs'
    name, status and times): store them like any other."""


@hookspec(firstresult=True)
def get_tags(resource: Resource) -> dict[str, str]:
    """*Optional (params and tags).* ``{key: value}`` of every tag ``set_tags`` set on
    ``resource`` (the store's own bookkeeping left out); {}."""


@hookspec(firstresult=True)
def tagged(key: str, value: str | None) -> list[str]:
    """*Optional (params and tags).* The ids of every resource whose tag ``key`` is
    ``value`` (any value when None), whether or not they have metrics; in any order
    (the facade sorts what it lists)."""


# -- lifecycle --------------------------------------------------------------------------------


@hookspec(firstresult=True)
def capabilities() -> Capabilities:
    """What this backend keeps and how it deviates; asked once when the tracker opens."""


@hookspec
def flush() -> None:
    """*Optional.* Make every write this backend has accepted durable (the facade's buffer
    is already drained into it). Without it: nothing to do."""


@hookspec
def close() -> None:
    """*Optional.* Flush, then release connections and files. Called once. Without it:
    nothing to release."""


REQUIRED_HOOKS = (
    "log_metric",
    "log_metrics",
    "get_metric",
    "history",
    "latest",
    "resources",
    "get_perf",
    "capabilities",
)
#: Params and tags: a backend implements all of them or none.
PARAM_HOOKS = ("log_params", "get_params", "set_tags", "get_tags", "tagged")
OPTIONAL_HOOKS = (
    "copy_metrics",
    "log_prediction_metrics",
    "best",
    "history_page",
    "history_page_after",
    "history_columns_page",
    "history_sampled",
    "flush",
    "close",
    *PARAM_HOOKS,
)
