"""The stores that the scaling curves read (``python -m benchmarks --scale``).

One store per backend, built once per run by a child process (``python -m benchmarks.scale
'<json>'``) through trackplug's own ``log_metric``: one series per size read, resource
``scale-<points>``, key ``loss``, steps 0..points-1. The read cases open it as it is (they
only read), so a 5,000,000-point history is written once per run, not once per case and
round. The runner drops a PostgreSQL store (a schema of its own) when the run ends.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from . import data
from .cases import Case
from .sizes import Sizes

#: The file in the run's fixtures directory that maps each backend to its store's URL.
STORES = "scale-stores.json"
#: ``params["store"]`` of a case that reads the run's scale store instead of a fresh one.
READS_STORE = "scale"


def resource(points: int) -> str:
    """The resource whose series holds ``points`` points."""
    return f"scale-{points}"


def value(step: int) -> float:
    """The value at ``step``, computed where it is logged (no input list of millions)."""
    return step * 0.001


def wanted(cases: Iterable[Case], sizes: Sizes) -> dict[str, list[int]]:
    """backend -> the sizes of the series its read cases need, smallest first."""
    found: dict[str, set[int]] = {}
    for case in cases:
        if case.params.get("store") == READS_STORE:
            backend = str(case.params["backend"])
            found.setdefault(backend, set()).add(getattr(sizes, case.size))
    return {backend: sorted(points) for backend, points in found.items()}


def store_url(fixtures: Path, backend: str) -> str:
    """The URL of the run's scale store of ``backend`` (for a read case's body)."""
    urls: dict[str, str] = json.loads((fixtures / STORES).read_text())
    return urls[backend]


def fill(urls: Mapping[str, str], series: Mapping[str, list[int]]) -> None:
    """Log each wanted series into each backend's store, one ``log_metric`` per point."""
    import trackplug

    for backend, url in urls.items():
        with trackplug.connect(url, buffer_size=50_000, max_buffer=200_000) as tracker:
            log, key = tracker.log_metric, data.KEY
            for points in series[backend]:
                name = resource(points)
                for step in range(points):
                    log(name, key, value(step), step=step)


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    fill(spec["urls"], spec["series"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
