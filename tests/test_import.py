"""``import trackplug`` stays light: no SQLAlchemy, no mlflow, no CLI libraries."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["sqlalchemy", "mlflow", "click", "rich", "numpy", "pandas", "matplotlib"]

SCRIPT = f"""
import json, sys
import trackplug
with trackplug.connect("memory://") as t:
    t.log_metric("r", "loss", 1.0)
    t.history("r", "loss")
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))))
"""


def test_import_and_use_load_no_heavy_library() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], check=True, capture_output=True, text=True, timeout=60
    )
    assert json.loads(out.stdout) == []


def test_the_version_is_the_distributions() -> None:
    from importlib.metadata import version

    import trackplug

    assert trackplug.__version__ == version("trackplug")
