"""A typed handle on one backend's hooks: the only code that calls ``pm.hook``.

pluggy calls return ``Any`` and ``firstresult`` answers with the most recently registered
plugin, so the tracker never calls ``pm.hook.<name>`` across backends. Each backend gets a
:class:`BackendHooks` built from ``subset_hook_caller``: calls reach that backend alone,
results are checked against the spec's types, and the optional hooks a backend leaves
out are composed here from the required ones (or have nothing to do).

Every call is also where a backend's exceptions are scrubbed: whatever a hook raises, ours
or a third party's, leaves with no password of any URL the tracker was opened with in its
message, arguments, attributes, notes, causes or contexts (:func:`~trackplug._urls.scrubbing`),
its type unchanged.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import chain
from typing import Any, Literal, TypeVar

import pluggy

from . import spec
from ._errors import BackendError, PluginError, UnsupportedOperationError
from ._model import (
    Batch,
    Capabilities,
    ColumnsPage,
    HistoryPage,
    MetricPoint,
    ParamValue,
    PerfRecord,
    Resource,
    columns_page,
    order_before,
    point_order,
    rank,
    sample_history,
    sample_points,
    value_order,
)
from ._urls import scrubbing

__all__ = ["BackendHooks", "check_hooks", "new_plugin_manager"]

T = TypeVar("T")
#: Points per page when the facade samples a paged history (``history_sampled``'s fallback).
SAMPLE_PAGE = 10_000
_HOOKS = spec.REQUIRED_HOOKS + spec.OPTIONAL_HOOKS
#: A page of a history as columns: steps, timestamps, values.
ColumnArrays = tuple["array[int]", "array[int]", "array[float]"]
_COLUMN_TYPES = ("q", "q", "d")


def new_plugin_manager() -> pluggy.PluginManager:
    """A plugin manager that knows trackplug's hook specification."""
    pm = pluggy.PluginManager("trackplug")
    pm.add_hookspecs(spec)
    return pm


def check_backend_object(backend: object, name: str) -> None:
    """A backend given as an object is an instance (not its class), and hashable (the
    plugin manager keys on it)."""
    try:
        hash(backend)
    except TypeError:
        hashable = False
    else:
        hashable = True
    if isinstance(backend, type) or not hashable:
        what = (
            f"the class {backend.__qualname__}"
            if isinstance(backend, type)
            else f"an unhashable {type(backend).__name__}"
        )
        raise PluginError(
            f"backend {name} is {what}, not a backend object: pass an instance of a class "
            "whose methods are the hooks (@trackplug.hookimpl)"
        )


