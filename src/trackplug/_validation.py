"""Every input rule of the contract, in one place; the facade calls these before buffering.

Keys follow MLflow's rule, so anything logged anywhere can later be copied into MLflow.
Each check returns the normalized value or raises a :class:`~trackplug.ValidationError`
(an :class:`~trackplug.InvalidTypeError` when the type is wrong) that names the offending
key or value and the rule it breaks. Nothing is written before every check has passed.
"""

from __future__ import annotations

import math
import numbers
import operator
import posixpath
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from ._batch import PointEntry
from ._errors import InvalidTypeError, ValidationError
from ._model import INT64_MAX, INT64_MIN, MetricPoint, PerfRecord, PointFields, Resource

__all__ = [
    "MAX_KEY_LENGTH",
    "PERF_SPLITS",
    "check_entry",
    "check_fields",
    "check_key",
    "check_limit",
    "check_max_points",
    "check_order",
    "check_perf",
    "check_point",
    "check_point_row",
    "check_rows",
    "check_since",
    "check_step",
    "check_timestamp",
    "check_value",
    "flatten",
    "now_ms",
    "perf_keys",
    "perf_value",
    "plain_row",
    "resource_id",
    "short_repr",
    "to_resource",
    "to_resource_ids",
]

MAX_KEY_LENGTH = 250
MAX_RESOURCE_ID_LENGTH = 250
_KEY_CHARS = re.compile(r"[/\w.\- :]*")  # always fullmatch: "$" would accept a final "\n"
# Control characters, and lone surrogates, which no database driver or JSON can encode.
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
# Caches of inputs already found valid: the hot path of log_metric is a set lookup.
_CACHE_LIMIT = 65_536
#: Every NaN is stored as this one, so "NaN round-trips bit-exactly" has one meaning.
NAN = float("nan")
_valid_keys: set[str] = set()
_resources: dict[str, Resource] = {}
_valid_ids: set[str] = set()  # plain string ids found valid (resource_id)


_time_ns = time.time_ns  # a global, not an attribute lookup on every log_metric


def now_ms() -> int:
    """The current time in milliseconds since the epoch, the default timestamp."""
    return _time_ns() // 1_000_000


def check_key(key: object) -> str:
    """A metric key: 1..250 of ``[/\\w.\\- :]``, no ``..``, no leading ``/``, a normal path."""
    if type(key) is str and key in _valid_keys:
        return key  # only str ever enters the cache
    if not isinstance(key, str):
        raise InvalidTypeError(
            f"metric key {short_repr(key)} is a {type(key).__name__}: keys are strings"
        )
    problem = _key_problem(key)
    if problem:
        raise ValidationError(f"metric key {key!r} is invalid: {problem}")
    if len(_valid_keys) >= _CACHE_LIMIT:
        _valid_keys.clear()
    _valid_keys.add(key)
    return key


def _key_problem(key: str) -> str | None:
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        return f"keys are 1 to {MAX_KEY_LENGTH} characters long, this one has {len(key)}"
    if not _KEY_CHARS.fullmatch(key):
        return "only letters, digits, '_', '-', '.', ' ', ':' and '/' are allowed"
    if ".." in key:
        return "'..' is not allowed (MLflow treats keys as paths)"
    if key.startswith("/"):
        return "a key must not start with '/'"
    if key == ".":
        return "'.' names the current directory when MLflow treats keys as paths"
    if posixpath.normpath(key) != key:
        return f"it is not a normalized path (MLflow would read it as {posixpath.normpath(key)!r})"
    return None


def check_value(key: str, value: object) -> float:
    """A real number: int, float, a numpy or torch numeric scalar; ±inf and -0.0 kept,
    every NaN made the one canonical NaN (payload and sign are not metrics)."""
    if type(value) is float:
        return value if value == value else NAN
    if isinstance(value, numbers.Real) and not _is_boolean(value):
        try:
            number = float(value)
        except (OverflowError, ValueError):
            number = math.inf  # refused below, as any finite number that overflows is
        if number != number:
            return NAN
        if math.isinf(number) and value != number:  # 10**400, numpy.longdouble("1e4000")
            raise ValidationError(
                f"metric {key!r} has value {short_repr(value)}, too large for a 64-bit float"
            )
        return number
    item = _torch_scalar(value)
    if item is not None:
        return check_value(key, item)
    raise InvalidTypeError(
        f"metric {key!r} has value {short_repr(value)} of type {type(value).__name__}: "
        "values must be real numbers (int, float, numpy or torch numeric scalars; not bool)"
    )


