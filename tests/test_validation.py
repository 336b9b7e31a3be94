"""The input rules: each input is accepted, or rejected with the specific error, and a
rejected call leaves the tracker unchanged."""

from __future__ import annotations

import math
import posixpath
import re
import struct
from collections.abc import Callable
from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import trackplug
from trackplug import InvalidTypeError, Resource, ValidationError
from trackplug._model import INT64_MAX, INT64_MIN, float_bits
from trackplug._validation import (
    check_entry,
    check_fields,
    check_key,
    check_point,
    check_step,
    check_timestamp,
    check_value,
    resource_id,
    to_resource,
)

# An oracle written from the rule's text, independent of the implementation.
KEY_CHARS = re.compile(r"[/\w.\- :]*")


def follows_key_rule(key: str) -> bool:
    return (
        1 <= len(key) <= 250
        and bool(KEY_CHARS.fullmatch(key))
        and ".." not in key
        and not key.startswith("/")
        and posixpath.normpath(key) == key
        and key != "."
    )


key_like = st.one_of(
    st.text(alphabet="ab_-. :/1é", min_size=0, max_size=12),
    st.text(max_size=260),
    st.sampled_from(
        ["a..b", "/a", "a/", "a//b", "./a", ".", "x" * 250, "x" * 251, "a\nb", "loss\n"]
    ),
)


@given(key_like)
def test_a_key_is_accepted_exactly_when_it_follows_the_rule(key: str) -> None:
    if follows_key_rule(key):
        assert check_key(key) == key
    else:
        with pytest.raises(ValidationError, match=re.escape(repr(key)[:40])):
            check_key(key)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab_-. :/1é", min_size=1, max_size=12))
def test_every_accepted_key_is_accepted_by_mlflow(key: str) -> None:
    validation = pytest.importorskip(
        "mlflow.utils.validation", reason="mlflow is the oracle for keys"
    )
    try:
        check_key(key)
    except ValidationError:
        return
    validation._validate_metric_name(key)  # raises if MLflow would refuse the key


@pytest.mark.parametrize(
    ("key", "rule"),
    [
        ("a..b", "'..' is not allowed"),
        ("/loss", "must not start with '/'"),
        ("", "1 to 250"),
        ("x" * 251, "1 to 250"),
        ("loss!", "only letters"),
        ("a//b", "normalized path"),
    ],
)
def test_key_errors_name_the_key_and_the_rule(key: str, rule: str) -> None:
    with pytest.raises(ValidationError) as error:
        check_key(key)
    assert repr(key)[:30] in str(error.value)
    assert rule in str(error.value)


def test_a_key_of_the_wrong_type_is_a_type_error() -> None:
    with pytest.raises(InvalidTypeError):
        check_key(3)


real_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.sampled_from([-0.0, 0.0, math.inf, -math.inf, Fraction(1, 3)]),
    st.floats(width=32).map(np.float32),
    st.integers(min_value=-(2**31), max_value=2**31 - 1).map(np.int64),
)
not_values = st.one_of(
    st.booleans(),
    st.none(),
    st.text(max_size=5),
    st.lists(st.floats(), max_size=3),
    st.sampled_from([np.bool_(True), np.array([1.0, 2.0]), {"a": 1}, b"1", 1j]),
)


@given(real_values)
def test_real_numbers_are_accepted_bit_exactly(value: object) -> None:
    number = check_value("m", value)
    assert type(number) is float
    expected = float(value)  # type: ignore[arg-type]
    if math.isnan(expected):
        assert float_bits(number) == float_bits(math.nan)  # the one canonical NaN
    else:
        assert float_bits(number) == float_bits(expected)


@given(not_values)
def test_anything_else_is_a_type_error_naming_the_key(value: object) -> None:
    with pytest.raises(InvalidTypeError, match="'loss'"):
        check_value("loss", value)


def test_an_int_too_large_for_a_float_is_rejected() -> None:
    with pytest.raises(ValidationError, match="too large"):
        check_value("m", 10**400)


def test_every_nan_becomes_the_canonical_nan() -> None:
    odd_nan = struct.unpack("<d", struct.pack("<q", 0x7FF0_0000_0000_0001))[0]
    assert float_bits(check_value("m", odd_nan)) == float_bits(math.nan)
    assert float_bits(check_value("m", np.float64("nan"))) == float_bits(math.nan)


ODD_NAN = struct.unpack("<d", struct.pack("<q", 0x7FF0_0000_0000_0001))[0]


def outcome(check: Callable[..., tuple[object, ...]], *args: object) -> tuple[object, ...] | str:
    """What a check returns (each float as its bits: NaNs compared exactly), or what it
    raises (its type and message)."""
    try:
        fields = check(*args)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return tuple(float_bits(f) if type(f) is float else f for f in fields)


