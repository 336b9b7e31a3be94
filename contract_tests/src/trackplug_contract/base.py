"""What every test of the suite stands on: the backend factory and the backend/model pair.

A plugin author overrides :meth:`ContractBase.make_backend` (required) and, for persistent
backends, :meth:`ContractBase.reopen_backend`; everything else has a default.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, Literal, TypeVar

import pytest
from hypothesis import settings

from trackplug import Capabilities, MetricPoint, Tracker, ValidationError

from .profiles import Kind, contract_settings, shrinking_limited
from .reference import exact, exact_best, exact_history, exact_latest, reference_tracker

__all__ = ["ContractBase", "Pair"]

T = TypeVar("T")
#: Seconds between the facade's background flushes in the suite: reads and close drain the
#: buffer anyway, so batches reach the backend at points the tests choose.
FLUSH_INTERVAL = 3600.0


def open_tracker(backend: object) -> Tracker:
    """The public facade on ``backend``, as users get it from ``connect``."""
    return Tracker(backend, flush_interval=FLUSH_INTERVAL)


class Pair:
    """The backend under test and the model, each behind its own :class:`~trackplug.Tracker`,
    driven with the same calls and compared exactly."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self.caps: Capabilities = tracker.capabilities
        self.model = reference_tracker(self.caps)
        self._names = itertools.count()

    def fresh(self, stem: str = "r") -> str:
        """A resource id (or key) not used before in this pair: examples don't meet."""
        return f"{stem}{next(self._names)}"

    def do(self, call: Callable[[Tracker], T]) -> T | None:
        """Make ``call`` on the model, then on the backend: both succeed, or the backend
        raises what the model raises (the contract's error, or ``UnsupportedValueError``
        for a value the backend declared it refuses). Returns the backend's result."""
        try:
            call(self.model)
        except ValidationError as error:
            with pytest.raises(type(error)):
                call(self.tracker)
            return None
        return call(self.tracker)

    def log(self, rid: str, key: object, value: object, step: object = 0, ts: object = 7) -> None:
        """``log_metric`` on both (raw input: the facade validates it on each)."""
        self.do(lambda t: t.log_metric(rid, key, value, step, ts))  # type: ignore[arg-type]

    def log_metrics(
        self,
        rid: str,
        metrics: Mapping[str, Any],
        perf: str | None = None,
        step: int = 0,
        ts: int = 7,
    ) -> None:
        """``log_metrics`` on both, at ``step`` and timestamp ``ts``."""
        self.do(lambda t: t.log_metrics(rid, metrics, perf, step=step, timestamp=ts))

    def log_points(self, rid: str, points: Iterable[MetricPoint]) -> None:
        """``log_metric`` for each point on both, one call after another (one batch)."""
        points = list(points)

        def call(tracker: Tracker) -> None:
            for p in points:
                tracker.log_metric(rid, p.key, p.value, p.step, p.timestamp)

        self.do(call)

    def check(self, resources: Iterable[str], keys: Iterable[str] = ()) -> None:
        """Both hold the same: resource list, and per resource latest values, histories,
        get_metric and perf records; ``best`` for every key, both orders."""
        assert self.tracker.resources() == self.model.resources(), "resources()"
        keys = sorted(set(keys))
        for rid in sorted(set(resources)):
            self.check_resource(rid, keys)
        for key in keys:
            for order in ("max", "min"):
                self.check_best(key, order, 3)

    def check_overview(self, resources: Iterable[str], keys: Iterable[str]) -> None:
        """The cheap comparison: resource list, and per resource its latest values and
        perf record; ``best`` for every key, both orders."""
        assert self.tracker.resources() == self.model.resources(), "resources()"
        for rid in sorted(set(resources)):
            got = exact_latest(self.tracker.latest(rid))
            assert got == exact_latest(self.model.latest(rid)), f"latest({rid!r})"
            assert exact_perf(self.tracker, rid) == exact_perf(self.model, rid), f"perf({rid!r})"
        for key in sorted(set(keys)):
            for order in ("max", "min"):
                self.check_best(key, order, 3)

    def check_resource(self, rid: str, keys: Iterable[str] = ()) -> None:
        """One resource holds on the backend exactly what it holds on the model."""
        want = self.model.latest(rid)
        assert exact_latest(self.tracker.latest(rid)) == exact_latest(want), f"latest({rid!r})"
        for key in sorted(set(want) | set(keys)):
            got = self.tracker.history(rid, key)
            assert exact_history(got) == exact_history(self.model.history(rid, key)), (
                f"history({rid!r}, {key!r})"
            )
            size = max(1, len(got) // 3)  # several pages, a boundary between each
            paged = list(self.tracker.iter_history(rid, key, page_size=size))
            assert exact_history(paged) == exact_history(got), (
                f"iter_history({rid!r}, {key!r}, page_size={size}) is not history()"
            )
            expected = exact(self.model.get_metric(rid, key))
            assert exact(self.tracker.get_metric(rid, key)) == expected, (
                f"get_metric({rid!r}, {key!r})"
            )
        assert exact_perf(self.tracker, rid) == exact_perf(self.model, rid), f"perf({rid!r})"

    def check_best(self, key: str, order: Literal["max", "min"], limit: int) -> None:
        """``best`` ranks the same resources with the same values on both."""
        got = exact_best(self.tracker.best(key, order, limit))
        assert got == exact_best(self.model.best(key, order, limit)), (
            f"best({key!r}, {order!r}, {limit})"
        )

    def close(self) -> None:
        """Close both trackers (the backend's ``close`` hook runs)."""
        try:
            self.tracker.close()
        finally:
            self.model.close()


def exact_perf(tracker: Tracker, rid: str) -> tuple[str, int | None] | None:
    """The perf record of ``rid`` as ``(metric, value bits)``, or None."""
    record = tracker.perf(rid)
    return None if record is None else (record.metric, exact(record.value))


class ContractBase:
    """The factory side of the suite. Override :meth:`make_backend`; the rest is optional."""

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.trackplug_contract]

    def make_backend(self) -> object:
        """Return a new, empty backend: an object whose methods implement trackplug's hooks
        (``@trackplug.hookimpl``). Called once per test, and once per run of the state
        machine. **Required.**"""
        raise NotImplementedError

    def reopen_backend(self, backend: object) -> object:
        """Return a new backend object on the same store as ``backend``, which the suite
        has already closed (through its tracker). Required when the backend declares
        ``Capabilities(persistent=True)``; never called otherwise."""
        raise NotImplementedError

    def make_backend_with_password(self, password: str) -> object | None:
        """Return a backend built from a URL that contains ``password`` (e.g.
        ``postgresql://user:<password>@host/db``), or None when the backend's URLs carry
        no credentials. The suite checks that the password shows nowhere."""
        return None

    def hypothesis_settings(self, kind: Kind) -> settings:
        """The settings of one property test (``"property"``) or of the state machine
        (``"stateful"``), from the active profile. Override to adjust for a slow store,
        e.g. ``return settings(super().hypothesis_settings(kind), max_examples=10)``."""
        return contract_settings(kind)

    # -- helpers for the tests -------------------------------------------------------------

    def new_backend(self) -> object:
        """:meth:`make_backend`, with a clear failure when the subclass did not define it."""
        if type(self).make_backend is ContractBase.make_backend:
            pytest.fail(
                f"{type(self).__name__} subclasses trackplug_contract.BackendContract but does "
                "not define make_backend(self): return a new, empty backend from it, e.g. "
                "`def make_backend(self): return MyBackend('mystore://...')`",
                pytrace=False,
            )
        return self.make_backend()

    def reopen(self, backend: object) -> object:
        """:meth:`reopen_backend`, failing clearly when a persistent backend lacks it."""
        if type(self).reopen_backend is ContractBase.reopen_backend:
            pytest.fail(
                f"{type(self).__name__}: the backend declares Capabilities(persistent=True), "
                "so the suite checks that data survives close(); define "
                "reopen_backend(self, backend) returning a new backend on the same store",
                pytrace=False,
            )
        return self.reopen_backend(backend)

    @contextmanager
    def pair(self) -> Iterator[Pair]:
        """A new backend and the model behind two trackers, closed at the end."""
        pair = Pair(open_tracker(self.new_backend()))
        try:
            yield pair
        finally:
            pair.close()

    def examples(self, test: Callable[..., None]) -> Callable[..., None]:
        """Give ``test`` (a ``@given`` function) the settings of a property test, and the
        profile's limit on shrinking."""
        configured: Callable[..., None] = self.hypothesis_settings("property")(test)

        def run(*args: Any, **kwargs: Any) -> None:
            with shrinking_limited():
                configured(*args, **kwargs)

        return run
