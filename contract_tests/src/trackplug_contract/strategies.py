"""Hypothesis strategies for the inputs of the contract, valid and invalid; public API.

Use them in a backend's own property tests::

    from hypothesis import given
    from trackplug_contract import strategies as tps

    @given(tps.keys(), tps.values(), tps.steps())
    def test_round_trip(key, value, step): ...

Values include NaN, ±inf, -0.0, subnormals and ±max float; steps cover the signed 64-bit
range and its edges; keys follow MLflow's rule (``is_valid_key`` states it independently of
trackplug's own validator, so the suite can check the validator too).
"""

from __future__ import annotations

import math
import posixpath
import re
from fractions import Fraction

from hypothesis import strategies as st

from trackplug import MetricPoint

__all__ = [
    "CODE_POINT_ORDER_IDS",
    "CODE_POINT_ORDER_KEYS",
    "FLOAT_MAX",
    "INT64_MAX",
    "INT64_MIN",
    "LOOKALIKE_IDS",
    "LOOKALIKE_KEYS",
    "SPECIAL_STEPS",
    "SPECIAL_TIMESTAMPS",
    "SPECIAL_VALUES",
    "invalid_keys",
    "invalid_steps",
    "invalid_values",
    "is_valid_key",
    "keys",
    "points",
    "real_numbers",
    "resource_ids",
    "steps",
    "timestamps",
    "values",
]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
FLOAT_MAX = 1.7976931348623157e308

#: Floats a backend is most likely to get wrong.
SPECIAL_VALUES: tuple[float, ...] = (
    math.nan,
    math.inf,
    -math.inf,
    -0.0,
    0.0,
    5e-324,
    -5e-324,
    FLOAT_MAX,
    -FLOAT_MAX,
    2.0**53 + 2,
    0.1,
    1 / 3,  # 17 significant digits: lost by a 15-digit text form
    1.0,
    -1.0,
)
#: Steps at the edges of 32 and 64 bits, negative ones, and the default.
SPECIAL_STEPS: tuple[int, ...] = (
    INT64_MIN,
    INT64_MIN + 1,
    -(2**31) - 1,
    -(2**31),
    -1,
    0,
    1,
    2,
    2**31 - 1,
    2**31,
    2**32,
    2**53 + 1,
    INT64_MAX - 1,
    INT64_MAX,
)
#: Timestamps at the edges of 32 bits, of a float's exact integers, of 64 bits, and ones
#: whose milliseconds a store working in seconds would lose.
SPECIAL_TIMESTAMPS: tuple[int, ...] = (
    0,
    1,
    999,
    1_700_000_000_123,
    2**31 - 1,
    2**31,
    2**32 + 1,
    2**53 + 1,
    INT64_MAX - 1,
    INT64_MAX,
)

#: Resource ids in groups that a store easily takes for one another; each must stay a
#: resource of its own, listed under its own id.
LOOKALIKE_IDS: tuple[str, ...] = (
    "a", "a1", "ab", "b", "A",  # prefixes (``LIKE 'a%'``) and case
    "a/b", "a b", "a_b", "a.b", "a%", "a_",  # separators and LIKE's wildcards
    "a ", " a",  # what a CHAR column pads, or a trim drops
    "é", "e\u0301", "e",  # one code point, or e and a combining accent: equal after NFC
    "ﬁ", "fi", "\uff2b", "K", "\u212a", "²", "2",  # equal after NFKC (fullwidth, Kelvin)
    "a%20b", "a%2Fb", "%41", "a%25", "a+b",  # decoded: "a b", "a/b", "A", "a%", "a b"
    "x" * 64, "x" * 65, "x" * 249 + "y", "x" * 250,  # cut at a character length
    "é" * 249 + "1", "é" * 249 + "2",  # 250 characters, 500 bytes: cut at a byte length
    "😀" * 249 + "1", "😀" * 249 + "2",  # 250 characters, 1000 bytes
)  # fmt: skip
#: Metric keys in groups that a store easily takes for one another.
LOOKALIKE_KEYS: tuple[str, ...] = (
    "loss", "Loss", "LOSS", "l", "L",  # case
    "val.loss", "val_loss", "val/loss", "val loss", "val:loss", "val-loss", "valloss",
    "K", "\u212a", "fi", "ﬁ", "L2", "\uff2c2", "L²",  # equal after NFKC
    "k" * 249 + "a", "k" * 249 + "b",  # cut at a character length
    "é" * 249 + "a", "é" * 249 + "b",  # 250 characters, 500 bytes: cut at a byte length
)  # fmt: skip
#: Ids whose code-point order (``sorted()``: ``"B" < "_" < "a"``, ``"\uff01" < "😀"``) is
#: not their order ignoring case, nor a natural (``a9 < a10``) nor a UTF-16 order.
CODE_POINT_ORDER_IDS: tuple[str, ...] = (
    "b", "B", "a", "A", "Z", "_", "a10", "a9", "aB", "ab", "a b", "a-b", "a.b",
    "é", "E", "\uff01", "😀",
)  # fmt: skip
#: Keys of one resource whose code-point order differs from case-insensitive orders.
CODE_POINT_ORDER_KEYS: tuple[str, ...] = (
    "b", "B", "a", "A", "Z", "_", "a10", "a9", "aB", "ab", "a b", "a-b", "a.b", "a/b", "a:b",
    "é", "E", "\uff2c",
)  # fmt: skip
_KEY_CHARS = re.compile(r"^[/\w.\- :]*$")
_INTERESTING_KEYS = (
    "loss",
    "val.loss",
    "train/loss",
    "train_f1",
    "a b",
    "x:y",
    "é",
    "ü-1_2",
    "L",
    "l",
    "a.b.c",
    "k" * 250,
)
_INVALID_KEYS = (
    "",
    "k" * 251,
    "a..b",
    "..",
    "/a",
    ".",
    "./a",
    "a/",
    "a//b",
    "a/./b",
    "a!b",
    "tab\there",
    "new\nline",
    "a;drop table",
    "quote'",
)


