"""One case in this (fresh) interpreter: ``python -m benchmarks.worker '<json spec>'``.

The spec names the case's body (``module:function``), the round, the size, the case's
temporary directory and its parameters. The body builds its input, times the work, reads
the data back and counts it; this module turns its :class:`Result` into one JSON record on
stdout, and exits 1 when the count read back is wrong.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The stdout line that carries the record starts with this (libraries may print too).
RECORD_PREFIX = "BENCHMARK-RECORD "


@dataclass(frozen=True)
class Context:
    """Where and how much a body works."""

    directory: Path
    size: int
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def backend(self) -> str:
        return str(self.params.get("backend", ""))

    @property
    def fixtures(self) -> Path:
        """The run's prebuilt stores (MLflow's read stores, the scale stores)."""
        return Path(self.params["fixtures"])

    @property
    def mlflow_db(self) -> Path:
        """The MLflow SQLite store of this case (a copy of the run's fixture, if any)."""
        return self.directory / "mlflow.db"

    @property
    def mlflow_uri(self) -> str:
        return f"sqlite:///{self.mlflow_db}"

    def trackplug_url(self, name: str = "trackplug") -> str:
        """The URL of this case's fresh trackplug store for ``params["backend"]``."""
        backend = self.backend
        if backend == "sqlite":
            return f"sqlite:///{self.directory / name}.db"
        if backend == "memory":
            return "memory://"
        if backend == "mlflow":
            return f"mlflow+{self.mlflow_uri}"
        if backend == "postgresql":
            return str(self.params["postgresql_url"])
        raise ValueError(f"unknown backend {backend!r}")


@dataclass
class Result:
    """What a body measured: ``seconds`` of timed work over ``points`` points, and the
    count read back afterwards (``found``) against the count it must be (``expected``)."""

    seconds: float
    points: int
    expected: int
    found: int
    figures: dict[str, float] = field(default_factory=dict)
    mismatch: str | None = None  # any other read-back check that failed, in words

    def problem(self) -> str | None:
        if self.found != self.expected:
            return f"read back {self.found} points, expected {self.expected}"
        return self.mismatch


Body = Callable[[Context], Result]


def load_body(path: str) -> Body:
    module_name, _, function_name = path.partition(":")
    body: Body = getattr(importlib.import_module(module_name), function_name)
    return body


def record(spec: Mapping[str, Any], result: Result) -> dict[str, Any]:
    figures = {"seconds": result.seconds}
    if result.points:
        figures["points_per_s"] = result.points / result.seconds
    figures.update(result.figures)
    return {
        "kind": "case",
        "case": spec["case"],
        "round": spec["round"],
        "size": spec["size"],
        "points": result.points,
        "expected": result.expected,
        "found": result.found,
        "problem": result.problem(),
        "figures": figures,
    }


def run(spec: Mapping[str, Any]) -> dict[str, Any]:
    context = Context(Path(spec["directory"]), int(spec["size"]), spec.get("params", {}))
    return record(spec, load_body(spec["body"])(context))


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    try:
        result = run(spec)
    except Exception:
        traceback.print_exc()
        result = {"kind": "case", "case": spec["case"], "round": spec["round"]}
        result["problem"] = "the case raised: " + traceback.format_exc(limit=-1).strip()
    print(RECORD_PREFIX + json.dumps(result), flush=True)
    return 1 if result["problem"] else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