def _is_boolean(value: object) -> bool:
    # numpy.bool_ is not a numbers.Real, but be explicit about every boolean we know of.
    return isinstance(value, bool) or type(value).__name__ in ("bool_", "bool")


def _torch_scalar(value: object) -> Any:
    """The Python number inside a 0-d torch tensor, else None (torch is never imported)."""
    if type(value).__module__.startswith("torch") and getattr(value, "ndim", None) == 0:
        return value.item()  # type: ignore[attr-defined]
    return None


def short_repr(value: object) -> str:
    """``repr(value)`` cut to 60 characters; never raises (an int of 5,000 digits has no
    repr, and a user's object may raise in its own)."""
    try:
        text = repr(value)
    except Exception:
        return f"<{type(value).__name__} object>"
    return text if len(text) <= 60 else text[:57] + "..."


def check_step(key: str, step: object) -> int:
    """A step: an integer (not bool) within signed 64 bits; negative and unordered allowed."""
    if type(step) is not int:
        if isinstance(step, bool) or not isinstance(step, numbers.Integral):
            raise InvalidTypeError(
                f"metric {key!r} has step {short_repr(step)} of type {type(step).__name__}: "
                "steps are integers"
            )
        step = int(step)
    if not INT64_MIN <= step <= INT64_MAX:
        raise ValidationError(
            f"metric {key!r} has step {short_repr(step)}: steps are signed 64-bit integers"
        )
    return step


def check_timestamp(key: str, timestamp: object) -> int:
    """A timestamp in ms since the epoch: a non-negative 64-bit integer; None means now."""
    if timestamp is None:
        return now_ms()
    if isinstance(timestamp, bool) or not isinstance(timestamp, numbers.Integral):
        raise InvalidTypeError(
            f"metric {key!r} has timestamp {short_repr(timestamp)} of type "
            f"{type(timestamp).__name__}: timestamps are integers (milliseconds since the epoch)"
        )
    timestamp = int(timestamp)
    if not 0 <= timestamp <= INT64_MAX:
        raise ValidationError(
            f"metric {key!r} has timestamp {short_repr(timestamp)}: "
            "timestamps are non-negative 64-bit integers (milliseconds since the epoch)"
        )
    return timestamp


# The named tuple's own __new__ is Python code; tuple.__new__ builds the same value 3x faster.
_new_point = tuple.__new__


def check_point(key: object, value: object, step: object, timestamp: object) -> MetricPoint:
    """One point, every rule checked (:func:`check_fields`)."""
    return _new_point(MetricPoint, check_fields(key, value, step, timestamp))


def check_fields(key: object, value: object, step: object, timestamp: object) -> PointFields:
    """A point's fields as a plain tuple, every rule checked; the common case (a known key,
    a float, an int step, no timestamp) takes the short way through the same rules.
    :func:`check_entry` repeats that short way for ``log_metric`` (a test holds the two to
    the same points and errors)."""
    if type(key) is not str or key not in _valid_keys:  # an unhashable key is no str
        key = check_key(key)
    if type(value) is not float or value != value:
        value = check_value(key, value)
    if type(step) is not int or not INT64_MIN <= step <= INT64_MAX:
        step = check_step(key, step)
    if timestamp is None:
        timestamp = now_ms()
    elif type(timestamp) is not int or not 0 <= timestamp <= INT64_MAX:
        timestamp = check_timestamp(key, timestamp)
    return key, value, step, timestamp


