"""The contract's one ordering rule and the capabilities arithmetic."""

from __future__ import annotations

import gc
import math

from hypothesis import given
from hypothesis import strategies as st

from trackplug import Capabilities, MetricPoint
from trackplug._model import FLOAT_MAX, float_bits, gc_paused, point_order, value_order

floats = st.floats(allow_nan=True, allow_infinity=True)


@given(floats, floats)
def test_value_order_is_numeric_order_with_nan_lowest_and_signed_zeros(a: float, b: float) -> None:
    def rank(x: float) -> tuple[int, float, bool]:
        return (0, 0.0, False) if math.isnan(x) else (1, x, not math.copysign(1, x) < 0)

    assert (value_order(a) < value_order(b)) == (rank(a) < rank(b))
    if not (math.isnan(a) or math.isnan(b)):
        assert (value_order(a) == value_order(b)) == (float_bits(a) == float_bits(b))


@given(floats)
def test_value_order_is_a_signed_64_bit_integer(x: float) -> None:
    assert -(2**63) <= value_order(x) < 2**63


def test_latest_is_decided_by_step_then_timestamp_then_value() -> None:
    points = [
        MetricPoint("k", 9.0, 1, 5),
        MetricPoint("k", 1.0, 2, 1),
        MetricPoint("k", 2.0, 2, 3),
        MetricPoint("k", 0.0, 2, 3),
        MetricPoint("k", -0.0, 2, 3),
        MetricPoint("k", math.nan, 2, 3),
    ]
    assert max(points, key=point_order).value == 2.0
    ordered = sorted(points, key=point_order)
    assert [p.value for p in ordered][:2] == [9.0, 1.0]
    assert math.isnan(ordered[2].value)
    assert [float_bits(p.value) for p in ordered[3:5]] == [float_bits(-0.0), float_bits(0.0)]


def test_capabilities_describe_what_is_read_back() -> None:
    perfect = Capabilities()
    assert perfect.stored(math.inf) == math.inf
    assert not perfect.limited
    mlflow_like = Capabilities(infinity="clamp", negative_zero="positive")
    assert mlflow_like.stored(-math.inf) == -FLOAT_MAX
    assert float_bits(mlflow_like.stored(-0.0)) == float_bits(0.0)
    picky = Capabilities(nan="reject", min_step=0)
    assert picky.limited
    assert picky.rejects(math.nan)
    assert picky.rejects_step(-1)


def _in_generation(generation: int, obj: object) -> bool:
    return any(o is obj for o in gc.get_objects(generation))


def test_gc_paused_kept_hands_what_it_built_to_the_oldest_generation_unexamined() -> None:
    """A long history handed to the caller: without ``kept`` its tuples wait in the young
    generation for collections that would walk them all (and free nothing). (Each block
    follows a full collection: no young collection runs before the checks.)"""
    gc.collect()
    with gc_paused(kept=True):
        kept = MetricPoint("k", 0.5, 1, 2)
        young = gc.get_count()[0]
    assert young > 0
    assert gc.get_count()[0] < young
    assert _in_generation(2, kept)
    gc.collect()
    with gc_paused():
        left = MetricPoint("k", 0.5, 1, 2)
    assert not _in_generation(2, left)
    assert gc.isenabled()


def test_gc_paused_kept_leaves_the_application_s_frozen_objects_frozen() -> None:
    """``gc.freeze()`` (before a fork, say) is the application's: never undone."""
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with gc_paused(kept=True):
            point = MetricPoint("k", 0.5, 1, 2)
        assert gc.get_freeze_count() == frozen
        assert not _in_generation(2, point)
    finally:
        gc.unfreeze()


def test_gc_paused_kept_moves_nothing_when_the_block_fails() -> None:
    """What a failed block built is garbage: the young collections may free it."""
    gc.collect()
    try:
        with gc_paused(kept=True):
            built = [MetricPoint("k", 0.5, 1, 2)]
            raise ValueError
    except ValueError:
        pass
    assert not _in_generation(2, built[0])
