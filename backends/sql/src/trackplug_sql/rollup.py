"""The block-extremes rollup that ``history_sampled`` reads instead of the points.

A series' steps are cut into blocks of ``2**shift`` steps (block ``step >> shift``); each
block keeps its least and greatest points (by ``value_order``, ties by history order: the
rule of ``trackplug._model.sample_points``). A sample's bucket is then the blocks it covers
whole plus the points of the (at most two) blocks its edges cut: a 1,000,000-point series
sampled to 1,000 points reads ~16,000 block rows and the ~32,000 points of the blocks at the
buckets' edges (each twice: least, greatest) instead of every point.

Kept up to date lazily, so that writes stay as fast as before: a write only marks the series
it touched stale from the least step it wrote (one ``UPDATE`` of the series' rollup row, none
for a series never sampled); the next sampled read rebuilds the blocks from there on, in its
own write transaction, then reads them. The first sampled read of a series builds its
blocks (about the cost of one ``history``), choosing ``shift`` so that a block holds
~:data:`POINTS_PER_BLOCK` points. ``copy_metrics`` drops the target's rollup: rebuilt whole.

After a bulk load, that first read would pay for the whole build (a 1,000,000-point chart
waiting ~0.5 s), so a backend closing a persistent store builds it first (:func:`build_ahead`)
for every series it wrote at least :data:`BUILD_AT_CLOSE` points into: off the write path
(which stays as it was) and off the reader's, at about 11-12% of the bulk write's time
(SQLite and PostgreSQL, measured at a load of 6-14).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from trackplug.plugin import INT64_MIN

from .schema import SAMPLE_ENDS
from .store import Row, SamplePlan, Transaction

__all__ = [
    "BUILD_AT_CLOSE",
    "DROP_TARGET",
    "EMPTY",
    "MARK_STALE",
    "POINTS_PER_BLOCK",
    "BucketRanges",
    "Build",
    "bucket_ranges",
    "build_ahead",
    "choose_shift",
    "extremes",
    "fresh_shift",
    "refresh",
]

#: Points a block holds when a series' rollup is first built (~sqrt(points per bucket) of a
#: 1,000,000-point series sampled to 1,000: block rows and points at the edges balance).
POINTS_PER_BLOCK = 64
#: Points a backend must have written into a series (by its estimate: see
#: ``SQLBackend.close``) for its ``close()`` to build the series' blocks: below it the first
#: sampled read builds them in ~50 ms (a chart's budget is 1 s), above it in longer.
BUILD_AT_CLOSE = 100_000
#: An empty inclusive range of steps or blocks.
EMPTY = (1, 0)

STATE = "SELECT shift, stale_from FROM trackplug_rollups WHERE series = :series"
COUNT = "SELECT count(*) FROM trackplug_points WHERE series = :series"
NEW_STATE = (
    "INSERT INTO trackplug_rollups (series, shift, stale_from) VALUES (:series, :shift, NULL)"
)
FRESH = "UPDATE trackplug_rollups SET stale_from = NULL WHERE series = :series"
DROP_BLOCKS = "DELETE FROM trackplug_blocks WHERE series = :series AND block >= :block"
#: copy_metrics: the target's series are rebuilt whole by their next sampled read.
DROP_TARGET = (
    "DELETE FROM trackplug_rollups WHERE series IN "
    "(SELECT id FROM trackplug_series WHERE resource = :target)"
)
#: The write side: a series written from ``step`` on, where its rollup exists at all (one
#: statement a batch: ``Transaction.mark_stale``, from the batch's least step, a bound
#: cheaper than one per series).
MARK_STALE = (
    "UPDATE trackplug_rollups SET stale_from = :step "
    "WHERE series = :series AND (stale_from IS NULL OR stale_from > :step)"
)

#: Builds the blocks of ``series`` from the one holding step ``from_step`` through
#: ``last_block`` (each store its own way).
Build = Callable[[Transaction, int, int, int, int], None]


def choose_shift(count: int, first_step: int, last_step: int) -> int:
    """The block width (``2**shift`` steps) holding ~:data:`POINTS_PER_BLOCK` of ``count``
    points spread over ``[first_step, last_step]``."""
    steps_per_block = (last_step - first_step + 1) * POINTS_PER_BLOCK // max(count, 1)
    return min(62, max(0, steps_per_block.bit_length() - 1))  # the power of 2 at or below


def refresh(
    tx: Transaction, series: int, plan: SamplePlan, build: Build, lock: str | None = None
) -> int:
    """Bring the blocks of ``series`` up to date inside ``tx``, a write transaction that
    ``lock`` (a statement) first serializes against the series' writers; returns its
    ``shift``. ``plan``: the sample being read (its first and last steps)."""
    state = _state(tx, series, lock)
    return _refresh(tx, series, state, plan.first[0], plan.last[0], build)


def build_ahead(tx: Transaction, series: int, build: Build, lock: str | None = None) -> bool:
    """What the next sampled read of ``series`` would do first, done now inside ``tx`` (a
    write transaction; ``lock`` as for :func:`refresh`): its blocks built or brought up to
    date, unless they are, or it has no points or one step only (sampled by timestamps: no
    blocks apply). Returns whether it built any."""
    state = _state(tx, series, lock)
    if state is not None and state[1] is None:
        return False
    first = tx.query(SAMPLE_ENDS["first"], {"series": series})
    last = tx.query(SAMPLE_ENDS["last"], {"series": series})
    if not first or first[0][0] == last[0][0]:
        return False
    _refresh(tx, series, state, first[0][0], last[0][0], build)
    return True


def _state(tx: Transaction, series: int, lock: str | None) -> Row | None:
    """The rollup row ``(shift, stale_from)`` of ``series`` (None: never built), read after
    ``lock``, if given, has serialized this transaction against the series' writers."""
    if lock is not None:
        tx.run(lock, {"series": series})
    found = tx.query(STATE, {"series": series})
    return found[0] if found else None


