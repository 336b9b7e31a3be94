"""The suite against backends that misbehave as a third party's might (hostile_backends.py):
each broken one fails a test of the suite (not the suite itself: no error, no internal
error, no pass), and a slow correct one passes."""

from __future__ import annotations

import contextlib
from pathlib import Path

import hostile_backends
import pytest

with contextlib.suppress(ImportError):  # imported once for all in-process runs (test_kills)
    import numpy  # noqa: F401

pytest_plugins = ["pytester"]

HERE = Path(__file__).parent
TEST_FILE = """
from hostile_backends import contract_for
from hypothesis import Phase, settings


class TestBackend(contract_for({name!r})):
    def hypothesis_settings(self, kind):
        phases = [Phase.explicit, Phase.generate]
        return settings(super().hypothesis_settings(kind), phases=phases, database=None)
"""


def run_contract(pytester: pytest.Pytester, name: str, *options: str) -> pytest.RunResult:
    pytester.syspathinsert(HERE)
    pytester.makepyfile(test_hostile_target=TEST_FILE.format(name=name))
    return pytester.runpytest(
        "--strict-markers", "-p", "no:cacheprovider", "--trackplug-profile", "fast", *options
    )


@pytest.mark.parametrize("name", sorted(hostile_backends.HOSTILE))
def test_the_suite_fails_on_a_hostile_backend(pytester: pytest.Pytester, name: str) -> None:
    result = run_contract(pytester, name, "-x")
    outcomes = result.parseoutcomes()
    output = result.stdout.str()
    assert outcomes.get("failed", 0) >= 1, f"the hostile backend {name} passed the suite"
    assert "errors" not in outcomes, f"{name}: the suite errored instead of failing"
    assert "INTERNALERROR" not in output
    hook = hostile_backends.WRONG_ANSWERS.get(name)
    if hook is not None:  # said as the facade says it, not as what it broke in the suite
        assert f"BackendError: backend memory://: hook {hook} returned" in output


@pytest.mark.parametrize("name", sorted(hostile_backends.WRONG_ANSWERS))
def test_the_facade_refuses_an_answer_of_the_wrong_type(name: str) -> None:
    """A list of tuples for a history, strings for latest values: handed to the user as
    they were (the suite then failed on ``'tuple' object has no attribute 'key'`` and
    ``struct.error``); now a BackendError naming the hook and what it should return."""
    from trackplug import BackendError, MetricPoint, Tracker

    backend = hostile_backends.HOSTILE[name]()
    with Tracker(backend, flush_interval=3600) as tracker:
        tracker.log_points("r", [MetricPoint("loss", 0.5, 1, 2)])
        tracker.log_metrics("r", {"train": {"f1": 0.5}}, perf_metric="f1")
        hook = hostile_backends.WRONG_ANSWERS[name]
        read = {
            "latest": lambda: tracker.latest("r"),
            "history": lambda: tracker.history("r", "loss"),
            "resources": tracker.resources,
            "best": lambda: tracker.best("loss"),
            "get_perf": lambda: tracker.perf("r"),
        }[hook]
        with pytest.raises(BackendError, match=rf"hook {hook} returned .*expected \w"):
            read()


@pytest.mark.parametrize("name", sorted(hostile_backends.SLOW))
def test_the_suite_passes_on_a_slow_correct_backend(pytester: pytest.Pytester, name: str) -> None:
    outcomes = run_contract(pytester, name).parseoutcomes()
    assert "failed" not in outcomes, f"the suite failed on the correct backend {name}"
    assert "errors" not in outcomes
    assert outcomes["passed"] >= 100, outcomes


@pytest.mark.parametrize(
    "declared",
    [
        {"max_batch_size": 0},  # every batch: ValueError from range(0, n, 0)
        {"max_batch_size": 2.5},
        {"min_step": 5, "max_step": 1},
        {"infinity": "drop"},
        {"persistent": "yes"},
    ],
    ids=repr,
)
def test_a_capabilities_declaration_the_facade_cannot_act_on_is_a_plugin_error(
    declared: dict[str, object],
) -> None:
    """``Capabilities(max_batch_size=0)`` was taken, and every batch then failed with a
    raw ValueError (the suite failed on it, not on the declaration)."""
    from trackplug import Capabilities, PluginError

    with pytest.raises(PluginError, match=rf"Capabilities\({next(iter(declared))}="):
        Capabilities(**declared)  # type: ignore[arg-type]
