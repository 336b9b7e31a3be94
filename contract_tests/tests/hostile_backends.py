"""Backends that misbehave the way a third party's might, beyond breaking one rule: hooks
that raise whatever they like, answer with the wrong type or None, or take their time.
(One that changes its arguments in place cannot: the facade hands out tuples; that it
then takes nothing from the other backends is tests/test_fanout.py's.) The suite must fail
on each broken one with a failure of a test (never an error of the suite itself, never a
pass), and pass on a slow correct one.

``HOSTILE`` names the ones it must fail on, ``WRONG_ANSWERS`` those of them the facade
itself refuses (by hook), ``SLOW`` the correct one; :func:`contract_for` builds the test
class a plugin author would write.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from trackplug_contract import BackendContract

from trackplug import MetricPoint, PerfRecord, Resource, hookimpl
from trackplug.plugin import Batch, MemoryBackend


class _Latest(MemoryBackend):
    """The reference, but ``latest`` answers :meth:`answer` of the right answer."""

    def answer(self, real: dict[str, float]) -> Any:
        return real

    @hookimpl
    def latest(self, resource: Resource) -> Any:
        return self.answer(super().latest(resource))


class _History(MemoryBackend):
    """The reference, but ``history`` answers :meth:`answer` of the right answer."""

    def answer(self, real: list[MetricPoint]) -> Any:
        return real

    @hookimpl
    def history(self, resource: Resource, key: str) -> Any:
        return self.answer(super().history(resource, key))


class LatestRaisesRuntimeError(_Latest):
    def answer(self, real: dict[str, float]) -> Any:
        raise RuntimeError("the store went away")


class HistoryRaisesKeyError(_History):
    def answer(self, real: list[MetricPoint]) -> Any:
        raise KeyError("loss")


class ResourcesRaisesTypeError(MemoryBackend):
    @hookimpl
    def resources(self) -> list[str]:
        raise TypeError("'NoneType' object is not iterable")


class WriteRaisesValidationError(MemoryBackend):
    """Raises the facade's own error type, as if the input were bad: the suite must not
    take it for the contract's refusal of a bad input."""

    @hookimpl
    def log_metric(self, batch: Batch) -> None:
        from trackplug import ValidationError

        raise ValidationError("metric 'loss' is invalid")


class WriteRaisesSystemExit(MemoryBackend):
    """Raises what is not an ``Exception``: it must stop the run, not pass it."""

    @hookimpl
    def log_metrics(
        self, resource: Resource, points: Sequence[MetricPoint], perf: PerfRecord | None
    ) -> None:
        raise SystemExit(3)


class LatestReturnsNone(_Latest):
    def answer(self, real: dict[str, float]) -> Any:
        return None


class LatestValuesAsText(_Latest):
    def answer(self, real: dict[str, float]) -> Any:
        return {key: repr(value) for key, value in real.items()}


class HistoryReturnsTuples(_History):
    def answer(self, real: list[MetricPoint]) -> Any:
        return [tuple(point) for point in real]


class HistoryReturnsNone(_History):
    def answer(self, real: list[MetricPoint]) -> Any:
        return None


class ResourcesReturnsAString(MemoryBackend):
    @hookimpl
    def resources(self) -> Any:
        return "".join(super().resources())


class BestReturnsDict(MemoryBackend):
    """Implements the optional ranking hook, answering a mapping of the ranked ids."""

    @hookimpl
    def best(self, key: str, order: str, limit: int) -> Any:
        return {rid: self.latest(Resource(rid)).get(key) for rid in self.resources()}


class PerfReturnsTuple(MemoryBackend):
    @hookimpl
    def get_perf(self, resource: Resource) -> Any:
        perf = super().get_perf(resource)
        return None if perf is None else tuple(perf)


class SlowButCorrect(MemoryBackend):
    """The reference, a few milliseconds slower at every write and read: correct, so it
    must pass (the suite has no deadline)."""

    def __getattribute__(self, name: str) -> Any:
        if name in ("log_metric", "log_metrics", "history", "latest", "resources"):
            time.sleep(0.002)
        return super().__getattribute__(name)


HOSTILE: dict[str, type[MemoryBackend]] = {
    cls.__name__: cls
    for cls in (
        LatestRaisesRuntimeError,
        HistoryRaisesKeyError,
        ResourcesRaisesTypeError,
        WriteRaisesValidationError,
        WriteRaisesSystemExit,
        LatestReturnsNone,
        HistoryReturnsTuples,
        HistoryReturnsNone,
        ResourcesReturnsAString,
        BestReturnsDict,
        PerfReturnsTuple,
        LatestValuesAsText,
    )
}
SLOW: dict[str, type[MemoryBackend]] = {"SlowButCorrect": SlowButCorrect}
#: The backends whose answers are of the wrong type, and the hook that gives them: the
#: facade refuses each with a BackendError naming it.
WRONG_ANSWERS: dict[str, str] = {
    "LatestReturnsNone": "latest",
    "LatestValuesAsText": "latest",
    "HistoryReturnsTuples": "history",
    "HistoryReturnsNone": "history",
    "ResourcesReturnsAString": "resources",
    "BestReturnsDict": "best",
    "PerfReturnsTuple": "get_perf",
}


def contract_for(name: str) -> type[BackendContract]:
    """The test class for the backend called ``name``."""
    cls = {**HOSTILE, **SLOW}[name]
    return type(f"Test{name}", (BackendContract,), {"make_backend": lambda self: cls()})