def _refresh(
    tx: Transaction,
    series: int,
    state: Row | None,
    first_step: int,
    last_step: int,
    build: Build,
) -> int:
    """The blocks of ``series``, whose rollup row is ``state``, brought up to date."""
    if state is not None:
        shift, stale_from = state
        if stale_from is None:
            return int(shift)
        from_step = stale_from >> shift << shift  # the start of its block
    else:  # never built, or dropped by copy_metrics: leftover blocks go too
        ((count,),) = tx.query(COUNT, {"series": series})
        shift = choose_shift(count, first_step, last_step)
        tx.run(NEW_STATE, {"series": series, "shift": shift})
        from_step = INT64_MIN
    tx.run(DROP_BLOCKS, {"series": series, "block": from_step >> shift})
    build(tx, series, shift, from_step, last_step >> shift)
    tx.run(FRESH, {"series": series})
    return int(shift)


def fresh_shift(query: Callable[[str, dict[str, int]], list[Row]], series: int) -> int | None:
    """The ``shift`` of the blocks of ``series`` when they exist and are up to date."""
    state = query(STATE, {"series": series})
    return int(state[0][0]) if state and state[0][1] is None else None


def extremes(least: Sequence[Row], greatest: Sequence[Row]) -> list[Row]:
    """A bucket's least and greatest points, of candidate rows ``(step, timestamp_ms,
    value_order)`` (``value_order`` None: no candidate): the least and the
    greatest ``value_order``, ties by history order."""
    lows = [row for row in least if row[2] is not None]
    highs = [row for row in greatest if row[2] is not None]
    if not lows:
        return []
    return [
        min(lows, key=lambda r: (r[2], r[0], r[1])),
        min(highs, key=lambda r: (-r[2], r[0], r[1])),
    ]


class BucketRanges(NamedTuple):
    """One bucket ``[low, high]`` of a sample as what a read of the rollup takes: the blocks
    it covers whole and the steps before and after them (each an inclusive range, maybe
    :data:`EMPTY`)."""

    blocks: tuple[int, int]
    head: tuple[int, int]
    tail: tuple[int, int]

    def params(self) -> dict[str, int]:
        """``blocks_low``, ``blocks_high``, ``head_low``… : the statements' parameters."""
        (blocks_low, blocks_high), (head_low, head_high), (tail_low, tail_high) = self
        return {
            "blocks_low": blocks_low,
            "blocks_high": blocks_high,
            "head_low": head_low,
            "head_high": head_high,
            "tail_low": tail_low,
            "tail_high": tail_high,
        }


def bucket_ranges(low: int, high: int, shift: int) -> BucketRanges:
    """The bucket ``[low, high]`` (steps) over blocks of ``2**shift`` steps; every value is a
    signed 64-bit integer, as the statements take them (an empty range is :data:`EMPTY`)."""
    first_whole = -(-low >> shift)  # the first block that starts at or after low
    last_whole = ((high + 1) >> shift) - 1  # the last block that ends at or before high
    if first_whole > last_whole:
        return BucketRanges(EMPTY, (low, high), EMPTY)
    head_end = (first_whole << shift) - 1
    tail_start = (last_whole + 1) << shift
    return BucketRanges(
        (first_whole, last_whole),
        (low, head_end) if low <= head_end else EMPTY,
        (tail_start, high) if tail_start <= high else EMPTY,
    )