def check_hooks(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    """A hook implementation that matches no spec is a misspelling: refuse the plugin."""
    for caller in pm.get_hookcallers(plugin) or []:
        if not caller.has_spec():
            pm.unregister(plugin)
            raise PluginError(
                f"plugin {name} implements {caller.name!r}, which is not a trackplug hook "
                f"(the hooks are: {', '.join(_HOOKS)})"
            )


class BackendHooks:
    """One backend's hooks, typed. ``name`` identifies it in errors; ``secrets`` are the
    URLs (passwords and all) that no exception leaving a hook may show."""

    def __init__(
        self,
        pm: pluggy.PluginManager,
        backend: object,
        name: str,
        secrets: Sequence[str] = (),
    ) -> None:
        self.backend = backend
        self.name = name
        self._pm = pm
        self._secrets = tuple(secrets)
        self.refresh()
        implemented = {hook for hook, caller in self._raw.items() if caller.get_hookimpls()}
        missing = [hook for hook in spec.REQUIRED_HOOKS if hook not in implemented]
        if missing:
            raise PluginError(
                f"backend {name} does not implement the required hook(s) {', '.join(missing)}; "
                "see docs/semantics.md"
            )
        partial = [hook for hook in spec.PARAM_HOOKS if hook in implemented]
        if partial and len(partial) < len(spec.PARAM_HOOKS):
            absent = [hook for hook in spec.PARAM_HOOKS if hook not in implemented]
            raise PluginError(
                f"backend {name} implements {', '.join(partial)} but not {', '.join(absent)}: "
                "the params and tags hooks come all together or not at all"
            )
        self._implemented = frozenset(implemented)
        #: Whether the backend keeps params and tags (and so runs).
        self.has_params = bool(partial)
        self.caps = self.capabilities()

    def refresh(self) -> None:
        """Rebuild the callers after another backend joined the plugin manager."""
        others = [plugin for plugin in self._pm.get_plugins() if plugin is not self.backend]
        self._raw = {hook: self._pm.subset_hook_caller(hook, others) for hook in _HOOKS}
        self._callers = {hook: self._scrubbing(caller) for hook, caller in self._raw.items()}

    def _scrubbing(self, caller: Callable[..., Any]) -> Callable[..., Any]:
        """``caller``, whose exceptions leave with the tracker's passwords scrubbed."""
        scrub = scrubbing(*self._secrets)  # keeps no state between blocks: one for every call

        def call(**kwargs: Any) -> Any:
            with scrub:
                return caller(**kwargs)

        return call

    def _call(self, hook: str, expected: type[T] | tuple[type, ...], **kwargs: Any) -> T:
        result = self._callers[hook](**kwargs)
        if not isinstance(result, expected):
            kinds = expected if isinstance(expected, tuple) else (expected,)
            raise BackendError(
                f"backend {self.name}: hook {hook} returned {type(result).__name__}, "
                f"expected {' or '.join(_type_name(kind) for kind in kinds)}"
            )
        if error := _item_error(hook, result):
            raise BackendError(f"backend {self.name}: hook {hook} returned {error}")
        return result  # type: ignore[return-value]

    # -- writes ---------------------------------------------------------------------------

    def log_metric(self, batch: Batch) -> None:
        self._callers["log_metric"](batch=batch)

    def log_metrics(
        self, resource: Resource, points: Sequence[MetricPoint], perf: PerfRecord | None
    ) -> None:
        self._callers["log_metrics"](resource=resource, points=points, perf=perf)

    def copy_metrics(self, source: Resource, target: Resource) -> bool:
        """Copy natively; False when the facade must compose the copy."""
        return self._optional("copy_metrics", source=source, target=target)

    def log_prediction_metrics(self, job: Resource, points: Sequence[MetricPoint]) -> bool:
        """Store prediction metrics natively; False when the facade must."""
        return self._optional("log_prediction_metrics", job=job, points=points)

    def _optional(self, hook: str, **kwargs: Any) -> bool:
        """Call an optional hook; whether the backend did the work. Implementing it is the
        signal, so a forgotten ``return True`` cannot make the work happen twice;
        ``NotImplemented`` hands this one call back to the facade."""
        if hook not in self._implemented:
            return False
        return self._callers[hook](**kwargs) is not NotImplemented

    # -- reads ----------------------------------------------------------------------------

    def get_metric(self, resource: Resource, key: str) -> float | None:
        return self._call("get_metric", (float, type(None)), resource=resource, key=key)

    def history(self, resource: Resource, key: str) -> list[MetricPoint]:
        return self._call("history", list, resource=resource, key=key)

    def history_pages(
        self, resource: Resource, key: str, size: int, since: tuple[int, int] | None = None
    ) -> Iterator[list[MetricPoint]]:
        """The history in pages of at most ``size`` points, from its first point at or after
        ``since`` ``(step, timestamp)`` when given: the backend's own pages, starting there
        where it can seek (``history_page_after``; checked: the facade loops on cursors it
        cannot read), else read from the first page, or ``history()`` cut up, and skipped."""
        after = None if since is None else order_before(*since)
        pages: Iterator[list[MetricPoint]]
        if "history_page" not in self._implemented:
            points = self.history(resource, key)
            pages = (points[start : start + size] for start in range(0, len(points), size))
        elif after is not None and "history_page_after" in self._implemented:
            return self._paged(resource, key, size, after)
        else:
            pages = self._paged(resource, key, size, None)
        return pages if after is None else _skipped(pages, after)

    def _paged(
        self, resource: Resource, key: str, size: int, after: tuple[int, int, int] | None
    ) -> Iterator[list[MetricPoint]]:
        """The backend's pages: from the first one after the order ``after`` (its own
        seek), or from its first."""
        hook = "history_page" if after is None else "history_page_after"
        cursor: str | None = None
        last = after
        while True:
            where = {"cursor": cursor} if hook == "history_page" else {"after": after}
            page = self._call(hook, HistoryPage, resource=resource, key=key, limit=size, **where)
            self._check_page(hook, page, cursor, size, last)
            if page.points:
                yield page.points
                last = point_order(page.points[-1])
            if page.cursor is None:
                return
            cursor, hook = page.cursor, "history_page"

    def _check_page(
        self,
        hook: str,
        page: HistoryPage,
        cursor: str | None,
        size: int,
        last: tuple[int, int, int] | None,
    ) -> None:
        """Refuse a page that would make the facade loop forever, lose or reorder points."""
        if error := _page_error(page, cursor, size, last, strict=hook == "history_page_after"):
            raise BackendError(f"backend {self.name}: hook {hook} returned {error}")

    def history_columns(self, resource: Resource, key: str, size: int) -> Iterator[ColumnArrays]:
        """The history as columns, a page of at most ``size`` points at a time: the
        backend's own (``history_columns_page``, checked as its pages of points are),
        else its pages of points (:meth:`history_pages`) turned into columns."""
        if "history_columns_page" not in self._implemented:
            pages = self.history_pages(resource, key, size)
            return (self._column_arrays(columns_page(HistoryPage(p, None))) for p in pages)
        return self._column_pages(resource, key, size)

    def _column_pages(self, resource: Resource, key: str, size: int) -> Iterator[ColumnArrays]:
        cursor: str | None = None
        last = None
        while True:
            page = self._call(
                "history_columns_page",
                ColumnsPage,
                resource=resource,
                key=key,
                cursor=cursor,
                limit=size,
            )
            columns = self._column_arrays(page)
            if error := _columns_error(columns, page.cursor, cursor, size, last):
                raise BackendError(
                    f"backend {self.name}: hook history_columns_page returned {error}"
                )
            steps, stamps, values = columns
            if steps:
                yield columns
                last = (steps[-1], stamps[-1], value_order(values[-1]))
            if page.cursor is None:
                return
            cursor = page.cursor

    def _column_arrays(self, page: ColumnsPage) -> ColumnArrays:
        """A page's columns as ``array("q")``, ``array("q")``, ``array("d")``: arrays of
        those types as they are (no copy), other sequences copied into them."""
        try:
            return tuple(  # type: ignore[return-value]
                column
                if isinstance(column, array) and column.typecode == typecode
                else array(typecode, column)
                for typecode, column in zip(_COLUMN_TYPES, page[:3], strict=True)
            )
        except (TypeError, OverflowError, ValueError) as exc:
            raise BackendError(
                f"backend {self.name}: hook history_columns_page returned columns that are "
                f"not (steps, timestamps, values) of signed 64-bit integers and floats ({exc})"
            ) from None

    def history_sampled(self, resource: Resource, key: str, max_points: int) -> list[MetricPoint]:
        """The backend's sample, else the contract's rule over its history: read a page at a
        time (twice) from a backend that pages, in bounded memory; else read whole once."""
        if "history_sampled" in self._implemented:
            return self._call(
                "history_sampled", list, resource=resource, key=key, max_points=max_points
            )
        if "history_page" not in self._implemented:
            return sample_points(self.history(resource, key), max_points)

        def read() -> Iterator[MetricPoint]:
            return chain.from_iterable(self.history_pages(resource, key, SAMPLE_PAGE))

        return sample_history(read, max_points)

    def latest(self, resource: Resource) -> dict[str, float]:
        return self._call("latest", dict, resource=resource)

    def resources(self) -> list[str]:
        return self._call("resources", list)

    def get_perf(self, resource: Resource) -> PerfRecord | None:
        return self._call("get_perf", (PerfRecord, type(None)), resource=resource)

    def best(self, key: str, order: Literal["max", "min"], limit: int) -> list[tuple[str, float]]:
        """The backend's ranking, else the contract's rule over every resource's latest."""
        if "best" in self._implemented:
            return self._call("best", list, key=key, order=order, limit=limit)
        latest = ((rid, self.get_metric(Resource(rid), key)) for rid in self.resources())
        return rank(((rid, v) for rid, v in latest if v is not None), order, limit)

    # -- params and tags ------------------------------------------------------------------

    def require_params(self, what: str) -> None:
        """Refuse, before anything is written, what this backend cannot keep."""
        if not self.has_params:
            raise UnsupportedOperationError(
                f"backend {self.name} keeps no params or tags (it implements none of "
                f"{', '.join(spec.PARAM_HOOKS)}), so it cannot take {what}; nothing was written"
            )

    def log_params(self, resource: Resource, params: Mapping[str, ParamValue]) -> None:
        self.require_params("params")
        self._callers["log_params"](resource=resource, params=params)

    def get_params(self, resource: Resource) -> dict[str, ParamValue]:
        self.require_params("a read of params")
        return self._call("get_params", dict, resource=resource)

    def set_tags(self, resource: Resource, tags: Mapping[str, str]) -> None:
        self.require_params("tags")
        self._callers["set_tags"](resource=resource, tags=tags)

    def get_tags(self, resource: Resource) -> dict[str, str]:
        self.require_params("a read of tags")
        return self._call("get_tags", dict, resource=resource)

    def tagged(self, key: str, value: str | None) -> list[str]:
        self.require_params("a search by tag")
        return self._call("tagged", list, key=key, value=value)

    # -- lifecycle ------------------------------------------------------------------------

    def capabilities(self) -> Capabilities:
        return self._call("capabilities", Capabilities)

    def flush(self) -> None:
        if "flush" in self._implemented:
            self._callers["flush"]()

    def close(self) -> None:
        if "close" in self._implemented:
            self._callers["close"]()


def _type_name(kind: type) -> str:
    return "None" if kind is type(None) else kind.__name__


def _is_point(item: object) -> bool:
    return isinstance(item, MetricPoint) and type(item.value) is float


def _is_ranked(item: object) -> bool:
    return (
        isinstance(item, tuple)
        and len(item) == 2
        and type(item[0]) is str
        and type(item[1]) is float
    )


def _is_text(item: object) -> bool:
    return type(item) is str


def _is_float(item: object) -> bool:
    return type(item) is float


#: What each item of a read's answer must be (of a mapping: each value), and its name. A
#: list is checked at its ends, in constant time (a history may hold millions of points);
#: a mapping (latest values, tags: a few) whole.
_ITEMS: dict[str, tuple[Callable[[object], bool], str]] = {
    "history": (_is_point, "MetricPoints of float values"),
    "history_sampled": (_is_point, "MetricPoints of float values"),
    "latest": (_is_float, "float values"),
    "resources": (_is_text, "str ids"),
    "best": (_is_ranked, "(str id, float value) pairs"),
    "get_tags": (_is_text, "str values"),
    "tagged": (_is_text, "str ids"),
}


def _item_error(hook: str, result: object) -> str | None:
    """What is wrong with the items of a read's answer, or None."""
    rule = _ITEMS.get(hook)
    if rule is None or not result:
        return None
    accepts, expected = rule
    items = result.values() if isinstance(result, dict) else _ends(result)  # type: ignore[arg-type]
    for item in items:
        if not accepts(item):
            return f"a {type(result).__name__} holding {type(item).__name__}, expected {expected}"
    return None


def _ends(items: Sequence[object]) -> tuple[object, object]:
    return items[0], items[-1]


def _page_error(
    page: HistoryPage,
    cursor: str | None,
    size: int,
    last: tuple[int, int, int] | None,
    strict: bool,
) -> str | None:
    """What is wrong with a page read after the point order ``last`` (the previous page's
    last point; with ``strict``, the order ``history_page_after`` was asked to follow)."""
    points = page.points
    if not isinstance(points, list) or not isinstance(page.cursor, str | None):
        return "a page that is not (list of points, cursor or None)"
    if points and not all(map(_is_point, _ends(points))):
        return "a page holding what is not a MetricPoint of a float value"
    first = point_order(points[0]) if points else None
    return _moving_error(len(points), first, page.cursor, cursor, size, last, strict)


def _columns_error(
    columns: ColumnArrays,
    next_cursor: object,
    cursor: str | None,
    size: int,
    last: tuple[int, int, int] | None,
) -> str | None:
    """What is wrong with a page of columns (:func:`_page_error`'s rule, on columns)."""
    if not isinstance(next_cursor, str | None):
        return "a page that is not (steps, timestamps, values, cursor or None)"
    steps, stamps, values = columns
    if not len(steps) == len(stamps) == len(values):
        return (
            f"columns of different lengths ({len(steps)} steps, {len(stamps)} timestamps, "
            f"{len(values)} values)"
        )
    first = (steps[0], stamps[0], value_order(values[0])) if steps else None
    return _moving_error(len(steps), first, next_cursor, cursor, size, last, strict=False)


def _moving_error(
    count: int,
    first: tuple[int, int, int] | None,
    next_cursor: str | None,
    cursor: str | None,
    size: int,
    last: tuple[int, int, int] | None,
    strict: bool,
) -> str | None:
    """What is wrong with a page of ``count`` points whose first has the order ``first``,
    read at ``cursor``, handing back ``next_cursor``: too long, a cursor that would loop,
    or one that went back."""
    if count > size:
        return f"{count} points, more than the {size} asked for"
    if next_cursor is not None and (not count or next_cursor == cursor):
        return "a cursor to go on without a point to move it on"
    # Order within a page is the contract suite's to check; across pages, a cursor's here
    # (one comparison a page: paging stays as fast as the backend).
    if last is not None and first is not None and (last > first or (strict and last == first)):
        return "a page starting before the previous one ended (a cursor that went back)"
    return None


def _skipped(
    pages: Iterator[list[MetricPoint]], after: tuple[int, int, int]
) -> Iterator[list[MetricPoint]]:
    """``pages`` (in history order) without their points up to the order ``after``."""
    for page in pages:
        if point_order(page[-1]) > after:
            yield page[bisect_right(page, after, key=point_order) :]
            break
    yield from pages
