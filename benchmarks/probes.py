"""What a case measures besides wall time: caller latency percentiles and peak memory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def latency_figures(nanoseconds: Sequence[int]) -> dict[str, float]:
    """p50, p99 and max of per-call latencies, in microseconds."""
    ordered = sorted(nanoseconds)
    last = len(ordered) - 1
    return {
        "p50_us": ordered[round(0.50 * last)] / 1000,
        "p99_us": ordered[round(0.99 * last)] / 1000,
        "max_us": ordered[last] / 1000,
    }


def status_kib(field: str) -> int:
    """A ``/proc/self/status`` field in KiB (Linux), e.g. ``VmHWM`` (peak RSS) or ``VmRSS``."""
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0])
    raise RuntimeError(f"/proc/self/status has no {field}: peak memory needs Linux")


class PeakMemory:
    """The peak resident memory from now on, above the resident memory now (Linux): the
    kernel's high-water mark (VmHWM) is reset to the current RSS through ``clear_refs``,
    so what the case did before (imports, building its input) does not count."""

    def __init__(self) -> None:
        Path("/proc/self/clear_refs").write_text("5")
        self._start = status_kib("VmRSS")

    def mib(self) -> float:
        return (status_kib("VmHWM") - self._start) / 1024
