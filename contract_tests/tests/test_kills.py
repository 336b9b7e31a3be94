"""The suite proves its power: it fails on every broken backend and passes on the correct
ones, run exactly as a plugin author runs it (a test file, pytest, ``--strict-markers``).

Each broken backend is killed twice: by the whole suite, and by its fixed cases alone (the
explicit examples and tables, no random search), so that no rule is caught by luck."""

from __future__ import annotations

import contextlib
from pathlib import Path

import broken_backends
import broken_params_backends
import pytest

from trackplug.spec import OPTIONAL_HOOKS, REQUIRED_HOOKS

# The runs are in-process (fast); pytester restores sys.modules after each, and numpy
# cannot be imported twice in one process: import it once, here, for all of them.
with contextlib.suppress(ImportError):
    import numpy  # noqa: F401

pytest_plugins = ["pytester"]

MUTANTS = {**broken_backends.MUTANTS, **broken_params_backends.MUTANTS}
CORRECT = {**broken_backends.CORRECT, **broken_params_backends.CORRECT}
CORRECT_BASES = (*CORRECT.values(), object)

HERE = Path(__file__).parent
#: Finding a failure is all these runs need: no shrinking, no example database; ``fixed``
#: runs no random example at all. The phases go through the suite's own hook for settings
#: (``hypothesis_settings``), never through a Hypothesis profile: loading one in these
#: in-process runs would stay loaded for every later test of this session.
PHASES = {"kill": "Phase.explicit, Phase.generate", "fixed": "Phase.explicit"}
TEST_FILE = """
from broken_backends import contract_for
from hypothesis import Phase, settings


class TestBackend(contract_for({name!r})):
    def hypothesis_settings(self, kind):
        phases = [{phases}]
        return settings(super().hypothesis_settings(kind), phases=phases, database=None)
"""


def run_contract(
    pytester: pytest.Pytester, name: str, *options: str, profile: str = "kill"
) -> dict[str, int]:
    """Run the whole suite on the backend ``name``, with the phases of ``profile``; the
    outcome counts."""
    pytester.syspathinsert(HERE)
    pytester.makepyfile(test_kill_target=TEST_FILE.format(name=name, phases=PHASES[profile]))
    result = pytester.runpytest(
        "--strict-markers", "-p", "no:cacheprovider", "--trackplug-profile", "fast", *options
    )
    return result.parseoutcomes()


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_the_suite_fails_on_a_broken_backend(pytester: pytest.Pytester, name: str) -> None:
    outcomes = run_contract(pytester, name, "-x")
    assert outcomes.get("failed", 0) >= 1, f"the broken backend {name} passed the suite"
    assert "errors" not in outcomes, f"{name}: the suite errored instead of failing"


@pytest.mark.parametrize("hook", REQUIRED_HOOKS + OPTIONAL_HOOKS)
def test_every_hook_has_a_broken_backend(hook: str) -> None:
    """A hook added to the spec comes with broken backends of its own (issue 13)."""
    own = [
        name
        for name, cls in MUTANTS.items()
        if any(hook in vars(base) for base in cls.__mro__ if base not in CORRECT_BASES)
    ]
    shown = broken_backends.SHOWN_THROUGH_OTHERS.get(hook)
    assert own or shown in MUTANTS.values(), f"no broken backend breaks {hook}"


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_fixed_cases_alone_fail_on_a_broken_backend(pytester: pytest.Pytester, name: str) -> None:
    outcomes = run_contract(pytester, name, "-x", profile="fixed")
    assert outcomes.get("failed", 0) >= 1, f"only the random search catches {name}"
    assert "errors" not in outcomes, f"{name}: the suite errored instead of failing"


@pytest.mark.parametrize("profile", ["kill", "fixed"])
@pytest.mark.parametrize("name", sorted(CORRECT))
def test_the_suite_passes_on_a_correct_backend(
    pytester: pytest.Pytester, name: str, profile: str
) -> None:
    outcomes = run_contract(pytester, name, profile=profile)
    assert "failed" not in outcomes, f"the suite failed on the correct backend {name}"
    assert "errors" not in outcomes
    assert outcomes["passed"] >= 100, outcomes
