"""The batch codec matches the core's per-value definitions exactly."""

from __future__ import annotations

import math
import sqlite3
import struct
from array import array

from hypothesis import given
from hypothesis import strategies as st
from trackplug_sql.codec import (
    CANONICAL_NAN_BITS,
    best_order,
    from_bits,
    from_orders,
    latest_indexes,
    orders_to_bits,
    period,
    to_bits,
    to_orders,
    value_column,
)
from trackplug_sql.schema import VALUE_BITS

from trackplug._model import INT64_MIN, MetricPoint, float_bits, point_order, value_order

# Any double, NaNs with any payload and sign included (the core canonicalizes, but the codec
# must not depend on it).
any_float = st.integers(min_value=0, max_value=2**64 - 1).map(
    lambda n: float(struct.unpack("<d", struct.pack("<Q", n))[0])
)
floats = st.one_of(any_float, st.floats(), st.sampled_from([0.0, -0.0, math.inf, -math.inf]))


@given(st.lists(floats))
def test_bits_and_orders_match_the_model(values: list[float]) -> None:
    bits = to_bits(values)
    assert bits == [float_bits(v) for v in values]
    assert to_orders(bits) == [value_order(v) for v in values]
    assert [float_bits(v) for v in from_bits(bits)] == bits


def stored(value: float) -> int:
    """The bits a value reads back as: itself, NaN as the canonical NaN (the facade's rule)."""
    return CANONICAL_NAN_BITS if math.isnan(value) else float_bits(value)


@given(st.lists(floats))
def test_orders_give_every_value_back(values: list[float]) -> None:
    """Schema version 4 stores a point's value as its order alone: reading it back gives
    the same bits, every NaN the canonical NaN (whatever payload or sign it was logged with)."""
    orders = to_orders(to_bits(values))
    assert list(orders_to_bits(orders)) == [stored(v) for v in values]
    assert [float_bits(v) for v in from_orders(orders)] == [stored(v) for v in values]
    # PostgreSQL's histories arrive as array("q"): the same values
    packed = from_orders(array("q", orders))
    assert [float_bits(v) for v in packed] == [stored(v) for v in values]
    # and as a column (history_columns_page), from a list or an array("q"), with no float each
    for given_orders in (orders, array("q", orders)):
        column = value_column(given_orders)
        assert column.typecode == "d"
        assert [float_bits(v) for v in column] == [stored(v) for v in values]


@given(st.lists(floats, max_size=50))
def test_the_sql_rule_is_the_codecs(values: list[float]) -> None:
    """schema.VALUE_BITS (the rollup's blocks keep their extremes' bits, computed in SQL)
    is orders_to_bits, on SQLite (test_sampled.py checks it on PostgreSQL too)."""
    orders = to_orders(to_bits(values))
    with sqlite3.connect(":memory:") as db:
        db.execute("CREATE TABLE t (i INTEGER, value_order INTEGER)")
        db.executemany("INSERT INTO t VALUES (?, ?)", enumerate(orders))
        found = [bits for (bits,) in db.execute(f"SELECT {VALUE_BITS} FROM t ORDER BY i")]
    assert found == list(orders_to_bits(orders))


@given(floats)
def test_best_order_compares_values_and_skips_nan(value: float) -> None:
    order = best_order(value_order(value))
    if math.isnan(value):
        assert order is None
    else:
        assert order == value_order(value + 0.0)  # -0.0 + 0.0 == 0.0


@given(floats, floats)
def test_best_order_is_the_order_of_values(a: float, b: float) -> None:
    if not (math.isnan(a) or math.isnan(b)):
        oa, ob = best_order(value_order(a)), best_order(value_order(b))
        assert oa is not None
        assert ob is not None
        assert (oa < ob, oa == ob) == (a < b, a == b)


points = st.builds(
    MetricPoint,
    st.sampled_from(["a", "b", "c"]),
    floats,
    st.integers(-3, 3),
    st.integers(0, 3),
)


@given(st.lists(points, min_size=1))
def test_latest_indexes_pick_the_greatest_point_per_key(batch: list[MetricPoint]) -> None:
    keys, values, steps, stamps = zip(*batch, strict=True)
    orders = to_orders(to_bits(values))
    found = latest_indexes(keys, steps, stamps, orders)
    assert found.keys() == set(keys)
    for key, index in found.items():
        best = max((p for p in batch if p.key == key), key=point_order)
        assert point_order(batch[index]) == point_order(best)


# A dict per step: the same keys, in the same order, at each of several steps (whose
# steps, timestamps and values Hypothesis picks: ties, steps out of order, NaN).
grids = st.tuples(
    st.lists(st.sampled_from("abcdef"), min_size=1, unique=True),
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=2, max_size=6),
    st.data(),
)


@given(grids)
def test_latest_indexes_of_a_dict_per_step(
    grid: tuple[list[str], list[tuple[int, int]], st.DataObject],
) -> None:
    """Its series repeat with a period: each one's last point is found in the last step,
    and checked against every point of it as in any other batch."""
    keys, at, data = grid
    values = data.draw(st.lists(floats, min_size=len(keys) * len(at), max_size=len(keys) * len(at)))
    batch = [
        MetricPoint(key, values[row * len(keys) + column], step, stamp)
        for row, (step, stamp) in enumerate(at)
        for column, key in enumerate(keys)
    ]
    series, values_, steps, stamps = zip(*batch, strict=True)
    assert len(keys) == 1 or period(series) == len(keys)
    found = latest_indexes(series, steps, stamps, to_orders(to_bits(values_)))
    assert found.keys() == set(keys)
    for key, index in found.items():
        best = max((p for p in batch if p.key == key), key=point_order)
        assert point_order(batch[index]) == point_order(best)


@given(st.lists(st.integers(0, 4), min_size=1, max_size=12), st.integers(1, 4))
def test_period_is_the_cycle_of_distinct_items_a_column_repeats(
    items: list[int], times: int
) -> None:
    column = items * times
    cycle = period(column)
    repeats = len(set(items)) == len(items) and times > 1
    if repeats:
        assert cycle == len(items)
    if cycle is not None:
        first = column[:cycle]
        assert len(set(first)) == cycle
        assert column == first * (len(column) // cycle)
        assert cycle < len(column)
    else:
        assert not repeats


def test_nan_orders_lowest() -> None:
    assert to_orders(to_bits([math.nan, -math.nan])) == [INT64_MIN, INT64_MIN]


@given(st.lists(points, min_size=1))
def test_latest_indexes_of_a_batch_in_step_order(batch: list[MetricPoint]) -> None:
    """As log_metrics buffers them: steps and timestamps in order, values in any order
    (each series' last point is usually its latest; not when a point ties on both)."""
    batch.sort(key=lambda p: (p.step, p.timestamp))
    keys, values, steps, stamps = zip(*batch, strict=True)
    found = latest_indexes(keys, steps, stamps, to_orders(to_bits(values)))
    for key, index in found.items():
        best = max((p for p in batch if p.key == key), key=point_order)
        assert point_order(batch[index]) == point_order(best)


@given(st.lists(st.floats(min_value=0.0), min_size=1))
def test_orders_of_non_negative_values_are_their_bits(values: list[float]) -> None:
    bits = to_bits(values)
    assert to_orders(bits) == bits == [value_order(v) for v in values]
