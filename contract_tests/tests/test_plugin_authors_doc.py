"""docs/plugin-authors.md shows its worked example as it is, and the example registers
through the ``trackplug`` entry-point group like any plugin."""

from __future__ import annotations

import re
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import trackplug

ROOT = Path(__file__).parents[2]
GUIDE = ROOT / "docs" / "plugin-authors.md"
_FILE_BLOCK = re.compile(r"<!-- file: (?P<path>\S+) -->\n```python\n(?P<code>.*?)```", re.S)


def file_blocks() -> list[tuple[str, str]]:
    return [(m["path"], m["code"]) for m in _FILE_BLOCK.finditer(GUIDE.read_text())]


def test_the_guide_shows_both_example_files() -> None:
    assert [path for path, _ in file_blocks()] == [
        "contract_tests/tests/example_jsonfile.py",
        "contract_tests/tests/test_example_jsonfile.py",
    ]


@pytest.mark.parametrize(
    ("path", "code"), file_blocks(), ids=[Path(path).name for path, _ in file_blocks()]
)
def test_the_guide_shows_the_file_as_it_is(path: str, code: str) -> None:
    assert code == (ROOT / path).read_text(), f"docs/plugin-authors.md shows an old {path}"


def test_the_example_registers_through_an_entry_point(tmp_path: Path) -> None:
    entry = EntryPoint(name="jsonfile", value="example_jsonfile", group="trackplug")
    registry = trackplug.Registry(entry_points=[entry])
    url = f"jsonfile://{tmp_path / 'runs.json'}"
    with trackplug.connect(url, registry=registry) as tracker:
        tracker.log_metric("run", "loss", -0.0, step=2)
    with trackplug.connect(url, registry=registry) as tracker:
        assert str(tracker.get_metric("run", "loss")) == "-0.0"
        assert tracker.url == url
