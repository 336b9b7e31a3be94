"""Params and tags: their rules, in one place (MLflow's, so anything logged can go there).

* A **param** is write-once per key: logging the same value again does nothing, another
  value is a :class:`~trackplug.ParamConflictError`. Values are JSON scalars (str, int,
  finite float, bool, None), read back with their type where the store keeps types
  (``Capabilities.params == "typed"``) and as MLflow's ``str(value)`` where it keeps text.
  "The same value" means the same JSON text, so ``1``, ``1.0`` and ``True`` differ.
* A **tag** is a mutable string: setting it again replaces it.
* Keys follow the metric key rule; a param's text is at most 6,000 characters, a tag's
  8,000 (MLflow's limits). Tag keys starting with ``trackplug.`` or ``mlflow.`` belong to
  the stores themselves (runs' status and times, MLflow's own tags) and are refused.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ._errors import InvalidTypeError, ParamConflictError, ValidationError
from ._validation import _CONTROL_CHARS, _key_problem, short_repr

if TYPE_CHECKING:
    from ._model import Capabilities, ParamValue, Resource

__all__ = [
    "MAX_PARAM_LENGTH",
    "MAX_TAG_LENGTH",
    "RUN_END_TAG",
    "RUN_STATUS_TAG",
    "SYSTEM_TAG_PREFIXES",
    "check_params",
    "check_tags",
    "param_conflicts",
    "param_text",
    "raise_on_conflict",
    "user_tags",
]

MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 8000
#: Tag keys the stores keep for themselves; users' tags never start with them.
SYSTEM_TAG_PREFIXES = ("trackplug.", "mlflow.")
#: A run's own tags (:mod:`trackplug._runs`); a backend may mirror status and end natively.
RUN_NAME_TAG = "trackplug.run.name"
RUN_STATUS_TAG = "trackplug.run.status"
RUN_START_TAG = "trackplug.run.start"
RUN_END_TAG = "trackplug.run.end"
RUN_HOST_TAG = "trackplug.run.host"
RUN_PID_TAG = "trackplug.run.pid"


def param_text(value: ParamValue) -> str:
    """A param's identity: its JSON text (``1``, ``1.0`` and ``true`` are three values)."""
    import json  # only params need it: not loaded by ``import trackplug``

    return json.dumps(value)


def check_params(params: object) -> dict[str, ParamValue]:
    """``{key: JSON scalar}``, every key and value checked; numpy scalars become Python's."""
    if not isinstance(params, Mapping):
        raise InvalidTypeError(
            f"params of type {type(params).__name__} are not a mapping: pass {{name: value}}"
        )
    return {_check_key("param", key): _param_value(key, value) for key, value in params.items()}


def _param_value(key: str, value: object) -> ParamValue:
    checked: ParamValue
    if value is None or isinstance(value, bool | str):
        checked = value
    elif type(value).__name__ in ("bool_", "bool") and hasattr(value, "item"):
        checked = bool(value)  # numpy.bool_
    elif isinstance(value, numbers.Integral):
        checked = int(value)
    elif isinstance(value, numbers.Real):
        try:
            checked = float(value)
        except OverflowError:  # Fraction(10**400, 3): finite, too large for a float
            checked = math.inf
        if not math.isfinite(checked):
            raise ValidationError(
                f"param {key!r} is {short_repr(value)}: param values are JSON scalars (finite "
                "numbers)"
            )
    else:
        raise InvalidTypeError(
            f"param {key!r} has value {short_repr(value)} of type {type(value).__name__}: "
            "param values are JSON scalars (str, int, float, bool or None)"
        )
    text = _text(checked)
    if text is None or len(text) > MAX_PARAM_LENGTH:
        raise ValidationError(
            f"param {key!r} is too long: a param's text is at most {MAX_PARAM_LENGTH} "
            "characters (MLflow's limit); use an artifact or a tag for longer text"
        )
    if isinstance(checked, str) and _CONTROL_CHARS.search(checked.replace("\n", "")):
        raise ValidationError(f"param {key!r} holds control characters or lone surrogates")
    return checked


def _text(value: ParamValue) -> str | None:
    """``str(value)``, what MLflow keeps; None for an int too long to print."""
    try:
        return str(value)
    except ValueError:  # an int past Python's digit limit: far past 6,000 characters
        return None


def check_tags(tags: object) -> dict[str, str]:
    """``{key: string}``, every key and value checked; system keys refused."""
    if not isinstance(tags, Mapping):
        raise InvalidTypeError(
            f"tags of type {type(tags).__name__} are not a mapping: pass {{name: text}}"
        )
    checked = {}
    for key, value in tags.items():
        key = _check_key("tag", key)
        if key.startswith(SYSTEM_TAG_PREFIXES):
            raise ValidationError(
                f"tag {key!r} is reserved: keys starting with "
                f"{' or '.join(map(repr, SYSTEM_TAG_PREFIXES))} belong to the stores"
            )
        checked[key] = check_tag_value(key, value)
    return checked


def check_tag_value(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidTypeError(
            f"tag {key!r} has value {short_repr(value)} of type {type(value).__name__}: "
            "tags are strings (str(value) if you mean its text)"
        )
    if len(value) > MAX_TAG_LENGTH:
        raise ValidationError(
            f"tag {key!r} is too long: tags are at most {MAX_TAG_LENGTH} characters "
            "(MLflow's limit)"
        )
    if _CONTROL_CHARS.search(value.replace("\n", "")):
        raise ValidationError(f"tag {key!r} holds control characters or lone surrogates")
    return value


def _check_key(kind: str, key: object) -> str:
    if not isinstance(key, str):
        raise InvalidTypeError(
            f"{kind} key {short_repr(key)} is a {type(key).__name__}: keys are strings"
        )
    problem = _key_problem(key)
    if problem:
        raise ValidationError(f"{kind} key {key!r} is invalid: {problem}")
    return key


def user_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags a user set: ``tags`` without the stores' own, sorted by key."""
    return {k: v for k, v in sorted(tags.items()) if not k.startswith(SYSTEM_TAG_PREFIXES)}


def param_conflicts(
    held: Mapping[str, ParamValue], new: Mapping[str, ParamValue], caps: Capabilities
) -> dict[str, tuple[ParamValue, ParamValue]]:
    """``{key: (held, new)}`` for every key of ``new`` that ``held`` (what a store reads
    back) has with another value than the one the store would keep for ``new``'s."""
    return {
        key: (held[key], value)
        for key, value in new.items()
        if key in held and param_text(held[key]) != param_text(caps.stored_param(value))
    }


def raise_on_conflict(
    resource: Resource,
    held: Mapping[str, ParamValue],
    new: Mapping[str, ParamValue],
    caps: Capabilities,
) -> None:
    """Raise :class:`~trackplug.ParamConflictError` naming the first conflicting param."""
    conflicts = param_conflicts(held, new, caps)
    if conflicts:
        key, (old, value) = next(iter(sorted(conflicts.items())))
        raise ParamConflictError(
            f"param {key!r} of {resource.id!r} is already {old!r}, not {value!r}: params are "
            "write-once (MLflow's rule); start a new run for new values, or use a tag for "
            "something that changes. Nothing was written"
        )
