"""Checked reading of model records: each violation is one ModelError naming file and field."""

import math

import numpy as np
import pytest
import torch

from balr.records import (
    ANY,
    check_finite_tensors,
    check_positive,
    check_same_size,
    check_shape,
    check_state_dict,
    check_tensor_names,
    check_unit_interval,
    read_bool,
    read_count,
    read_int,
    read_list,
    read_number,
    read_numbers,
    read_str,
    require,
)
from tests.conftest import model_error

SRC = "models/cal.json"


def one_line_error(call, *args, **kwargs) -> str:
    message = model_error(call, *args, **kwargs)
    assert message.startswith(f"{SRC}: ")
    return message


def test_read_number_accepts_ints_and_floats():
    record = {"slope": 2, "offset": -0.5, "p": 1.0}
    assert read_number(record, "slope", SRC, positive=True) == 2.0
    assert read_number(record, "offset", SRC) == -0.5
    assert read_number(record, "p", SRC, unit_interval=True) == 1.0
    assert read_int({"dim": 512.0}, "dim", SRC, positive=True) == 512


@pytest.mark.parametrize(
    ("value", "options", "words"),
    [
        ("abc", {}, "must be a number, got str 'abc'"),
        (None, {}, "must be a number, got null"),
        (True, {}, "must be a number, got bool True"),
        ([1.0], {}, "must be a number, got list [1.0]"),
        (math.nan, {}, "must be finite, got nan"),
        (-math.inf, {}, "must be finite, got -inf"),
        (-0.3, {"positive": True}, "must be positive, got -0.3"),
        (0, {"positive": True}, "must be positive, got 0"),
        (1.5, {"unit_interval": True}, "must be in [0, 1], got 1.5"),
        (2.5, {"integer": True}, "must be a whole number, got 2.5"),
    ],
)
def test_read_number_rejects(value, options, words):
    message = one_line_error(read_number, {"slope": value}, "slope", SRC, **options)
    assert message == f"{SRC}: field 'slope' {words}"


def test_missing_field_and_not_a_mapping():
    assert one_line_error(require, {"a": 1}, "slope", SRC) == f"{SRC}: field 'slope' is missing"
    message = one_line_error(read_number, [1, 2], "slope", SRC, field="params.slope")
    assert message == (
        f"{SRC}: field 'params.slope' cannot be read: the record is a list, not a mapping"
    )


def test_read_str_bool_list():
    assert read_str({"method": "linear"}, "method", SRC, choices=("linear", "pav")) == "linear"
    assert one_line_error(read_str, {"method": 3}, "method", SRC).endswith(
        "must be a string, got int 3"
    )
    assert one_line_error(read_str, {"method": "x"}, "method", SRC, choices=("linear", "pav")) == (
        f"{SRC}: field 'method' is 'x', expected one of linear, pav"
    )
    assert read_bool({"elub": False}, "elub", SRC) is False
    assert one_line_error(read_bool, {"elub": 1}, "elub", SRC).endswith(
        "must be true or false, got int 1"
    )
    assert read_list({"b": [1, 2]}, "b", SRC, length=2) == [1, 2]
    assert one_line_error(read_list, {"b": [1]}, "b", SRC, length=2).endswith(
        "must have 2 items, has 1"
    )
    assert one_line_error(read_list, {"b": "ab"}, "b", SRC).endswith("must be a list, got str 'ab'")


def test_read_numbers_names_the_bad_item():
    np.testing.assert_array_equal(read_numbers({"b": [-3.9, 3.9]}, "b", SRC), [-3.9, 3.9])
    assert one_line_error(read_numbers, {"b": [1.0, "x"]}, "b", SRC) == (
        f"{SRC}: field 'b[1]' must be a number, got str 'x'"
    )
    assert one_line_error(read_numbers, {"b": [1.0, math.nan]}, "b", SRC) == (
        f"{SRC}: field 'b[1]' must be finite, got nan"
    )


