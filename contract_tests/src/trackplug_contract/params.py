"""Params, tags and runs: the contract of the optional hooks (docs/semantics.md, "Params,
tags and runs").

A backend implements the five hooks of params and tags, or none. Without them, every
operation on params, tags or runs must be refused with ``UnsupportedOperationError`` and
leave the backend as it was; with them, params are write-once JSON scalars read back as the
backend declares (``Capabilities.params``), tags are mutable strings, and runs (built on
tags by the facade) list, filter and survive a reopen.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from trackplug import (
    InvalidTypeError,
    ParamConflictError,
    Tracker,
    UnsupportedOperationError,
    ValidationError,
)

from .base import ContractBase, open_tracker
from .strategies import keys

__all__ = ["ParamTests", "RunTests", "param_values", "params_of"]

#: JSON scalars: what a param may be.
param_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(exclude_categories=("Cc", "Cs"), exclude_characters="\x00"), max_size=40),
)


def params_of(max_size: int = 6) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(keys(), param_values, max_size=max_size)


tag_values = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=40)
#: Tags users may set: any key but the stores' own.
tags_of = st.dictionaries(
    keys().filter(lambda k: not k.startswith(("trackplug.", "mlflow."))), tag_values, max_size=5
)


def exact_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Params compared by type and value: their JSON text (1, 1.0 and True differ)."""
    return {key: json.dumps(value) for key, value in params.items()}


class _ParamsBase(ContractBase):
    @contextmanager
    def tracker(self) -> Iterator[Tracker]:
        tracker = open_tracker(self.new_backend())
        try:
            yield tracker
        finally:
            tracker.close()

    @staticmethod
    def keeps_params(tracker: Tracker) -> bool:
        """Whether the backend implements the params and tags hooks (the only capability
        of the group): asked by reading, which writes nothing."""
        try:
            tracker.params("probe")
        except UnsupportedOperationError:
            return False
        return True

    def require_params(self, tracker: Tracker) -> None:
        if not self.keeps_params(tracker):
            pytest.skip("the backend implements no params and tags hooks (checked: refused)")

    @contextmanager
    def reopening(self) -> Iterator[tuple[Tracker, Callable[[], Tracker]]]:
        """A tracker on a persistent backend that keeps params, and ``reopen()``: close it
        and open a new tracker on a new backend on the same store (skips otherwise)."""
        backend = self.new_backend()
        trackers = [open_tracker(backend)]

        def reopen() -> Tracker:
            trackers[0].close()
            trackers.append(open_tracker(self.reopen(backend)))
            return trackers[-1]

        try:
            if not trackers[0].capabilities.persistent or not self.keeps_params(trackers[0]):
                pytest.skip("not persistent, or no params and tags")
            yield trackers[0], reopen
        finally:
            for tracker in trackers:
                tracker.close()

    def expected(self, tracker: Tracker, params: Mapping[str, Any]) -> dict[str, str]:
        """What the backend reads back for ``params``, as it declares."""
        caps = tracker.capabilities
        return exact_params({k: caps.stored_param(v) for k, v in sorted(params.items())})