def check_entry(
    rid: str, key: object, value: object, step: object, timestamp: object
) -> PointEntry:
    """A point of the resource ``rid`` as ``log_metric`` buffers it: ``(rid, key, value,
    step, timestamp)``, by :func:`check_fields`' rules; the common case (a known key, a
    float, an int step, no timestamp) builds the one tuple, not two (60 ns of a ~1 µs
    call). A plain tuple of a string and numbers, which the collector untracks at its first
    pass; a :class:`MetricPoint` (a tuple subclass) it would traverse on every pass while it
    waits in the buffer (0.6 µs per call over 200,000 calls)."""
    if (
        timestamp is None
        and type(key) is str
        and key in _valid_keys
        and type(value) is float
        and value == value
        and type(step) is int
        and INT64_MIN <= step <= INT64_MAX
    ):
        return rid, key, value, step, now_ms()
    return (rid, *check_fields(key, value, step, timestamp))


_STR = frozenset({str})
_FLOAT = frozenset({float})


def plain_row(metrics: object) -> tuple[tuple[str, ...], tuple[float, ...]] | None:
    """The keys and values of ``metrics`` when it is a flat ``{key: float}`` whose every
    key is known valid and no value is NaN: ``log_metrics``' common case, which
    :func:`flatten` and :func:`check_point` would pass unchanged; else None. Checked a
    whole dict at a time in C (a Python loop over its items cost twice as much)."""
    if type(metrics) is not dict:
        return None
    keys, values = tuple(metrics), tuple(metrics.values())
    if (
        {*map(type, values)} != _FLOAT
        or {*map(type, keys)} != _STR
        or not _valid_keys.issuperset(keys)
    ):
        return None
    total = sum(values)  # NaN if a value is NaN (or +inf meets -inf: the long way then)
    return (keys, values) if total == total else None


def to_resource(resource: object) -> Resource:
    """Normalize what users call a resource: a string id, an object with ``.id``, or
    lolpop's ``(id, run)`` tuple. Ids are 1..250 printable characters."""
    if type(resource) is str:
        cached = _resources.get(resource)
        if cached is not None:
            return cached
        if _valid_id(resource):  # a new plain id (one point into each of many resources)
            return _remember(resource)
    # A Resource is a tuple too: its id is checked like any other (one may build a bad one).
    raw = resource[0] if isinstance(resource, tuple) and resource else resource
    raw = raw if isinstance(raw, str | int) else getattr(raw, "id", raw)
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise InvalidTypeError(
            f"resource {short_repr(resource)} is not a resource: pass a string id, an object "
            "with an 'id' attribute, or an (id, run) tuple"
        )
    rid = raw if isinstance(raw, str) else _int_id(raw)
    if not _valid_id(rid):
        raise ValidationError(
            f"resource id {short_repr(rid)} is invalid: ids are 1 to {MAX_RESOURCE_ID_LENGTH} "
            "characters without control characters or lone surrogates"
        )
    if type(resource) is Resource and type(raw) is str:
        return resource
    return _remember(rid) if isinstance(resource, str) else Resource(rid)


def resource_id(resource: object) -> str:
    """The id of what users call a resource, by :func:`to_resource`'s rule, without a
    :class:`Resource` for a plain string id (``log_metric``'s path): one point into each of
    many resources made a Resource per new id, an object the collector tracks for as long
    as the cache keeps it; a string it never tracks."""
    if type(resource) is str:
        if resource in _valid_ids:
            return resource
        if _valid_id(resource):
            if len(_valid_ids) >= _CACHE_LIMIT:
                _valid_ids.clear()
            _valid_ids.add(resource)
            return resource
    return to_resource(resource).id


def _valid_id(rid: str) -> bool:
    if 0 < len(rid) <= MAX_RESOURCE_ID_LENGTH and rid.isascii():
        return rid.isprintable()  # in C: ASCII's unprintable characters are its controls
    return 1 <= len(rid) <= MAX_RESOURCE_ID_LENGTH and not _CONTROL_CHARS.search(rid)


