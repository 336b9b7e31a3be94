"""``trackplug-contract`` works from a built wheel: the package, ``py.typed`` and the
``pytest11`` entry point are in it, and it imports from the wheel alone."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

DISTRIBUTION = Path(__file__).parents[1]


def test_the_wheel_has_the_plugin_and_imports(tmp_path: Path) -> None:
    build = pytest.importorskip("hatchling.build", reason="building the wheel needs hatchling")
    cwd = Path.cwd()
    os.chdir(DISTRIBUTION)
    try:
        wheel = tmp_path / build.build_wheel(str(tmp_path))
    finally:
        os.chdir(cwd)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert (
            "trackplug_contract = trackplug_contract.plugin" in archive.read(entry_points).decode()
        )
    assert {"trackplug_contract/py.typed", "trackplug_contract/contract.py"} <= names
    assert not any(name.startswith("tests/") for name in names), "tests are not shipped"
    probe = "import trackplug_contract as t; print(t.__file__); t.BackendContract"
    env = {**os.environ, "PYTHONPATH": str(wheel)}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(str(wheel)), "imported from somewhere else than the wheel"
