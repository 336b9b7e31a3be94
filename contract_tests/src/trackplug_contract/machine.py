"""The state machine: random sequences of every operation, valid and invalid, on the
backend and on the model, compared exactly after every step.

Use it on its own (``BackendContract`` already does)::

    from hypothesis.stateful import run_state_machine_as_test
    from trackplug_contract.machine import ContractMachine

    run_state_machine_as_test(lambda: ContractMachine(MyBackend), settings=...)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from trackplug import MetricPoint, UnsupportedOperationError

from . import strategies as tps
from .base import Pair, open_tracker
from .params import exact_params

__all__ = ["KEYS", "RESOURCES", "ContractMachine"]

#: The resources the machine writes to: look-alikes, so that leaks between them show
#: (two of the longest ids allowed, apart in their last character only).
RESOURCES = ("a", "a1", "A", "b/c", "é", "L" * 249 + "1", "L" * 249 + "2")
#: The keys it logs directly; ``log_metrics`` adds ``<split>_<name>`` ones.
KEYS = ("loss", "val.loss", "f1", "valid_f1")
_NAMES = st.sampled_from(["f1", "loss"])
_resources = st.sampled_from(RESOURCES)
_keys = st.sampled_from(KEYS)
_steps = st.one_of(st.integers(min_value=-1, max_value=3), st.sampled_from(tps.SPECIAL_STEPS))
_timestamps = st.sampled_from([0, 1, 2, 2**63 - 1])
_points = st.builds(MetricPoint, _keys, tps.values(), _steps, _timestamps)
_metrics = st.one_of(
    st.dictionaries(_NAMES, tps.values(), max_size=2),
    st.dictionaries(
        st.sampled_from(["train", "valid"]),
        st.dictionaries(_NAMES, tps.values(), min_size=1, max_size=2),
        max_size=2,
    ),
)
_bad_input = st.one_of(
    st.tuples(tps.invalid_keys(), st.just(1.0), st.just(0)),
    st.tuples(_keys, tps.invalid_values(), st.just(0)),
    st.tuples(_keys, st.just(1.0), tps.invalid_steps()),
)
#: Params that collide: 1, 1.0, True and "1" are four values; MLflow keeps two of them.
_params = st.dictionaries(
    st.sampled_from(["lr", "n", "opt"]),
    st.sampled_from([0.1, 1, 1.0, True, "1", None, "sgd"]),
    max_size=2,
)
_tags = st.dictionaries(st.sampled_from(["team", "stage"]), st.sampled_from(["a", "b", ""]))
_predictions = st.one_of(
    st.lists(st.floats(width=64), max_size=8),
    st.lists(st.sampled_from(["cat", "dog", "a b"]), max_size=8),
)


def _keeps_params(pair: Pair) -> bool:
    try:
        pair.tracker.params(RESOURCES[0])
    except UnsupportedOperationError:
        return False
    return True


class ContractMachine(RuleBasedStateMachine):
    """``make_backend()`` gives a new, empty backend; ``reopen(backend)`` (persistent
    backends) a new one on the same store after the old one was closed."""

    def __init__(
        self,
        make_backend: Callable[[], object],
        reopen: Callable[[object], object] | None = None,
    ) -> None:
        super().__init__()
        self.backend = make_backend()
        self.pair = Pair(open_tracker(self.backend))
        self.reopen_backend = reopen
        #: Resources written since the last full comparison of their histories.
        self.touched: set[str] = set(RESOURCES)
        #: Whether the backend implements the params and tags hooks.
        self.keeps_params = _keeps_params(self.pair)

    @rule(resource=_resources, point=_points)
    def log_metric(self, resource: str, point: MetricPoint) -> None:
        note(f"log_metric({resource!r}, {point})")
        self.touched.add(resource)
        self.pair.log_points(resource, [point])

    @rule(resource=_resources, points=st.lists(_points, min_size=2, max_size=6))
    def log_several(self, resource: str, points: list[MetricPoint]) -> None:
        note(f"{len(points)} log_metric calls on {resource!r} (one batch): {points}")
        self.touched.add(resource)
        self.pair.log_points(resource, points)

    @rule(resource=_resources, bad=_bad_input)
    def log_invalid(self, resource: str, bad: tuple[object, object, object]) -> None:
        note(f"log_metric({resource!r}, key, value, step = {bad!r}): refused")
        self.touched.add(resource)
        self.pair.log(resource, *bad)

    @rule(
        resource=_resources,
        metrics=_metrics,
        perf=st.none() | _NAMES | st.just("missing"),
        step=_steps,
        timestamp=_timestamps,
    )
    def log_metrics(
        self, resource: str, metrics: dict[str, Any], perf: str | None, step: int, timestamp: int
    ) -> None:
        note(f"log_metrics({resource!r}, {metrics!r}, {perf!r}, step={step}, ts={timestamp})")
        self.touched.add(resource)
        self.pair.do(
            lambda t: t.log_metrics(resource, metrics, perf, step=step, timestamp=timestamp)
        )

    @rule(resource=_resources, metrics=_metrics, bad=tps.invalid_values())
    def log_metrics_invalid(self, resource: str, metrics: dict[str, Any], bad: object) -> None:
        note(f"log_metrics({resource!r}, {metrics!r} + a bad value {bad!r}): refused")
        broken = {**metrics, "zzz": bad}
        self.touched.add(resource)
        self.pair.do(lambda t: t.log_metrics(resource, broken, timestamp=1))

    @rule(source=_resources, dest=_resources)
    def copy_metrics(self, source: str, dest: str) -> None:
        note(f"copy_metrics({source!r}, {dest!r})")
        self.touched.update((source, dest))
        self.pair.do(lambda t: t.copy_metrics(source, dest))

    @rule(job=_resources, predictions=_predictions)
    def log_prediction_metrics(self, job: str, predictions: list[object]) -> None:
        note(f"log_prediction_metrics({job!r}, {predictions!r})")
        self.touched.add(job)
        self.pair.do(lambda t: t.log_prediction_metrics(job, predictions, timestamp=1))

    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        """Log a point that is already stored again: an exact duplicate."""
        stored = [
            (rid, point)
            for rid in self.pair.model.resources()
            for key in sorted(self.pair.model.latest(rid))
            for point in self.pair.model.history(rid, key)
        ]
        if not stored:
            return
        rid, point = data.draw(st.sampled_from(stored), label="replayed")
        note(f"replay log_metric({rid!r}, {point})")
        self.touched.add(rid)
        self.pair.log_points(rid, [point])

    @precondition(lambda self: self.keeps_params)
    @rule(resource=_resources, params=_params)
    def log_params(self, resource: str, params: dict[str, Any]) -> None:
        note(f"log_params({resource!r}, {params!r})")
        self.pair.do(lambda t: t.log_params(resource, params))

    @precondition(lambda self: self.keeps_params)
    @rule(resource=_resources, tags=_tags)
    def set_tags(self, resource: str, tags: dict[str, str]) -> None:
        note(f"set_tags({resource!r}, {tags!r})")
        self.pair.do(lambda t: t.set_tags(resource, tags))

    @rule()
    def flush(self) -> None:
        note("flush()")
        self.pair.do(lambda t: t.flush())

    @precondition(lambda self: self.pair.caps.persistent and self.reopen_backend is not None)
    @rule()
    def reopen(self) -> None:
        """Close the backend's tracker and open a new backend on the same store."""
        note("close(), then reopen the backend")
        assert self.reopen_backend is not None
        self.pair.tracker.close()
        self.backend = self.reopen_backend(self.backend)
        self.pair.tracker = open_tracker(self.backend)
        self.touched.update(RESOURCES)

    @invariant()
    def same_as_the_model(self) -> None:
        """Resources, latest values, perf records and rankings all agree, for every
        resource; so do the histories and ``get_metric`` of every resource the step wrote
        to (the others' histories were compared when they were last written, and a write
        that leaks into them shows in their latest values)."""
        self.pair.check_overview(RESOURCES, ["f1", "loss", "valid_f1"])
        for rid in sorted(self.touched):
            self.pair.check_resource(rid)
        self.touched.clear()
        if self.keeps_params:
            for rid in RESOURCES:
                got, want = self.pair.tracker.params(rid), self.pair.model.params(rid)
                assert exact_params(got) == exact_params(want), f"params({rid!r})"
                assert self.pair.tracker.tags(rid) == self.pair.model.tags(rid), f"tags({rid!r})"

    def teardown(self) -> None:
        try:
            self.pair.check(RESOURCES, ["f1", "loss", "valid_f1"])  # everything, once more
        finally:
            self.pair.close()