def test_check_shape():
    array = np.zeros((3, 2))
    assert check_shape(SRC, "p_", array, (3, ANY)) is array
    assert one_line_error(check_shape, SRC, "p_", array, (4, 2)) == (
        f"{SRC}: field 'p_' has shape (3, 2), expected (4, 2)"
    )
    assert one_line_error(check_shape, SRC, "p_", torch.zeros(3), (3, None)) == (
        f"{SRC}: field 'p_' has shape (3,), expected (3, *)"
    )


def test_check_same_size():
    assert check_same_size(SRC, {"p_": 4, "q_": 4}, "attributes") == 4
    assert one_line_error(check_same_size, SRC, {"p_": 4, "q_": 5}, "attributes") == (
        f"{SRC}: fields disagree on the attributes (p_ 4, q_ 5)"
    )


def test_probabilities_and_positivity():
    check_unit_interval(SRC, "p_", np.array([0.0, 0.5, 1.0]))  # exact 0 and 1 are probabilities
    assert one_line_error(check_unit_interval, SRC, "p_", np.array([0.2, 1.25])) == (
        f"{SRC}: field 'p_' must be probabilities in [0, 1], has values from 0.2 to 1.25"
    )
    check_positive(SRC, "alpha_", np.array([0.0, 2.0]), allow_zero=True)
    assert one_line_error(check_positive, SRC, "alpha_", np.array([0.0, 2.0])) == (
        f"{SRC}: field 'alpha_' must be positive, has a value 0"
    )


def test_check_finite_tensors_numpy_and_torch():
    good = {"w": np.ones((2, 2), dtype=np.float32), "n": np.arange(3), "h": torch.ones(2).half()}
    check_finite_tensors(SRC, good)
    bad = {"w": np.ones(2), "b": torch.tensor([1.0, float("nan"), float("inf")]).bfloat16()}
    assert one_line_error(check_finite_tensors, SRC, bad) == (
        f"{SRC}: field 'b' holds 2 non-finite value(s) (NaN or inf)"
    )


def test_check_tensor_names():
    check_tensor_names(SRC, {"a": 1, "b": 2}, ["a"])
    assert one_line_error(check_tensor_names, SRC, {"a": 1}, ["a", "b", "c"]) == (
        f"{SRC}: missing tensor(s) b, c"
    )


def test_check_state_dict():
    expected = {"w": (2, 3), "b": (2,)}
    check_state_dict(SRC, {"w": torch.zeros(2, 3), "b": torch.zeros(2)}, expected)
    assert one_line_error(check_state_dict, SRC, {"w": torch.zeros(2, 3)}, expected) == (
        f"{SRC}: missing tensor(s) b"
    )
    extra = {"w": torch.zeros(2, 3), "b": torch.zeros(2), "x": torch.zeros(1)}
    assert one_line_error(check_state_dict, SRC, extra, expected) == (
        f"{SRC}: unexpected tensor(s) x"
    )
    assert (
        one_line_error(
            check_state_dict, SRC, {"w": torch.zeros(3, 2), "b": torch.zeros(2)}, expected
        )
        == f"{SRC}: field 'w' has shape (3, 2), expected (2, 3)"
    )
    nan = {"w": torch.zeros(2, 3), "b": torch.tensor([0.0, float("nan")])}
    assert one_line_error(check_state_dict, SRC, nan, expected) == (
        f"{SRC}: field 'b' holds 1 non-finite value(s) (NaN or inf)"
    )


def test_read_count_from_numbers_and_one_element_tensors():
    assert read_count({"epoch": torch.tensor(3)}, "epoch", SRC) == 3
    assert read_count({"epoch": np.array([4.0])}, "epoch", SRC) == 4
    assert one_line_error(read_count, {"epoch": torch.tensor([1, 2])}, "epoch", SRC) == (
        f"{SRC}: field 'epoch' must be one number, has shape (2,)"
    )
    assert one_line_error(read_count, {"epoch": -2}, "epoch", SRC) == (
        f"{SRC}: field 'epoch' must not be negative, got -2"
    )