class ParamTests(_ParamsBase):
    """Params are write-once JSON scalars; tags are mutable strings; both per resource."""

    def test_a_backend_without_params_refuses_every_operation(self) -> None:
        with self.tracker() as t:
            if self.keeps_params(t):
                pytest.skip("the backend keeps params and tags")
            calls: list[Callable[[], object]] = [
                lambda: t.log_params("r", {"lr": 0.1}),
                lambda: t.set_tags("r", {"team": "a"}),
                lambda: t.tags("r"),
                lambda: t.start_run("sgd"),
                lambda: t.runs(),
            ]
            for call in calls:
                with pytest.raises(UnsupportedOperationError):
                    call()
            assert t.resources() == [], "a refused operation wrote something"

    def test_params_read_back_as_declared(self) -> None:
        @self.examples
        @example(params={"lr": 0.1, "n": 3, "name": "sgd", "flag": False, "none": None})
        @given(params=params_of())
        def check(params: dict[str, Any]) -> None:
            with self.tracker() as t:
                self.require_params(t)
                t.log_params("r", params)
                assert exact_params(t.params("r")) == self.expected(t, params)
                assert list(t.params("r")) == sorted(params), "params() is sorted by key"
                assert t.params("other") == {}, "params leaked to another resource"

        check()

    def test_a_param_is_write_once(self) -> None:
        @self.examples
        @example(params={"lr": 0.1}, other=0.2, new="layers")  # a new key beside a conflict
        @given(params=params_of(max_size=4).filter(bool), other=param_values, new=keys())
        def check(params: dict[str, Any], other: Any, new: str) -> None:
            with self.tracker() as t:
                self.require_params(t)
                t.log_params("r", params)
                t.log_params("r", params)  # the same values again: nothing happens
                before = exact_params(t.params("r"))
                key = sorted(params)[0]
                caps = t.capabilities
                changed = json.dumps(caps.stored_param(other)) != before[key]
                change = {key: other, **({} if new in params else {new: 1})}
                if changed:
                    with pytest.raises(ParamConflictError):
                        t.log_params("r", change)
                    assert exact_params(t.params("r")) == before, "a refused write wrote"
                else:
                    t.log_params("r", change)
                    assert exact_params(t.params("r"))[key] == before[key]

        check()

    def test_params_at_mlflows_limits_are_kept_and_past_them_refused(self) -> None:
        with self.tracker() as t:
            self.require_params(t)
            longest = {"k" * 250: "v" * 6000, "unicode": "é" * 6000}
            t.log_params("r", longest)
            assert exact_params(t.params("r")) == self.expected(t, longest)
            bad_params: list[dict[str, Any]] = [
                {"k" * 251: 1},
                {"x": "v" * 6001},
                {"x": float("nan")},
                {"x": [1]},
            ]
            for bad in bad_params:
                with pytest.raises(ValidationError):
                    t.log_params("r", bad)
            with pytest.raises(InvalidTypeError):
                t.log_params("r", {"x": object()})  # type: ignore[dict-item]
            assert exact_params(t.params("r")) == self.expected(t, longest)

    def test_tags_are_mutable_strings(self) -> None:
        @self.examples
        @example(first={"team": "a", "note": ""}, second={"team": "b"})
        @given(first=tags_of, second=tags_of)
        def check(first: dict[str, str], second: dict[str, str]) -> None:
            with self.tracker() as t:
                self.require_params(t)
                t.set_tags("r", first)
                t.set_tags("r", second)
                assert t.tags("r") == dict(sorted({**first, **second}.items()))
                assert t.tags("other") == {}

        check()

    def test_tags_at_mlflows_limits_are_kept_and_past_them_refused(self) -> None:
        with self.tracker() as t:
            self.require_params(t)
            t.set_tags("r", {"k" * 250: "v" * 8000})
            for bad in ({"x": "v" * 8001}, {"trackplug.run.status": "x"}, {"mlflow.user": "x"}):
                with pytest.raises(ValidationError):
                    t.set_tags("r", bad)
            with pytest.raises(InvalidTypeError):
                t.set_tags("r", {"x": 1})  # type: ignore[dict-item]
            assert t.tags("r") == {"k" * 250: "v" * 8000}

    def test_copy_metrics_carries_params_and_tags_once(self) -> None:
        with self.tracker() as t:
            self.require_params(t)
            t.log_metric("src", "loss", 0.5, step=1, timestamp=7)
            t.log_params("src", {"lr": 0.1, "layers": 3})
            t.set_tags("src", {"team": "a"})
            t.log_params("neighbour", {"lr": 0.9})
            for _ in range(2):  # idempotent
                t.copy_metrics("src", "dst")
            assert exact_params(t.params("dst")) == exact_params(t.params("src"))
            assert t.tags("dst") == {"team": "a"}
            t.log_params("clash", {"lr": 0.2})
            with pytest.raises(ParamConflictError):
                t.copy_metrics("src", "clash")
            assert t.history("clash", "loss") == [], "a refused copy wrote points"

    def test_params_and_tags_survive_reopening(self) -> None:
        with self.reopening() as (tracker, reopen):
            params: dict[str, Any] = {"lr": 0.1, "n": 3, "name": "sgd", "flag": False, "none": None}
            tracker.log_params("r", params)
            tracker.set_tags("r", {"team": "a"})
            want = exact_params(tracker.params("r"))
            reopened = reopen()
            assert exact_params(reopened.params("r")) == want
            assert reopened.tags("r") == {"team": "a"}


class RunTests(_ParamsBase):
    """Runs: new resources with generated ids, params, status and times."""

    def test_each_run_is_new_and_its_steps_count_up(self) -> None:
        with self.tracker() as t:
            self.require_params(t)
            ids = []
            for lr in (0.1, 0.2):
                with t.start_run("sgd", params={"lr": lr}, tags={"team": "a"}) as run:
                    for value in (3.0, 2.0, 1.0):
                        run.log_metric("loss", value)
                ids.append(run.id)
            assert ids[0] != ids[1], "each run has its own id"
            assert ids == sorted(ids), "the ids of one name sort by start"
            runs = t.runs("sgd")
            assert [r.id for r in runs] == ids
            for r, lr in zip(runs, (0.1, 0.2), strict=True):
                assert (r.name, r.status, r.tags) == ("sgd", "finished", {"team": "a"})
                assert exact_params(r.params) == self.expected(t, {"lr": lr})
                assert r.metrics == {"loss": 1.0}
                assert r.end is not None
                assert r.start <= r.end
            assert [p.step for p in t.history(ids[0], "loss")] == [0, 1, 2]
            assert t.best("loss", "min", 5, run_name="sgd") == [(ids[0], 1.0), (ids[1], 1.0)]

    def test_a_run_that_raises_is_failed_and_runs_filter(self) -> None:
        with self.tracker() as t:
            self.require_params(t)
            with pytest.raises(RuntimeError), t.start_run("adam", params={"lr": 0.3}) as bad:
                raise RuntimeError("diverged")
            with t.start_run("sgd", params={"lr": 0.3}) as good:
                good.log_metric("acc", 0.5)
            adam = "".join(["ad", "am"])  # built at run time: tags compare by value, not identity
            assert [r.status for r in t.runs(adam)] == ["failed"]
            assert [r.id for r in t.runs(params={"lr": 0.3})] == [bad.id, good.id]
            assert [r.id for r in t.runs(status="finished")] == [good.id]
            assert t.runs("none") == []

    def test_runs_survive_reopening(self) -> None:
        with self.reopening() as (tracker, reopen):
            with tracker.start_run("sgd", params={"lr": 0.1}) as run:
                run.log_metric("loss", 0.25)
            want = tracker.runs()
            assert reopen().runs() == want