def _remember(rid: str) -> Resource:
    """The resource of a plain string id, kept for the next call with it (a bounded cache:
    it starts over when full)."""
    if len(_resources) >= _CACHE_LIMIT:
        _resources.clear()
    normalized = _resources[rid] = tuple.__new__(Resource, (rid,))  # as _new_point: 3x faster
    return normalized


def _int_id(number: int) -> str:
    """An integer id as text; one too long to be an id is refused before it is printed."""
    if number.bit_length() > 4 * MAX_RESOURCE_ID_LENGTH:  # > 250 digits, whatever the sign
        raise ValidationError(
            f"resource id {short_repr(number)} is invalid: ids are 1 to "
            f"{MAX_RESOURCE_ID_LENGTH} characters"
        )
    return str(number)


def to_resource_ids(resources: object) -> list[str]:
    """The ids of an iterable of resources (each normalized as :func:`to_resource`), sorted
    and without repeats; one string is not an iterable of resources here."""
    items = _items(resources, "resources", "an iterable of resources")
    return sorted({to_resource(resource).id for resource in items})


def check_since(since: object) -> tuple[int, int]:
    """Where a read of a history starts: a ``(step, timestamp)`` pair of signed 64-bit
    integers (a point's own, or any other: the read starts at the first point not before
    it)."""
    if (
        not isinstance(since, tuple)
        or len(since) != 2
        or not all(type(part) is int and INT64_MIN <= part <= INT64_MAX for part in since)
    ):
        raise InvalidTypeError(
            f"since must be a (step, timestamp) tuple of signed 64-bit integers, not "
            f"{short_repr(since)}"
        )
    return since[0], since[1]


def check_limit(limit: object, name: str = "limit") -> int:
    """How many results a ranking (or a page) holds: an integer (numpy's too, not bool)
    from 1 to 2**63 - 1, the largest any store takes."""
    if isinstance(limit, bool) or not isinstance(limit, numbers.Integral):
        raise InvalidTypeError(
            f"{name} {short_repr(limit)} of type {type(limit).__name__} is invalid: "
            "use a positive integer"
        )
    limit = operator.index(limit)
    if not 1 <= limit <= INT64_MAX:
        raise ValidationError(f"{name} {short_repr(limit)} is invalid: use 1 to {INT64_MAX}")
    return limit


def check_max_points(max_points: object) -> int:
    """How many points a sampled history may have: an integer (numpy's too, not bool) from
    4 (first, last, min and max) to 2**63 - 1."""
    from ._model import MIN_SAMPLE

    if isinstance(max_points, bool) or not isinstance(max_points, numbers.Integral):
        raise InvalidTypeError(
            f"max_points {short_repr(max_points)} of type {type(max_points).__name__} is "
            f"invalid: use an integer of at least {MIN_SAMPLE}"
        )
    max_points = operator.index(max_points)
    if not MIN_SAMPLE <= max_points <= INT64_MAX:
        raise ValidationError(
            f"max_points {short_repr(max_points)} is invalid: use {MIN_SAMPLE} to {INT64_MAX} "
            "(a sample keeps the first, last, least and greatest points)"
        )
    return max_points


def several(values: object, name: str, expected: str) -> list[object]:
    """One item (a string, or anything that is not an iterable) or an iterable of them."""
    if isinstance(values, str) or not isinstance(values, Iterable):
        return [values]
    return _items(values, name, expected)


def check_flag(flag: object, name: str) -> bool:
    """A yes/no argument: a ``bool`` (numpy's too), never an array whose truth is ambiguous."""
    if isinstance(flag, bool) or _is_boolean(flag):
        return bool(flag)
    raise InvalidTypeError(
        f"{name} {short_repr(flag)} of type {type(flag).__name__} is invalid: use True or False"
    )


def check_order(order: object) -> Literal["max", "min"]:
    """A ranking's order: ``"max"`` (greatest first) or ``"min"``."""
    if type(order) is str and order in ("max", "min"):
        return "max" if order == "max" else "min"
    raise ValidationError(f"order {short_repr(order)} is invalid: use 'max' or 'min'")