def is_valid_key(key: object) -> bool:
    """MLflow's key rule as DESIGN.md states it: 1..250 characters of ``[/\\w.\\- :]``, no
    ``..``, no leading ``/``, not ``.``, and a normalized path."""
    return (
        isinstance(key, str)
        and 1 <= len(key) <= 250
        and bool(_KEY_CHARS.match(key))
        and ".." not in key
        and not key.startswith("/")
        and key != "."
        and posixpath.normpath(key) == key
    )


def keys() -> st.SearchStrategy[str]:
    """Valid metric keys: everyday ones, dotted and slashed ones, Unicode, 250 characters."""
    segment = st.from_regex(r"[\w\- :][\w.\- :]{0,11}", fullmatch=True)
    built = st.lists(segment, min_size=1, max_size=3).map("/".join)
    return st.one_of(st.sampled_from(_INTERESTING_KEYS), built).filter(is_valid_key)


def invalid_keys() -> st.SearchStrategy[object]:
    """Keys the contract refuses: bad characters, lengths, paths, and non-strings."""
    text = st.text(max_size=12).filter(lambda k: not is_valid_key(k))
    wrong_type = st.sampled_from([None, 1, 1.5, b"loss", ("loss",)])
    return st.one_of(st.sampled_from(_INVALID_KEYS), text, wrong_type)


def values() -> st.SearchStrategy[float]:
    """Every float, weighted towards NaN, ±inf, -0.0, subnormals and ±max float."""
    return st.one_of(st.sampled_from(SPECIAL_VALUES), st.floats(width=64))


def real_numbers() -> st.SearchStrategy[object]:
    """What users may log: floats, ints within what a float can hold, and fractions."""
    ints = st.integers(min_value=-(2**70), max_value=2**70)
    fractions = st.fractions(max_denominator=1000).filter(lambda f: abs(f) < 2**60)
    return st.one_of(values(), ints, fractions.map(Fraction))


def invalid_values() -> st.SearchStrategy[object]:
    """Values the contract refuses with a TypeError: bool, None, strings, containers."""
    return st.sampled_from([True, False, None, "0.5", b"1", [1.0], (1.0,), {"v": 1.0}, 1j])


def steps() -> st.SearchStrategy[int]:
    """Signed 64-bit steps, weighted towards small ones and the 32/64-bit edges."""
    return st.one_of(
        st.sampled_from(SPECIAL_STEPS),
        st.integers(min_value=-3, max_value=6),
        st.integers(min_value=INT64_MIN, max_value=INT64_MAX),
    )


def invalid_steps() -> st.SearchStrategy[object]:
    """Steps the contract refuses: beyond 64 bits, or not an integer (bool, float, str)."""
    return st.one_of(
        st.sampled_from([INT64_MAX + 1, INT64_MIN - 1, 2**64, True, 1.0, 1.5, "1", None]),
        st.integers(min_value=INT64_MAX + 1),
        st.integers(max_value=INT64_MIN - 1),
    )


def timestamps() -> st.SearchStrategy[int]:
    """Milliseconds since the epoch: a few shared ones (to make ties), and any 64-bit one."""
    return st.one_of(
        st.sampled_from([0, 1, 2, 1_700_000_000_000, INT64_MAX]),
        st.integers(min_value=0, max_value=INT64_MAX),
    )


def resource_ids() -> st.SearchStrategy[str]:
    """Resource ids: 1..250 characters without control characters, short ones mostly and
    ones near the limit of 250 too."""
    alphabet = st.characters(blacklist_categories=("Cc", "Cs"))
    return st.one_of(
        st.text(alphabet, min_size=1, max_size=40),
        st.text(alphabet, min_size=240, max_size=250),
    )


def points(key: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[MetricPoint]:
    """Valid metric points, with steps and timestamps drawn from small sets (to make ties
    and exact duplicates likely) as often as from the full range."""
    return st.builds(
        MetricPoint,
        key if key is not None else keys(),
        values(),
        st.one_of(st.integers(min_value=-2, max_value=3), steps()),
        st.one_of(st.integers(min_value=0, max_value=3), timestamps()),
    )
