"""Backends that each break one rule of params, tags or runs; the suite must fail on each.

Like ``broken_backends``: the in-memory reference (or its persistent journal variant) with
one hook changed. ``MetricsOnly`` is correct: a backend without the params and tags hooks,
whose every params operation the facade must refuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from broken_backends import JournalBackend

from trackplug import Resource, hookimpl
from trackplug._memory import MemoryBackend


class ParamsOverwritten(MemoryBackend):
    """A param logged again with another value replaces the first (no write-once rule)."""

    @hookimpl
    def log_params(self, resource: Resource, params: Mapping[str, Any]) -> None:
        self._params.setdefault(resource, {}).update(params)


class ParamsConflictPartial(MemoryBackend):
    """On a conflict, the keys before it are written anyway (not all or nothing)."""

    @hookimpl
    def log_params(self, resource: Resource, params: Mapping[str, Any]) -> None:
        held = self._params.setdefault(resource, {})
        for key, value in params.items():
            if key not in held:
                held[key] = value
        MemoryBackend.log_params(self, resource, params)


class ParamsAsStrings(MemoryBackend):
    """Keeps ``str(value)`` but declares typed params."""

    @hookimpl
    def log_params(self, resource: Resource, params: Mapping[str, Any]) -> None:
        MemoryBackend.log_params(self, resource, {k: str(v) for k, v in params.items()})


class ParamsFloatsRounded(MemoryBackend):
    """Floats kept to 6 significant digits (a float32 column, or "%g")."""

    @hookimpl
    def log_params(self, resource: Resource, params: Mapping[str, Any]) -> None:
        rounded = {k: float(f"{v:g}") if isinstance(v, float) else v for k, v in params.items()}
        self._params.setdefault(resource, {}).update(rounded)


class ParamsNoneReadAsMissing(MemoryBackend):
    """A param whose value is None reads back as absent (a NULL column read as no row)."""

    @hookimpl
    def get_params(self, resource: Resource) -> dict[str, Any]:
        held = MemoryBackend.get_params(self, resource)
        return {key: value for key, value in held.items() if value is not None}


class TagsEmptyReadAsMissing(MemoryBackend):
    """A tag whose value is "" reads back as absent (a store that keeps "" as NULL)."""

    @hookimpl
    def get_tags(self, resource: Resource) -> dict[str, str]:
        held = MemoryBackend.get_tags(self, resource)
        return {key: value for key, value in held.items() if value}


class TagsWriteOnce(MemoryBackend):
    """A tag set again keeps its first value."""

    @hookimpl
    def set_tags(self, resource: Resource, tags: Mapping[str, str]) -> None:
        held = self._tags.setdefault(resource, {})
        for key, value in tags.items():
            held.setdefault(key, value)


class TagsShared(MemoryBackend):
    """Tags are kept per key, for every resource at once."""

    @hookimpl
    def set_tags(self, resource: Resource, tags: Mapping[str, str]) -> None:
        for held in [*self._tags.values(), self._tags.setdefault(resource, {})]:
            held.update(tags)


class TaggedIgnoresValue(MemoryBackend):
    """``tagged(key, value)`` answers every resource with the key, whatever its value."""

    @hookimpl
    def tagged(self, key: str, value: str | None) -> list[str]:
        return MemoryBackend.tagged(self, key, None)


class JournalWithoutParams(JournalBackend):
    """Persistent, but params are not journaled: gone after a reopen."""

    @hookimpl
    def log_params(self, resource: Resource, params: Mapping[str, Any]) -> None:
        MemoryBackend.log_params(self, resource, params)


class MetricsOnly(MemoryBackend):
    """Correct: no params and tags hooks at all (a backend written before them)."""

    log_params = get_params = set_tags = get_tags = tagged = None  # type: ignore[assignment]


MUTANTS: dict[str, type[MemoryBackend]] = {
    cls.__name__: cls
    for cls in (
        ParamsOverwritten,
        ParamsConflictPartial,
        ParamsAsStrings,
        ParamsFloatsRounded,
        ParamsNoneReadAsMissing,
        TagsEmptyReadAsMissing,
        TagsWriteOnce,
        TagsShared,
        TaggedIgnoresValue,
        JournalWithoutParams,
    )
}
CORRECT: dict[str, type[MemoryBackend]] = {"MetricsOnly": MetricsOnly}
