"""docs/semantics.md names, for each rule, the tests that catch a backend breaking it: every
name there is a test of the suite, and every test of the suite is named there."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from trackplug_contract import BackendContract

DOC = Path(__file__).resolve().parents[2] / "docs" / "semantics.md"
#: ``[`ClassName.test_name`][file]``: a link from a rule to a test.
LINK = re.compile(r"\[`(\w+)\.(test_\w+)`\]\[(\w+)\]")


def suite_tests() -> dict[str, tuple[str, str]]:
    """Every test of the suite: name -> (mixin, module file stem)."""
    tests = {}
    for cls in BackendContract.__mro__:
        for name in vars(cls):
            if name.startswith("test_"):
                tests[name] = (cls.__name__, Path(inspect.getfile(cls)).stem)
    return tests


def test_every_named_test_exists_where_linked() -> None:
    tests = suite_tests()
    links = LINK.findall(DOC.read_text())
    assert links, "docs/semantics.md names no test"
    wrong = [link for link in links if tests.get(link[1]) != (link[0], link[2])]
    assert not wrong, f"docs/semantics.md links to tests that are not there: {wrong}"


def test_every_test_is_named_by_a_rule() -> None:
    named = {name for _, name, _ in LINK.findall(DOC.read_text())}
    missing = sorted(set(suite_tests()) - named)
    assert not missing, f"docs/semantics.md names no rule for these tests: {missing}"
