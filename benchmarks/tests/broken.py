"""A deliberately broken body: it logs one point fewer than it claims."""

from __future__ import annotations

from benchmarks.worker import Context, Result


def short_count(context: Context) -> Result:
    kept = list(range(context.size - 1))
    return Result(0.001, context.size, context.size, len(kept))
