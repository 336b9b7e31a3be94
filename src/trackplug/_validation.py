"""Every input rule of the contract, in one place; the facade calls these before buffering.

Keys follow MLflow's rule, so anything logged anywhere can later be copied into MLflow.
Each check returns the normalized value or raises a :class:`~trackplug.ValidationError`
(an :class:`~trackplug.InvalidTypeError` when the type is wrong) that names the offending
key or value and the rule it breaks. Nothing is written before every check has passed.
"""

from __future__ import annotations

import numbers
import posixpath
import re
import time
from collections.abc import Mapping
from typing import Any

from ._errors import InvalidTypeError, ValidationError
from ._model import INT64_MAX, INT64_MIN, MetricPoint, Resource

__all__ = [
    "MAX_KEY_LENGTH",
    "PERF_SPLITS",
    "check_key",
    "check_point",
    "check_step",
    "check_timestamp",
    "check_value",
    "flatten",
    "now_ms",
    "perf_value",
    "to_resource",
]

MAX_KEY_LENGTH = 250
MAX_RESOURCE_ID_LENGTH = 250
_KEY_CHARS = re.compile(r"^[/\w.\- :]*$")
# Control characters, and lone surrogates, which no database driver or JSON can encode.
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
# Caches of inputs already found valid: the hot path of log_metric is a set lookup.
_CACHE_LIMIT = 65_536
#: Every NaN is stored as this one, so "NaN round-trips bit-exactly" has one meaning.
NAN = float("nan")
_valid_keys: set[str] = set()
_resources: dict[str, Resource] = {}


def now_ms() -> int:
    """The current time in milliseconds since the epoch, the default timestamp."""
    return time.time_ns() // 1_000_000


def check_key(key: object) -> str:
    """A metric key: 1..250 of ``[/\\w.\\- :]``, no ``..``, no leading ``/``, a normal path."""
    if key in _valid_keys:
        return key  # only str ever enters the cache
    if not isinstance(key, str):
        raise InvalidTypeError(f"metric key {key!r} is a {type(key).__name__}: keys are strings")
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
    if not _KEY_CHARS.match(key):
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
            return number if number == number else NAN
        except OverflowError:
            raise ValidationError(
                f"metric {key!r} has value {value!r}, too large for a 64-bit float"
            ) from None
    item = _torch_scalar(value)
    if item is not None:
        return check_value(key, item)
    raise InvalidTypeError(
        f"metric {key!r} has value {_short(value)} of type {type(value).__name__}: "
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


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_step(key: str, step: object) -> int:
    """A step: an integer (not bool) within signed 64 bits; negative and unordered allowed."""
    if type(step) is not int:
        if isinstance(step, bool) or not isinstance(step, numbers.Integral):
            raise InvalidTypeError(
                f"metric {key!r} has step {_short(step)} of type {type(step).__name__}: "
                "steps are integers"
            )
        step = int(step)
    if not INT64_MIN <= step <= INT64_MAX:
        raise ValidationError(f"metric {key!r} has step {step}: steps are signed 64-bit integers")
    return step


def check_timestamp(key: str, timestamp: object) -> int:
    """A timestamp in ms since the epoch: a non-negative 64-bit integer; None means now."""
    if timestamp is None:
        return now_ms()
    if isinstance(timestamp, bool) or not isinstance(timestamp, numbers.Integral):
        raise InvalidTypeError(
            f"metric {key!r} has timestamp {_short(timestamp)} of type "
            f"{type(timestamp).__name__}: timestamps are integers (milliseconds since the epoch)"
        )
    timestamp = int(timestamp)
    if not 0 <= timestamp <= INT64_MAX:
        raise ValidationError(
            f"metric {key!r} has timestamp {timestamp}: "
            "timestamps are non-negative 64-bit integers (milliseconds since the epoch)"
        )
    return timestamp


# The named tuple's own __new__ is Python code; tuple.__new__ builds the same value 3x faster.
_new_point = tuple.__new__


def check_point(key: object, value: object, step: object, timestamp: object) -> MetricPoint:
    """One point, every rule checked; the common case (a known key, a float, an int step,
    no timestamp) takes the short way through the same rules."""
    if key not in _valid_keys:
        key = check_key(key)
    if type(value) is not float or value != value:
        value = check_value(key, value)
    if type(step) is not int or not INT64_MIN <= step <= INT64_MAX:
        step = check_step(key, step)
    if timestamp is None:
        timestamp = now_ms()
    elif type(timestamp) is not int or not 0 <= timestamp <= INT64_MAX:
        timestamp = check_timestamp(key, timestamp)
    return _new_point(MetricPoint, (key, value, step, timestamp))


def to_resource(resource: object) -> Resource:
    """Normalize what users call a resource: a string id, an object with ``.id``, or
    lolpop's ``(id, run)`` tuple. Ids are 1..250 printable characters."""
    if type(resource) is str:
        cached = _resources.get(resource)
        if cached is not None:
            return cached
    elif isinstance(resource, Resource):
        return resource
    raw = resource[0] if isinstance(resource, tuple) and resource else resource
    raw = raw if isinstance(raw, str | int) else getattr(raw, "id", raw)
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise InvalidTypeError(
            f"resource {_short(resource)} is not a resource: pass a string id, an object "
            "with an 'id' attribute, or an (id, run) tuple"
        )
    rid = str(raw)
    if not 1 <= len(rid) <= MAX_RESOURCE_ID_LENGTH or _CONTROL_CHARS.search(rid):
        raise ValidationError(
            f"resource id {rid!r} is invalid: ids are 1 to {MAX_RESOURCE_ID_LENGTH} "
            "characters without control characters or lone surrogates"
        )
    normalized = Resource(rid)
    if isinstance(resource, str):
        if len(_resources) >= _CACHE_LIMIT:
            _resources.clear()
        _resources[resource] = normalized
    return normalized


#: Splits whose value ranks a resource in ``log_metrics(..., perf_metric=...)``, in order.
PERF_SPLITS = ("valid", "train")


def flatten(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """lolpop's ``{split: {name: value}}`` -> ``{"<split>_<name>": value}``; flat entries
    stay. Values are checked later, with their flattened keys."""
    if not isinstance(metrics, Mapping):
        raise InvalidTypeError(
            f"metrics of type {type(metrics).__name__} are not a mapping: "
            "pass {name: value} or {split: {name: value}}"
        )
    flat: dict[str, Any] = {}
    for name, value in metrics.items():
        if isinstance(value, Mapping):
            flat.update({f"{name}_{inner}": v for inner, v in value.items()})
        else:
            flat[name] = value
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
    looked_for = [f"{split}_{perf_metric}" for split in PERF_SPLITS] + [perf_metric]
    raise ValidationError(
        f"perf_metric {perf_metric!r} is not among the metrics: looked for "
        f"{', '.join(looked_for)}; nothing was written"
    )
