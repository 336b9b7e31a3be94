"""docs/guide/integrations.md's examples run as they are shown, each in a fresh interpreter in
an empty directory, and end by printing what their comments say (``print(...)  # <the line
printed>``; the frameworks print their own progress before it)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

GUIDE = Path(__file__).parents[2] / "docs" / "guide" / "integrations.md"
_FILE_BLOCK = re.compile(r"<!-- file: (?P<path>\S+) -->\n```python\n(?P<code>.*?)```", re.S)
_PRINTED = re.compile(r"^\s*print\(.*\)\s+# (?P<line>.+)$", re.M)
#: The framework each example needs.
NEEDS = {
    "train_lightning.py": "lightning",
    "train_transformers.py": "transformers",
    "train_keras.py": "keras",
}


def examples() -> dict[str, str]:
    return {m["path"]: m["code"] for m in _FILE_BLOCK.finditer(GUIDE.read_text())}


def test_every_example_is_run_here() -> None:
    assert sorted(examples()) == sorted(NEEDS)


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_the_example_runs_and_prints_what_it_says(name: str, tmp_path: Path) -> None:
    if importlib.util.find_spec(NEEDS[name]) is None:
        pytest.skip(f"{NEEDS[name]} is not installed")
    code = examples()[name]
    (tmp_path / name).write_text(code)
    env = {k: v for k, v in os.environ.items() if k != "TRACKPLUG_URL"}
    env["KERAS_BACKEND"] = "torch"
    done = subprocess.run(
        [sys.executable, name], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    expected = [m["line"] for m in _PRINTED.finditer(code)]
    assert expected
    assert done.stdout.splitlines()[-len(expected) :] == expected
