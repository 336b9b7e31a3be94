"""``import trackplug`` stays light: no SQLAlchemy, no mlflow, no CLI libraries, and what
only connecting, spooling or copying needs is loaded when first used."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ["sqlalchemy", "mlflow", "click", "rich", "numpy", "pandas", "matplotlib"]
#: The frameworks trackplug.integrations adapts: loaded only by their own adapter.
HEAVY += ["torch", "lightning", "transformers", "accelerate", "keras"]
#: The dashboard's server (trackplug ui): loaded only by the ui command.
HEAVY += ["starlette", "uvicorn"]

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


#: Loaded on first use, not by ``import trackplug`` (its budget is 60 ms): the outbox and its
#: sqlite3, copy/sync, plugin discovery and URL parsing, fan-out, predictions, JSON.
LAZY = [
    "sqlite3",
    "json",
    "pathlib",
    "urllib.parse",
    "importlib.metadata",
    "trackplug._outbox",
    "trackplug._transfer",
    "trackplug._registry",
    "trackplug._urls",
    "trackplug._fanout",
    "trackplug._hooks",
    "trackplug._predictions",
    "trackplug._memory",
    "trackplug.redirect",
    "trackplug.testing",
]

LOADED_BY_IMPORT = """
import sys
before = set(sys.modules)
import trackplug
print("\\n".join(sorted(set(sys.modules) - before)))
"""


def loaded_by(script: str) -> set[str]:
    """The modules a fresh interpreter loads running ``script`` (one name per line out)."""
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True, timeout=60
    )
    return set(out.stdout.split())


def test_import_trackplug_loads_none_of_the_lazy_modules() -> None:
    loaded = loaded_by(LOADED_BY_IMPORT)
    assert "trackplug._tracker" in loaded  # the facade itself is there
    assert sorted(loaded & set(LAZY)) == []


def test_a_tracker_that_never_spools_never_loads_sqlite3() -> None:
    script = """
import sys
import trackplug
with trackplug.connect("memory://", "memory://") as t:
    t.log_metric("r", "loss", 1.0)
    t.history("r", "loss")
print("\\n".join(sys.modules))
"""
    loaded = loaded_by(script)
    assert "trackplug._outbox" in loaded
    assert "sqlite3" not in loaded


def test_the_lazy_names_are_there_when_asked_for() -> None:
    import trackplug
    from trackplug import DEFAULT_URL, CopySummary, Registry, copy, redact_url, sync
    from trackplug._registry import DEFAULT_URL as registry_default
    from trackplug._transfer import CopySummary as transfer_summary

    assert registry_default == DEFAULT_URL
    assert CopySummary is transfer_summary
    assert callable(copy)
    assert callable(sync)
    assert isinstance(Registry(), Registry)
    assert redact_url("postgresql://me:pw@db/x") == "postgresql://me:***@db/x"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        trackplug.nope  # noqa: B018


def test_the_version_is_the_distributions() -> None:
    from importlib.metadata import version

    import trackplug

    assert trackplug.__version__ == version("trackplug")