@given(
    key=st.sampled_from(["loss", "val/f1"]) | key_like,
    value=real_values | not_values | st.sampled_from([ODD_NAN, -math.nan]),
    step=st.integers(min_value=INT64_MIN - 1, max_value=INT64_MAX + 1) | st.booleans(),
    timestamp=st.none() | st.integers(min_value=-1, max_value=INT64_MAX + 1),
)
# Each condition of the short way at its edge (random draws seldom combine a known key, a
# float and no timestamp with the one odd field).
@example(key="loss", value=ODD_NAN, step=3, timestamp=None)
@example(key="loss", value=0.5, step=INT64_MAX + 1, timestamp=None)
@example(key="loss", value=0.5, step=True, timestamp=None)
@example(key="a..b", value=0.5, step=3, timestamp=None)
@example(key="loss", value=np.float32(0.5), step=3, timestamp=None)
def test_log_metric_short_way_checks_exactly_what_check_fields_checks(
    key: object, value: object, step: object, timestamp: int | None
) -> None:
    # check_entry repeats check_fields' short way inline (one tuple a log_metric, not two);
    # this holds the twin to the rule: the same point or the same error, for any input.
    check_key("loss"), check_key("val/f1")  # known valid: the short way takes them
    entry = outcome(check_entry, "run", key, value, step, timestamp)
    fields = outcome(check_fields, key, value, step, timestamp)
    if isinstance(fields, str):
        assert entry == fields
    elif timestamp is None:  # both "now", read a moment apart
        assert not isinstance(entry, str)
        assert entry[:4] == ("run", *fields[:3])
        assert abs(entry[4] - fields[3]) < 60_000  # type: ignore[operator]
    else:
        assert entry == ("run", *fields)


@given(st.integers(min_value=INT64_MIN, max_value=INT64_MAX))
def test_steps_are_signed_64_bit(step: int) -> None:
    assert check_step("m", step) == step


@pytest.mark.parametrize("step", [INT64_MAX + 1, INT64_MIN - 1])
def test_steps_outside_64_bits_are_rejected(step: int) -> None:
    with pytest.raises(ValidationError, match="64-bit"):
        check_step("m", step)


@pytest.mark.parametrize("step", [True, 1.0, "1", None])
def test_steps_of_the_wrong_type_are_type_errors(step: object) -> None:
    with pytest.raises(InvalidTypeError, match="step"):
        check_step("m", step)


def test_numpy_integers_are_steps() -> None:
    assert check_step("m", np.int64(7)) == 7


def test_timestamps_are_non_negative_milliseconds() -> None:
    assert check_timestamp("m", 0) == 0
    assert check_timestamp("m", None) > 1_600_000_000_000  # now, in ms
    with pytest.raises(ValidationError, match="non-negative"):
        check_timestamp("m", -1)
    with pytest.raises(InvalidTypeError):
        check_timestamp("m", 1.5)


def test_check_point_agrees_with_the_single_checks() -> None:
    point = check_point("k", 1, np.int32(3), 5)
    assert point == ("k", 1.0, 3, 5)
    assert type(point.value) is float


class Run:
    def __init__(self, id: object) -> None:
        self.id = id


@pytest.mark.parametrize(
    "resource",
    ["model-1", Run("model-1"), ("model-1", object()), SimpleNamespace(id="model-1")],
)
def test_a_resource_is_a_string_an_object_with_id_or_a_lolpop_tuple(resource: object) -> None:
    assert to_resource(resource) == Resource("model-1")


