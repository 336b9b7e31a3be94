"""The public strategies generate what they promise, checked against trackplug's validator."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from trackplug_contract import strategies as tps

from trackplug import ValidationError
from trackplug._validation import check_key, check_step, check_value


@settings(max_examples=200)
@given(tps.keys())
def test_keys_are_valid(key: str) -> None:
    assert check_key(key) == key


@settings(max_examples=200)
@given(tps.invalid_keys())
def test_invalid_keys_are_refused(key: object) -> None:
    with pytest.raises(ValidationError):
        check_key(key)


@settings(max_examples=300)
@given(tps.keys() | tps.invalid_keys())
def test_is_valid_key_agrees_with_the_validator(key: object) -> None:
    try:
        check_key(key)
    except ValidationError:
        assert not tps.is_valid_key(key)
    else:
        assert tps.is_valid_key(key)


@given(tps.steps())
def test_steps_are_64_bit(step: int) -> None:
    assert check_step("k", step) == step


@given(tps.invalid_steps())
def test_invalid_steps_are_refused(step: object) -> None:
    with pytest.raises(ValidationError):
        check_step("k", step)


@given(tps.invalid_values())
def test_invalid_values_are_refused(value: object) -> None:
    with pytest.raises(ValidationError):
        check_value("k", value)


def test_special_values_cover_the_hard_cases() -> None:
    values = tps.SPECIAL_VALUES
    assert any(math.isnan(v) for v in values)
    assert math.inf in values
    assert -math.inf in values
    assert any(v == 0.0 and math.copysign(1.0, v) < 0 for v in values)
