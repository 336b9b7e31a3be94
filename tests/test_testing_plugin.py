"""The pytest side of trackplug.testing, run in pytest sessions of its own (pytester): the
plugin is found by its entry point, changes nothing for tests that do not ask for it, works
under pytest-xdist, and docs/guide/testing.md's example runs as it is shown."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import types
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from trackplug.testing import capture

pytest_plugins = ["pytester"]

GUIDE = Path(__file__).parents[1] / "docs" / "guide" / "testing.md"
_FILE_BLOCK = re.compile(r"<!-- file: (?P<path>\S+) -->\n```python\n(?P<code>.*?)```", re.S)
_TEXT_BLOCK = re.compile(r"```text\n(?P<text>.*?)```", re.S)


def guide_files() -> dict[str, str]:
    return {m["path"]: m["code"] for m in _FILE_BLOCK.finditer(GUIDE.read_text())}


def test_the_plugin_is_registered_through_pytest11() -> None:
    (plugin,) = [ep for ep in entry_points(group="pytest11") if ep.name == "trackplug"]
    assert plugin.value == "trackplug.testing.plugin"


def test_tests_that_do_not_ask_for_the_fixture_are_untouched(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import trackplug

        def test_without_the_fixture(tmp_path):
            with trackplug.connect("memory://") as t:
                t.log_metric("m", "loss", 1.0)
                assert t.resources() == ["m"]
            with trackplug.connect(f"sqlite:///{tmp_path / 'runs.db'}") as t:
                t.log_metric("m", "loss", 1.0)
            assert (tmp_path / "runs.db").exists()

        def test_with_it(trackplug_capture, tmp_path):
            with trackplug.connect(f"sqlite:///{tmp_path / 'runs.db'}") as t:
                t.log_metric("m", "loss", 1.0)
            assert not (tmp_path / "runs.db").exists()
            trackplug_capture.assert_latest("m", "loss", 1.0)

        def test_without_it_again():
            with trackplug.connect("memory://") as t:
                assert t.resources() == []
        """
    )
    pytester.runpytest("--strict-markers", "-p", "no:randomly").assert_outcomes(passed=3)


def test_the_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.trackplug_capture(passthrough=False, ignore=()):*"])


def test_a_failed_assertion_shows_what_was_logged(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import trackplug

        def test_f1(trackplug_capture):
            with trackplug.connect("mlflow+http://127.0.0.1:1") as t:
                t.log_metric("sgd-1", "valid_f1", 0.71, step=9)
            trackplug_capture.assert_latest("sgd-1", "valid_f1", at_least=0.8)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    assert "_assertions.py" not in result.stdout.str()  # the test's line, not the helper's
    result.stdout.fnmatch_lines(
        [
            "*trackplug_capture.assert_latest(*",
            "E * AssertionError: expected valid_f1 ≥ 0.8 for resource `sgd-1`, logged: 0.71 at "
            "step 9",
        ]
    )


def test_the_marker_refuses_an_unknown_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.trackplug_capture(passthru=True)
        def test_typo(trackplug_capture):
            pass
        """
    )
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*@pytest.mark.trackplug_capture takes the keyword options passthrough, ignore; "
            "got passthru"
        ]
    )


XDIST_TESTS = """
import threading

import pytest

import trackplug


@pytest.mark.parametrize("n", range(12))
def test_each_test_sees_its_own_metrics(trackplug_capture, n):
    def log(thread):
        with trackplug.connect("mlflow+http://127.0.0.1:1") as t:
            for step in range(50):
                t.log_metric(f"test-{n}", f"loss.{thread}", 1.0 / (step + 1), step=step)

    threads = [threading.Thread(target=log, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert trackplug_capture.resources() == [f"test-{n}"]
    for i in range(3):
        trackplug_capture.assert_logged(f"test-{n}", f"loss.{i}", steps=range(50))


@pytest.mark.parametrize("n", range(4))
def test_without_the_fixture_in_between(tmp_path, n):
    with trackplug.connect(f"sqlite:///{tmp_path / 'runs.db'}") as t:
        t.log_metric("real", "loss", 1.0)
        assert t.resources() == ["real"]
"""


def test_under_xdist_each_test_sees_only_its_own_metrics(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(XDIST_TESTS)
    result = pytester.runpytest_subprocess("-n", "2", "--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=16)
    result.stdout.fnmatch_lines(["*2 workers*"])


def test_the_guide_example_runs_under_xdist(pytester: pytest.Pytester) -> None:
    files = guide_files()
    assert list(files) == ["train.py", "test_train.py", "test_opt_out.py"]
    for path, code in files.items():
        pytester.path.joinpath(path).write_text(code)
    result = pytester.runpytest_subprocess("-n", "2", "--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_the_guide_shows_the_messages_the_assertions_give() -> None:
    (shown,) = [m["text"] for m in _TEXT_BLOCK.finditer(GUIDE.read_text())]
    train = types.ModuleType("train")
    exec(guide_files()["train.py"], train.__dict__)
    with capture() as captured:
        train.train("sgd-1")
        train.train("sgd-2", epochs=10)
        checks = [
            lambda: captured.assert_latest("sgd-1", "valid_f1", at_least=0.9),
            lambda: captured.assert_latest("sgd-1", "valid_auc", at_least=0.9),
            lambda: captured.assert_logged("sgd-3", "loss"),
            lambda: captured.assert_best("loss", "sgd-1", order="min"),
        ]
        messages = []
        for check in checks:
            with pytest.raises(AssertionError) as failed:
                check()
            messages.append(f"AssertionError: {failed.value}")
    assert shown.splitlines() == messages, textwrap.indent("\n".join(messages), "  ")


def test_loading_the_plugin_loads_no_more_than_import_trackplug() -> None:
    script = (
        "import sys, pytest, trackplug\n"
        "before = set(sys.modules)\n"
        "import trackplug.testing.plugin\n"
        "print(sorted(set(sys.modules) - before))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['trackplug.testing', 'trackplug.testing.plugin']"


def test_a_module_marker_sets_the_capture_of_each_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        import trackplug

        pytestmark = pytest.mark.trackplug_capture(ignore=["memory://real"])

        def test_one(trackplug_capture):
            with trackplug.connect("memory://real") as t:
                t.log_metric("m", "loss", 1.0)
            trackplug_capture.assert_nothing_logged()

        class TestTwo:
            @pytest.mark.trackplug_capture(passthrough=True)
            def test_closest_marker_wins(self, trackplug_capture):
                with trackplug.connect("memory://real") as t:
                    t.log_metric("m", "loss", 1.0)
                trackplug_capture.assert_latest("m", "loss", 1.0)
        """
    )
    pytester.runpytest("--strict-markers").assert_outcomes(passed=2)


def test_the_plugin_can_be_turned_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_it(trackplug_capture): pass")
    result = pytester.runpytest("-p", "no:trackplug")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'trackplug_capture' not found*"])