@pytest.mark.parametrize(
    ("resource", "error"),
    [
        ("", ValidationError),
        ("x" * 251, ValidationError),
        ("a\x00b", ValidationError),
        (None, InvalidTypeError),
        (True, InvalidTypeError),
        (Run(None), InvalidTypeError),
        (3.5, InvalidTypeError),
    ],
)
def test_invalid_resources_are_rejected(resource: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        to_resource(resource)


# -- a rejected call writes nothing ------------------------------------------------------

calls = st.one_of(
    st.tuples(st.just("log_metric"), key_like, st.one_of(real_values, not_values)),
    st.tuples(
        st.just("log_metrics"),
        st.dictionaries(key_like, st.one_of(real_values, not_values), max_size=3),
        st.one_of(st.none(), key_like),
    ),
)


def snapshot(tracker: trackplug.Tracker) -> dict[str, object]:
    return {r: {k: tracker.history(r, k) for k in tracker.latest(r)} for r in tracker.resources()}


@settings(max_examples=150, deadline=None)
@given(st.lists(calls, max_size=8))
def test_a_rejected_call_leaves_the_tracker_unchanged(sequence: list[tuple[object, ...]]) -> None:
    with trackplug.connect("memory://") as tracker:
        for name, first, second in sequence:
            before = snapshot(tracker)
            try:
                if name == "log_metric":
                    tracker.log_metric("r", first, second)  # type: ignore[arg-type]
                else:
                    tracker.log_metrics("r", first, second)  # type: ignore[arg-type]
            except ValidationError:
                assert repr(snapshot(tracker)) == repr(before)  # repr: NaN-aware equality


def test_a_lone_surrogate_is_not_a_resource_id() -> None:
    with pytest.raises(ValidationError, match="surrogate"):
        to_resource("run-\ud800")


# -- the offenders of issue 12, each a trackplug error on every kind of store ----------------

OFFENDERS = {
    "unhashable key": (lambda t: t.log_metric("r", [], 1.0), InvalidTypeError),
    "None resource, get_metric": (lambda t: t.get_metric(None, "k"), InvalidTypeError),
    "None resource, history": (lambda t: t.history(None, "k"), InvalidTypeError),
    "None resource, latest": (lambda t: t.latest(None), InvalidTypeError),
    "None resource, perf": (lambda t: t.perf(None), InvalidTypeError),
    "a 5,000-digit resource": (lambda t: t.log_metric(10**5000, "k", 1.0), ValidationError),
    "a 5,000-digit value": (lambda t: t.log_metric("r", "k", 10**5000), ValidationError),
    "limit past 64 bits": (lambda t: t.best("k", limit=2**63), ValidationError),
    "limit 1.5": (lambda t: t.best("k", limit=1.5), InvalidTypeError),
    "prediction 10**400": (
        lambda t: t.log_prediction_metrics("j", [0.5, 10**400]),
        ValidationError,
    ),
    "a row of two": (lambda t: t.log_points("r", [("k", 1.0)]), InvalidTypeError),
    "a single point as rows": (
        lambda t: t.log_points("r", trackplug.MetricPoint("k", 1.0, 0, 0)),
        InvalidTypeError,
    ),
    "a 0-d array as rows": (lambda t: t.log_points("r", np.array(1.0)), InvalidTypeError),
    "key with a final newline": (lambda t: t.log_metric("r", "loss\n", 1.0), ValidationError),
    "step checked with no points": (
        lambda t: t.log_metrics("r", {}, step="abc"),  # type: ignore[arg-type]
        InvalidTypeError,
    ),
    "two names flatten to one key": (
        lambda t: t.log_metrics("r", {"train_f1": 0.1, "train": {"f1": 0.2}}),
        ValidationError,
    ),
    "longdouble overflowing a float": (
        lambda t: t.log_metric("r", "k", np.longdouble("1e4000")),
        ValidationError,
    ),
    "unknown problem type, no predictions": (
        lambda t: t.log_prediction_metrics("j", [], problem_type="foo"),  # type: ignore[arg-type]
        ValidationError,
    ),
    "a non-string split name": (
        lambda t: t.log_metrics("r", {5: {"f1": 0.2}}),  # type: ignore[dict-item]
        InvalidTypeError,
    ),
}


@pytest.mark.parametrize("url", ["memory://", "sqlite://"])
@pytest.mark.parametrize("offender", sorted(OFFENDERS))
def test_each_known_offender_is_refused_and_writes_nothing(offender: str, url: str) -> None:
    if url.startswith("sqlite"):
        pytest.importorskip("trackplug_sql")
    attempt, error = OFFENDERS[offender]
    with trackplug.connect(url) as tracker:
        tracker.log_metric("r", "k", 1.0)
        with pytest.raises(error):
            attempt(tracker)
        assert tracker.resources() == ["r"]
        assert tracker.latest("r") == {"k": 1.0}


def test_numpy_integers_are_limits_as_they_are_steps() -> None:
    with trackplug.connect("memory://") as tracker:
        for rid, value in [("a", 1.0), ("b", 2.0), ("c", 3.0)]:
            tracker.log_metric(rid, "f1", value, step=np.int64(1))
        assert tracker.best("f1", limit=np.int64(2)) == [("c", 3.0), ("b", 2.0)]


def test_an_infinity_given_as_such_is_kept_by_the_same_rule() -> None:
    assert check_value("k", np.longdouble("inf")) == math.inf
    assert check_value("k", -math.inf) == -math.inf
    with pytest.raises(ValidationError, match="too large"):
        check_value("k", Fraction(10**400, 3))


_NOT_IN_AN_ID = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


@given(
    st.one_of(
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=260),
        st.text(max_size=260),
    )
)
@settings(max_examples=500)
def test_a_new_string_id_is_taken_by_the_one_rule_printable_ascii_or_not(rid: str) -> None:
    """A new plain id takes a shortcut when it is ASCII (printable, tested in C), in
    ``to_resource`` and in ``log_metric``'s ``resource_id``; the rule is the same: 1 to 250
    characters, none a control character or a lone surrogate."""
    valid = 1 <= len(rid) <= 250 and not _NOT_IN_AN_ID.search(rid)
    for check in (lambda: to_resource(rid).id, lambda: resource_id(rid)):
        trackplug._validation._resources.pop(rid, None)
        trackplug._validation._valid_ids.discard(rid)
        if valid:
            assert check() == rid
            assert check() == rid  # and again, from the cache
        else:
            with pytest.raises(ValidationError):
                check()


@pytest.mark.parametrize(
    "resource", [("model-1", "run"), Resource("model-1"), SimpleNamespace(id="model-1"), 7]
)
def test_resource_id_takes_every_form_to_resource_takes(resource: object) -> None:
    assert resource_id(resource) == to_resource(resource).id
