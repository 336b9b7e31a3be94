"""The pytest plugin and the profiles: option, environment variable, CI, markers, and the
message a plugin author gets without ``make_backend``."""

from __future__ import annotations

import pytest
from trackplug_contract import contract_settings, profiles
from trackplug_contract.profiles import ENV_VAR, PROFILES, active_profile

pytest_plugins = ["pytester"]

PROFILE_PROBE = """
from trackplug_contract import contract_settings, profiles
from trackplug_contract.profiles import active_profile

def test_probe():
    print("PROFILE", active_profile(), contract_settings("property").max_examples,
          "DERANDOMIZE", contract_settings("stateful").derandomize)
"""


def test_thorough_tries_ten_times_the_examples() -> None:
    fast, thorough = PROFILES["fast"], PROFILES["thorough"]
    assert thorough.examples >= 10 * fast.examples
    assert thorough.machine_runs >= 10 * fast.machine_runs
    assert thorough.machine_steps >= fast.machine_steps


def test_the_environment_variable_picks_a_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profiles, "_chosen", [None])  # a session without the option
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert active_profile() == "fast"
    monkeypatch.setenv(ENV_VAR, "thorough")
    assert active_profile() == "thorough"
    assert contract_settings("stateful").max_examples == PROFILES["thorough"].machine_runs
    monkeypatch.setenv(ENV_VAR, "bogus")
    with pytest.raises(ValueError, match="bogus"):
        active_profile()


def test_an_unknown_profile_is_an_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, "bogus")
    pytester.makepyfile(PROFILE_PROBE)
    result = pytester.runpytest("-s")
    result.stderr.fnmatch_lines(["*TRACKPLUG_CONTRACT_PROFILE='bogus' is not a*profile*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


@pytest.mark.parametrize(
    ("args", "env", "profile"),
    [
        ((), {}, "fast"),
        (("--trackplug-profile", "thorough"), {}, "thorough"),
        ((), {ENV_VAR: "thorough"}, "thorough"),
        (("--trackplug-profile", "fast"), {ENV_VAR: "thorough"}, "fast"),  # the option wins
    ],
)
def test_option_and_environment_variable(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    env: dict[str, str],
    profile: str,
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    pytester.makepyfile(PROFILE_PROBE)
    result = pytester.runpytest("-s", *args)  # in-process: Hypothesis is already imported
    examples = PROFILES[profile].examples
    result.stdout.fnmatch_lines([f"*PROFILE {profile} {examples} DERANDOMIZE*"])


def test_ci_derandomizes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new process: Hypothesis loads its ``ci`` profile when it is imported under CI."""
    monkeypatch.setenv("CI", "true")
    monkeypatch.delenv(ENV_VAR, raising=False)
    pytester.makepyfile(PROFILE_PROBE)
    result = pytester.runpytest_subprocess("-s")
    result.stdout.fnmatch_lines(["*PROFILE fast * DERANDOMIZE True*"])


def test_the_profiles_are_registered_with_hypothesis_not_loaded(
    pytester: pytest.Pytester,
) -> None:
    """A plugin author's own property tests can use the suite's budgets by name; the
    plugin never loads one, so a test without the option keeps Hypothesis's default."""
    pytester.makepyfile(
        """
        from hypothesis import settings

        def test_probe():
            print("EXAMPLES", settings().max_examples)
        """
    )
    chosen = pytester.runpytest_subprocess("-s", "--hypothesis-profile", "trackplug-thorough")
    chosen.stdout.fnmatch_lines([f"*EXAMPLES {PROFILES['thorough'].examples}*"])
    default = pytester.runpytest_subprocess("-s")
    default.stdout.fnmatch_lines(["*EXAMPLES 100*"])


def test_settings_are_built_for_the_active_profile() -> None:
    built = contract_settings("property")
    assert built.deadline is None
    assert built.max_examples == PROFILES[active_profile()].examples


def test_markers_are_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        ["*trackplug_contract:*", "*trackplug_stateful:*", "*trackplug_persistent:*"]
    )


def test_a_missing_make_backend_says_what_to_define(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from trackplug_contract import BackendContract

        class TestForgetful(BackendContract):
            pass
        """
    )
    result = pytester.runpytest("--strict-markers", "-x", "-q")
    result.stdout.fnmatch_lines(["*TestForgetful*does not define make_backend(self)*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_persistent_backend_without_reopen_says_what_to_define(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        from trackplug_contract import BackendContract
        from trackplug import Capabilities
        from trackplug._memory import MemoryBackend

        class Persistent(MemoryBackend):
            CAPABILITIES = Capabilities(persistent=True)

        class TestNoReopen(BackendContract):
            def make_backend(self):
                return Persistent()
        """
    )
    result = pytester.runpytest("-q", "-k", "reopen_keeps_everything")
    result.stdout.fnmatch_lines(["*declares Capabilities(persistent=True)*reopen_backend*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_fast_bounds_shrinking_per_failure_and_per_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hypothesis.internal.conjecture import engine

    def limit() -> float:
        return float(engine.MAX_SHRINKING_SECONDS)

    def failing_test() -> None:
        with profiles.shrinking_limited():
            seen.append(limit())
            raise AssertionError("a failing test")

    seen: list[float] = []
    monkeypatch.setattr(profiles, "_chosen", ["fast"])
    monkeypatch.setattr(profiles, "_failing_seconds", [0.0, 0.0])
    own, fast = limit(), PROFILES["fast"]
    budget = fast.session_shrink_seconds or 0.0
    with profiles.shrinking_limited():
        assert limit() == fast.shrink_seconds
    assert limit() == own, "restored for the project's own tests"
    profiles._failing_seconds[-1] = budget - 2.5
    with pytest.raises(AssertionError, match="a failing test"):
        failing_test()
    assert seen == [2.5], "what is left of the session's budget"
    assert profiles._failing_seconds[-1] > budget - 2.5, "a failing test spends the budget"
    profiles._failing_seconds[-1] = budget + 5.0
    with profiles.shrinking_limited():
        assert limit() == 1.0, "budget spent: one second each"
    monkeypatch.setattr(profiles, "_chosen", ["thorough"])
    with profiles.shrinking_limited():
        assert limit() == own, "thorough: Hypothesis's own limit"