def check_rows(rows: object) -> list[object]:
    """What ``log_points`` takes: an iterable of points (not a string, not a single point)."""
    if isinstance(rows, MetricPoint):
        raise InvalidTypeError("log_points takes an iterable of points, not one point")
    return _items(rows, "points", "an iterable of points")


def _items(values: object, name: str, expected: str) -> list[object]:
    """The items of an iterable argument; a string, or what fails to iterate (a 0-d numpy
    array is an ``Iterable`` that raises), is refused naming what was expected."""
    if isinstance(values, Iterable) and not isinstance(values, str | bytes):
        try:
            return list(values)
        except TypeError:
            pass
    raise InvalidTypeError(
        f"{name} {short_repr(values)} of type {type(values).__name__} are not {expected}"
    )


def check_point_row(row: object) -> tuple[object, object, object, object]:
    """A row given as a point (``log_points``): a :class:`MetricPoint`, or any sequence of
    key, value, step and timestamp; each is checked by :func:`check_point`."""
    if isinstance(row, MetricPoint):
        return row
    if isinstance(row, str | bytes) or not isinstance(row, Sequence) or len(row) != 4:
        raise InvalidTypeError(
            f"point {short_repr(row)} is not a point: pass MetricPoint(key, value, step, "
            "timestamp) or a (key, value, step, timestamp) sequence"
        )
    key, value, step, timestamp = row
    return key, value, step, timestamp


def check_perf(perf: object) -> PerfRecord:
    """A performance record as given to ``log_points``: a ``(metric, value)`` pair."""
    if isinstance(perf, str | bytes) or not isinstance(perf, Sequence) or len(perf) != 2:
        raise InvalidTypeError(
            f"perf {short_repr(perf)} is not a performance record: pass PerfRecord(metric, value)"
        )
    metric = check_key(perf[0])
    return PerfRecord(metric, check_value(metric, perf[1]))


#: Splits whose value ranks a resource in ``log_metrics(..., perf_metric=...)``, in order.
PERF_SPLITS = ("valid", "train")


def flatten(metrics: object) -> dict[str, Any]:
    """lolpop's ``{split: {name: value}}`` -> ``{"<split>_<name>": value}``; flat entries
    stay. Names are valid keys; two names that flatten to one key are refused (which value
    was meant cannot be known, and keeping one would silently lose the other). Values are
    checked later, with their flattened keys."""
    if not isinstance(metrics, Mapping):
        raise InvalidTypeError(
            f"metrics of type {type(metrics).__name__} are not a mapping: "
            "pass {name: value} or {split: {name: value}}"
        )
    flat: dict[str, Any] = {}
    for name, value in metrics.items():
        check_key(name)
        if isinstance(value, Mapping):
            entries = [(f"{name}_{check_key(inner)}", v) for inner, v in value.items()]
        else:
            entries = [(name, value)]
        for key, item in entries:
            if key in flat:  # {"train_f1": …, "train": {"f1": …}}: which one is meant?
                raise ValidationError(
                    f"metrics name {key!r} twice (a flat name and a split's name flatten to "
                    "it); nothing was written"
                )
            flat[key] = item
    return flat


def perf_value(metrics: Mapping[str, Any], perf_metric: str) -> float:
    """The value that ranks a resource: the valid split's, else the train split's (nested
    metrics), or the flat entry itself. Raises before anything is written."""
    for split in PERF_SPLITS:
        inner = metrics.get(split)
        if isinstance(inner, Mapping) and perf_metric in inner:
            return check_value(f"{split}_{perf_metric}", inner[perf_metric])
    if perf_metric in metrics and not isinstance(metrics[perf_metric], Mapping):
        return check_value(perf_metric, metrics[perf_metric])
    raise ValidationError(
        f"perf_metric {perf_metric!r} is not among the metrics: looked for "
        f"{', '.join(perf_keys(perf_metric))}; nothing was written"
    )


def perf_keys(perf_metric: str) -> list[str]:
    """The stored keys a perf metric's value comes from, in the order they are looked at."""
    return [f"{split}_{perf_metric}" for split in PERF_SPLITS] + [perf_metric]
