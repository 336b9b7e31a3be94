"""Points <-> columns: exact value bits and order keys, computed a whole batch at a time.

SQLite's REAL stores NaN as NULL and -0.0 as 0.0, so a value is stored as an exact signed
64-bit integer: a point as its ``value_order`` alone (the key's last column, and since
schema version 4 the only copy of its value), a latest value and a perf record also as
its IEEE-754 bits (``value_bits``); see :func:`trackplug._model.float_bits` and
:func:`trackplug._model.value_order`, which these functions match exactly. The order is a
one-to-one function of the bits of a value whose NaN is the canonical one (the facade's
rule), so :func:`from_orders` gives every value back bit-exactly. Per-point Python calls
cost a microsecond each on the write path, so whole columns are converted at once:
``array`` reinterprets the doubles' bytes in C.
"""

from __future__ import annotations

import operator
from array import array
from collections.abc import Hashable, Sequence
from typing import TypeVar

from trackplug.plugin import INT64_MAX, INT64_MIN

__all__ = [
    "CANONICAL_NAN_BITS",
    "best_order",
    "from_bits",
    "from_orders",
    "latest_indexes",
    "orders_to_bits",
    "period",
    "to_bits",
    "to_orders",
    "value_column",
]

_Series = TypeVar("_Series", bound=Hashable)

#: Bits (sign cleared) of +inf: anything greater is a NaN.
_INF_BITS = 0x7FF0000000000000
#: The bits of ``float("nan")``: the one NaN the facade hands a backend, and the one a
#: point's ``value_order`` of NaN (:data:`INT64_MIN`) reads back as.
CANONICAL_NAN_BITS = 0x7FF8000000000000


def to_bits(values: Sequence[float]) -> list[int]:
    """``float_bits`` of every value."""
    return array("q", array("d", values).tobytes()).tolist()


def from_bits(bits: Sequence[int]) -> list[float]:
    """The floats whose bits these are (NaN, ±inf and -0.0 exactly)."""
    if isinstance(bits, array) and bits.typecode == "q":  # PostgreSQL's columns: no copy
        return array("d", bits.tobytes()).tolist()
    return array("d", array("q", bits).tobytes()).tolist()


def to_orders(bits: Sequence[int]) -> list[int]:
    """``value_order`` of every value, from its bits: non-negative floats order as their
    bits; negative ones (sign bit set) by their magnitude's bits reversed; NaN lowest."""
    if bits and min(bits) >= 0 and max(bits) <= _INF_BITS:
        return list(bits)  # no negative value and no NaN (losses, accuracies): two passes in C
    return [
        INT64_MIN if b & INT64_MAX > _INF_BITS else (b ^ INT64_MAX if b < 0 else b) for b in bits
    ]


def orders_to_bits(orders: Sequence[int]) -> Sequence[int]:
    """The bits of the values whose ``value_order`` these are: :func:`to_orders` inverted
    (its flip of a negative value's 63 low bits is its own inverse); NaN's order gives the
    canonical NaN. (``schema.VALUE_BITS`` is the same rule in SQL.)"""
    if not orders or min(orders) >= 0:
        return orders  # no negative value and no NaN: one pass in C, no copy
    return [
        CANONICAL_NAN_BITS if o == INT64_MIN else (o ^ INT64_MAX if o < 0 else o) for o in orders
    ]


def from_orders(orders: Sequence[int]) -> list[float]:
    """The values whose ``value_order`` these are (NaN, ±inf and -0.0 exactly)."""
    return from_bits(orders_to_bits(orders))


def value_column(orders: Sequence[int]) -> array[float]:
    """:func:`from_orders` as an ``array("d")``: the values' bits reinterpreted in C, with
    no float object per value (a history read as columns)."""
    bits = orders_to_bits(orders)
    if not (isinstance(bits, array) and bits.typecode == "q"):
        bits = array("q", bits)
    values = array("d")
    values.frombytes(memoryview(bits).cast("B"))  # frombytes takes bytes, not 8-byte items
    return values


def best_order(order: int) -> int | None:
    """The key ``best`` ranks by: ``value_order`` with -0.0 equal to 0.0 (``best`` compares
    values, and -0.0 == 0.0), None for NaN (never ranked)."""
    if order == INT64_MIN:
        return None
    return 0 if order == -1 else order  # value_order(-0.0) == -1, just below 0.0


def latest_indexes(
    series: Sequence[_Series], steps: Sequence[int], stamps: Sequence[int], orders: Sequence[int]
) -> dict[_Series, int]:
    """``{series: index of its latest point}``: the greatest ``(step, timestamp,
    value_order)`` of each.

    Usually each series' points come in that order, so its last point is its latest: a
    check per point, in C, says so (by steps alone when a series has one point a step).
    Otherwise sorting by that key and letting later entries overwrite earlier ones keeps
    the greatest per series. (The sort alone cost ~4x more on a batch of many keys a step:
    their value orders are shuffled within every step.)
    """
    first = series[0]  # one series? (a tuple compares by identity first)
    if series[-1] == first and series.count(first) == len(series):
        return {first: max(zip(steps, stamps, orders, range(len(series)), strict=True))[3]}
    size, cycle = len(series), period(series)
    if cycle is not None:  # a dict per step: each series' last point is in the last cycle
        last = dict(zip(series[size - cycle :], range(size - cycle, size), strict=True))
        last_steps: Sequence[int] = list(steps[size - cycle :]) * (size // cycle)
    else:
        last = dict(zip(series, range(size), strict=True))
        if len(last) == size:  # a point per series (one into each of many resources)
            return last
        last_steps = list(map(steps.__getitem__, map(last.__getitem__, series)))
    # By steps alone, without a key tuple per point: every point of a series is at a step
    # below its last one's but the last one itself (one point per series has its last step).
    if all(map(operator.le, steps, last_steps)) and sum(map(operator.eq, steps, last_steps)) == len(
        last
    ):
        return last
    sort_keys = list(zip(steps, stamps, orders, strict=True))
    each_last = map(sort_keys.__getitem__, map(last.__getitem__, series))
    if all(map(operator.le, sort_keys, each_last)):  # points at one step: the whole key
        return last
    ranked = sorted(range(size), key=sort_keys.__getitem__)
    return dict(zip(map(series.__getitem__, ranked), ranked, strict=True))


def period(column: Sequence[Hashable]) -> int | None:
    """The ``k`` such that ``column`` is its first ``k`` items, all different, repeated
    (the series of a batch of one dict of ``k`` keys per step); None when there is none
    (``column`` holds at least one item). Checked in C: a sequence comparison, and a set
    of the first ``k``."""
    size = len(column)
    try:
        cycle = column.index(column[0], 1)
    except ValueError:  # the first item never comes again (or is the only one)
        return None
    if size % cycle or column[cycle:] != column[:-cycle]:  # not the first cycle repeated
        return None
    return cycle if len(set(column[:cycle])) == cycle else None
