"""Tests for execution.algos.params: strategy parameter schemas, coercion and validation."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from execution.algos.params import ParamError, ParamSpec, validate_params
from execution.algos.registry import strategy_class, strategy_names

RATE = ParamSpec("participation_rate", "float", 0.1, "Share of volume.", "", 0.005, 0.5)
INTERVAL = ParamSpec(
    "decision_interval_s", "float", 30.0, "Time between decisions.", "s", 1.0, 600.0
)
TICKS = ParamSpec("max_take_ticks", "int", 2, "How far to walk.", "ticks", 0, 50)
IMPROVE = ParamSpec("improve_wide_spread", "bool", True, "Post inside the spread.")
URGENCY = ParamSpec(
    "urgency", "choice", "medium", "How hard to push.", choices=("low", "medium", "high")
)
SCHEMA = (RATE, INTERVAL, TICKS, IMPROVE, URGENCY)


def param_error(spec: ParamSpec, value: Any) -> ParamError:
    with pytest.raises(ParamError) as info:
        spec.coerce(value)
    return info.value


# -- coercion -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [(0.25, 0.25), ("0.25", 0.25), (Decimal("0.3"), 0.3), (" 0.1 ", 0.1)]
)
def test_float(value: Any, expected: float) -> None:
    got = RATE.coerce(value)
    assert isinstance(got, float)
    assert got == expected


def test_float_from_int() -> None:
    got = INTERVAL.coerce(45)
    assert isinstance(got, float)
    assert got == 45.0


@pytest.mark.parametrize(("value", "expected"), [(3, 3), ("7", 7), (5.0, 5), ("4.0", 4)])
def test_int(value: Any, expected: int) -> None:
    got = TICKS.coerce(value)
    assert type(got) is int
    assert got == expected


@pytest.mark.parametrize("value", [2.5, "2.5", 0.1])
def test_int_rejects_fractions(value: Any) -> None:
    err = param_error(TICKS, value)
    assert err.key == "max_take_ticks"
    assert "whole number" in err.message


@pytest.mark.parametrize("value", ["1e1", "1E1", "2e0"])
def test_int_rejects_an_exponent_as_an_orders_size_does(value: Any) -> None:
    """A trial: a minimum child of "1e3" was taken as 1,000 beside a quantity that refused
    the same writing. A float may have one (a risk aversion of 1e-6)."""
    err = param_error(TICKS, value)
    assert err.message == f"must be a whole number written with the digits 0-9, got {value!r}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("False", False),
        ("YES", True),
        ("no", False),
        ("1", True),
        ("0", False),
    ],
)
def test_bool(value: Any, expected: bool) -> None:
    assert IMPROVE.coerce(value) is expected


@pytest.mark.parametrize("value", [1, 0, 1.0, "maybe", "", None, "on"])
def test_bool_rejects_numbers_and_other_words(value: Any) -> None:
    err = param_error(IMPROVE, value)
    assert err.key == "improve_wide_spread"
    assert "true or false" in err.message


@pytest.mark.parametrize("spec", [RATE, TICKS])
@pytest.mark.parametrize("value", [True, False])
def test_numbers_reject_bools(spec: ParamSpec, value: bool) -> None:
    # bool is an int in Python; a checkbox's True must not become 1 share or 1.0 rate.
    assert param_error(spec, value).key == spec.name


@pytest.mark.parametrize("spec", [RATE, TICKS])
@pytest.mark.parametrize("value", [None, "abc", "", [1], {"a": 1}])
def test_numbers_reject_non_numbers(spec: ParamSpec, value: Any) -> None:
    err = param_error(spec, value)
    assert err.key == spec.name
    assert "number" in err.message


@pytest.mark.parametrize("spec", [RATE, TICKS, ParamSpec("x", "float", 0.0, "Unbounded.")])
@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, "nan", "inf", "-Infinity", Decimal("NaN")]
)
def test_nan_and_infinity_rejected(spec: ParamSpec, value: Any) -> None:
    err = param_error(spec, value)
    assert err.key == spec.name
    assert "finite" in err.message


def test_choice() -> None:
    assert URGENCY.coerce("high") == "high"
    err = param_error(URGENCY, "HIGH")
    assert err.key == "urgency"
    assert "low, medium, high" in err.message


# -- bounds ---------------------------------------------------------------------------------


def test_bounds_are_inclusive() -> None:
    assert RATE.coerce(0.005) == 0.005
    assert RATE.coerce(0.5) == 0.5
    assert TICKS.coerce(0) == 0
    assert TICKS.coerce(50) == 50


@pytest.mark.parametrize(
    ("spec", "value", "words"),
    [
        (RATE, 0.001, ["at least 0.005"]),
        (RATE, 0.6, ["at most 0.5"]),
        (INTERVAL, 0.5, ["at least 1 s"]),
        (INTERVAL, 601, ["at most 600 s"]),
        (TICKS, -1, ["at least 0 ticks"]),
        (TICKS, 51, ["at most 50 ticks"]),
    ],
)
def test_bounds_message_names_the_parameter_and_the_bound(
    spec: ParamSpec, value: Any, words: list[str]
) -> None:
    err = param_error(spec, value)
    assert err.key == spec.name
    assert str(err).startswith(f"{spec.name}: ")
    for w in words:
        assert w in err.message
    assert isinstance(err, ValueError)  # callers that only know ValueError still catch it


@given(st.floats(min_value=0.005, max_value=0.5))
def test_any_float_within_bounds_is_kept(x: float) -> None:
    assert RATE.coerce(x) == x
    assert RATE.coerce(repr(x)) == x


@given(st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not 0.005 <= x <= 0.5))
def test_any_float_out_of_bounds_is_refused(x: float) -> None:
    assert param_error(RATE, x).key == "participation_rate"


@given(st.integers(min_value=-1000, max_value=1000))
def test_int_bounds(n: int) -> None:
    if 0 <= n <= 50:
        assert TICKS.coerce(n) == n
        assert TICKS.coerce(str(n)) == n
    else:
        assert param_error(TICKS, n).key == "max_take_ticks"


# -- validate_params ------------------------------------------------------------------------


def test_defaults_filled() -> None:
    assert validate_params(SCHEMA, {}) == {
        "participation_rate": 0.1,
        "decision_interval_s": 30.0,
        "max_take_ticks": 2,
        "improve_wide_spread": True,
        "urgency": "medium",
    }


def test_given_values_coerced_and_the_rest_defaulted() -> None:
    got = validate_params(SCHEMA, {"max_take_ticks": "5", "improve_wide_spread": "false"})
    assert got["max_take_ticks"] == 5
    assert got["improve_wide_spread"] is False
    assert got["participation_rate"] == 0.1


def test_unknown_parameter_rejected() -> None:
    with pytest.raises(ParamError) as info:
        validate_params(SCHEMA, {"participation_rate": 0.2, "max_tick": 3})
    assert info.value.key == "max_tick"
    assert "unknown parameter" in info.value.message
    assert "max_take_ticks" in info.value.message  # says what the strategy does take


def test_bad_value_reported_under_its_own_name() -> None:
    with pytest.raises(ParamError) as info:
        validate_params(SCHEMA, {"participation_rate": 0.2, "decision_interval_s": 0})
    assert info.value.key == "decision_interval_s"


def test_validate_does_not_change_its_input() -> None:
    raw = {"max_take_ticks": "5"}
    validate_params(SCHEMA, raw)
    assert raw == {"max_take_ticks": "5"}


# -- every registered strategy --------------------------------------------------------------

NAMES = strategy_names()


def test_the_four_strategies_are_registered() -> None:
    assert {"twap", "vwap", "pov", "is"} <= set(NAMES)


def test_unknown_strategy() -> None:
    with pytest.raises(ParamError) as info:
        strategy_class("nope")
    assert info.value.key == "strategy"
    assert "twap" in info.value.message


@pytest.mark.parametrize("name", NAMES)
def test_schema_defaults_pass_their_own_coerce(name: str) -> None:
    for spec in strategy_class(name).schema():
        assert spec.coerce(spec.default) == spec.default, spec.name
        if spec.type == "choice":
            assert spec.default in spec.choices


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_well_formed(name: str) -> None:
    schema = strategy_class(name).schema()
    names = [s.name for s in schema]
    assert len(names) == len(set(names)), "duplicate parameter"
    for spec in schema:
        assert spec.help.strip(), spec.name
        assert spec.type in ("float", "int", "bool", "choice", "str"), spec.name
        if spec.minimum is not None and spec.maximum is not None:
            assert spec.minimum <= spec.maximum, spec.name


@pytest.mark.parametrize("name", NAMES)
def test_schema_defaults_validate(name: str) -> None:
    schema = strategy_class(name).schema()
    assert validate_params(schema, {}) == {s.name: s.default for s in schema}


@pytest.mark.parametrize("name", NAMES)
def test_describe_is_json(name: str) -> None:
    for spec in strategy_class(name).schema():
        described = spec.describe()
        assert json.loads(json.dumps(described)) == described
        assert described["name"] == spec.name
        assert described["help"] == spec.help


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_has_a_label_for_people(name: str) -> None:
    from execution.algos.params import LABELS

    for spec in strategy_class(name).schema():
        # A new parameter needs its own label, not its API name with spaces.
        assert spec.name in LABELS, spec.name
        assert spec.describe()["label"] == LABELS[spec.name] != spec.name
        assert "_" not in spec.label and spec.label[0].isupper()


def test_describe_of_a_choice_is_json() -> None:
    described = URGENCY.describe()
    assert json.loads(json.dumps(described)) == described
    assert described["choices"] == ["low", "medium", "high"]
