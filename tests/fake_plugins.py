"""Plugin modules for the registry tests, found through hand-made entry points."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import trackplug
from trackplug import MetricPoint, PerfRecord, Resource
from trackplug._memory import MemoryBackend
from trackplug._model import Batch
from trackplug.spec import Register, hookimpl


class Another:
    """A plugin that also claims ``memory://``."""

    @staticmethod
    @trackplug.hookimpl
    def trackplug_register_backends(register: Register) -> None:
        register("memory", MemoryBackend)


class Misspelled:
    """A plugin whose hook name is misspelled."""

    @staticmethod
    @trackplug.hookimpl
    def trackplug_register_backend(register: Register) -> None:
        register("typo", MemoryBackend)


class Fake:
    """Serves ``postgresql`` with the memory backend: enough to test scheme lookup."""

    @staticmethod
    @trackplug.hookimpl
    def trackplug_register_backends(register: Register) -> None:
        register("postgresql", MemoryBackend)


class FlakyBackend(MemoryBackend):
    """The reference backend behind a switch: while ``down``, every write fails as a
    server that is down would, and opening one fails while ``unreachable``."""

    down = False
    unreachable = False
    instances: ClassVar[dict[str, FlakyBackend]] = {}
    writes = 0

    @classmethod
    def open(cls, url: str) -> FlakyBackend:
        """One store per URL, like a server: reconnecting finds the same data."""
        if cls.unreachable:
            raise ConnectionRefusedError(f"cannot reach {url}")
        return cls.instances.setdefault(url, cls(url))

    @hookimpl
    def log_metric(self, batch: Batch) -> None:
        self._check()
        super().log_metric(batch)

    @hookimpl
    def log_metrics(
        self, resource: Resource, points: Sequence[MetricPoint], perf: PerfRecord | None
    ) -> None:
        self._check()
        super().log_metrics(resource, points, perf)

    def _check(self) -> None:
        type(self).writes += 1
        if self.down:
            raise ConnectionError(f"{self.url} is down")


class Flaky:
    @staticmethod
    @trackplug.hookimpl
    def trackplug_register_backends(register: Register) -> None:
        register("flaky", FlakyBackend.open)
