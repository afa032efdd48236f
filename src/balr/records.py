"""Checked reading of loaded model records: JSON fields and tensor dicts.

A model file is read once (JSON, safetensors, a weights-only torch state dict) into plain
Python values or arrays; these helpers check each field as it is taken out and raise a
one-line `ModelError` naming the file and the field, so no malformed file reaches the
numbers (or a traceback). `field` names may be dotted paths (`params.slope`) for messages.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from balr.errors import ModelError

#: a dimension that may take any size in `check_shape`
ANY = None
#: the file a record was read from, as messages name it
Source = str | os.PathLike


def fail(source: Source, field: str, problem: str) -> ModelError:
    """The error for `field` of `source`: `"<file>: field '<field>' <problem>"`, one line."""
    text = f"{source}: field '{field}' {problem}"
    return ModelError(" ".join(text.split()))


def require(record: Any, key: str, source: Source, field: str | None = None) -> Any:
    """`record[key]`; ModelError when `record` is not a mapping or lacks `key`."""
    field = field or key
    if not isinstance(record, Mapping):
        raise fail(source, field, f"cannot be read: the record is a {_kind(record)}, not a mapping")
    if key not in record:
        raise fail(source, field, "is missing")
    return record[key]


def read_number(
    record: Any,
    key: str,
    source: Source,
    *,
    field: str | None = None,
    positive: bool = False,
    unit_interval: bool = False,
    integer: bool = False,
) -> float:
    """A finite number (not a bool, not a string), optionally > 0, in [0, 1] or whole."""
    field = field or key
    return check_number(
        require(record, key, source, field),
        source,
        field,
        positive=positive,
        unit_interval=unit_interval,
        integer=integer,
    )


def check_number(
    value: Any,
    source: Source,
    field: str,
    *,
    positive: bool = False,
    unit_interval: bool = False,
    integer: bool = False,
) -> float:
    """`value` as a float after the checks of `read_number`."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise fail(source, field, f"must be a number, got {_shown(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise fail(source, field, f"must be finite, got {number}")
    if integer and number != int(number):
        raise fail(source, field, f"must be a whole number, got {number:g}")
    if positive and number <= 0:
        raise fail(source, field, f"must be positive, got {number:g}")
    if unit_interval and not 0.0 <= number <= 1.0:
        raise fail(source, field, f"must be in [0, 1], got {number:g}")
    return number


def read_int(record: Any, key: str, source: Source, **checks: Any) -> int:
    """A whole number (e.g. a dimension): `read_number` with `integer=True` and its other
    keywords (`positive`, `field`)."""
    return int(read_number(record, key, source, integer=True, **checks))


def read_typed(
    record: Any,
    key: str,
    source: Source,
    kinds: type | tuple[type, ...],
    what: str,
    *,
    field: str | None = None,
) -> Any:
    """`record[key]` when it is an instance of `kinds`; else ModelError "must be `what`"."""
    field = field or key
    value = require(record, key, source, field)
    if not isinstance(value, kinds):
        raise fail(source, field, f"must be {what}, got {_shown(value)}")
    return value


def read_str(
    record: Any,
    key: str,
    source: Source,
    *,
    field: str | None = None,
    choices: Sequence[str] | None = None,
) -> str:
    """A string, optionally one of `choices`."""
    value = read_typed(record, key, source, str, "a string", field=field)
    if choices is not None and value not in choices:
        raise fail(source, field or key, f"is '{value}', expected one of {', '.join(choices)}")
    return value


def read_bool(record: Any, key: str, source: Source, *, field: str | None = None) -> bool:
    """A JSON boolean (true/false; not 0/1, not a string)."""
    return read_typed(record, key, source, bool, "true or false", field=field)


def read_list(
    record: Any,
    key: str,
    source: Source,
    *,
    field: str | None = None,
    length: int | None = None,
) -> list:
    """A list (JSON array), optionally of exactly `length` items."""
    value = read_typed(record, key, source, list | tuple, "a list", field=field)
    if length is not None and len(value) != length:
        raise fail(source, field or key, f"must have {length} items, has {len(value)}")
    return list(value)


def read_numbers(record: Any, key: str, source: Source, **list_checks: Any) -> np.ndarray:
    """A list of finite numbers as a float64 array: `read_list` and its keywords (`field`,
    `length`: exactly that many items)."""
    values = read_list(record, key, source, **list_checks)
    field = list_checks.get("field") or key
    for index, value in enumerate(values):
        check_number(value, source, f"{field}[{index}]")
    return np.asarray(values, dtype=np.float64)


def check_shape(source: Source, field: str, array: Any, shape: Sequence[int | None]) -> Any:
    """`array` when its shape is `shape` (`ANY`/None: any size); ModelError otherwise."""
    actual = tuple(int(n) for n in getattr(array, "shape", np.shape(array)))
    expected = tuple(shape)
    if len(actual) != len(expected) or any(
        want is not None and want != got for want, got in zip(expected, actual, strict=False)
    ):
        dims = ["*" if n is None else str(n) for n in expected]
        wanted = f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"
        raise fail(source, field, f"has shape {actual}, expected {wanted}")
    return array


def read_count(record: Any, key: str, source: Source, *, field: str | None = None) -> int:
    """A whole number >= 0 (an epoch, a step), also held as a one-element tensor or array."""
    field = field or key
    value = require(record, key, source, field)
    if hasattr(value, "shape") and hasattr(value, "item"):
        if int(np.prod(value.shape)) != 1:
            raise fail(source, field, f"must be one number, has shape {tuple(value.shape)}")
        value = value.item()
    count = check_number(value, source, field, integer=True)
    if count < 0:
        raise fail(source, field, f"must not be negative, got {count:g}")
    return int(count)


def check_optimizer_state(source: Source, optimizer: Any, field: str) -> dict:
    """A torch optimiser's state dict: `param_groups`, and `state` mapping each parameter to
    its moments, every moment finite."""
    require(optimizer, "param_groups", source, f"{field}.param_groups")
    moments = require(optimizer, "state", source, f"{field}.state")
    entries = moments.values() if isinstance(moments, Mapping) else [None]
    if not all(isinstance(entry, Mapping) for entry in entries):
        raise fail(source, f"{field}.state", "must map each parameter to its moments")
    for index, entry in moments.items():
        for name, value in entry.items():
            if hasattr(value, "shape"):
                check_finite(source, f"{field}.state.{index}.{name}", value)
    return dict(optimizer)


def check_same_size(source: Source, sizes: Mapping[str, int], what: str) -> int:
    """The common value of `sizes` (field -> its size); ModelError naming them when they differ."""
    distinct = set(sizes.values())
    if len(distinct) > 1:
        listed = ", ".join(f"{name} {size}" for name, size in sizes.items())
        raise ModelError(f"{source}: fields disagree on the {what} ({listed})")
    return distinct.pop()


def check_finite(source: Source, field: str, array: Any) -> Any:
    """`array` when every value is finite (NaN/inf: ModelError naming the field)."""
    values = _as_numpy(array)
    if values.dtype.kind in "fc" and not np.all(np.isfinite(values)):
        bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
        raise fail(source, field, f"holds {bad} non-finite value(s) (NaN or inf)")
    return array


def check_unit_interval(source: Source, field: str, array: Any) -> Any:
    """`array` when every value is finite and in [0, 1] (probabilities)."""
    check_finite(source, field, array)
    values = _as_numpy(array)
    if values.size and (values.min() < 0 or values.max() > 1):
        raise fail(
            source,
            field,
            f"must be probabilities in [0, 1], "
            f"has values from {values.min():g} to {values.max():g}",
        )
    return array


def check_positive(source: Source, field: str, array: Any, allow_zero: bool = False) -> Any:
    """`array` when every value is finite and > 0 (>= 0 with `allow_zero`)."""
    check_finite(source, field, array)
    values = _as_numpy(array)
    if values.size and (values.min() < 0 or (not allow_zero and values.min() == 0)):
        sign = "non-negative" if allow_zero else "positive"
        raise fail(source, field, f"must be {sign}, has a value {values.min():g}")
    return array


def check_finite_tensors(path: str | os.PathLike, tensors: Mapping[str, Any]) -> None:
    """ModelError naming the first tensor of `tensors` (numpy or torch) holding NaN or inf."""
    for name, tensor in tensors.items():
        check_finite(path, name, tensor)


def check_tensor_names(
    path: str | os.PathLike, tensors: Mapping[str, Any], expected: Sequence[str]
) -> None:
    """ModelError listing the tensors of `expected` missing from `tensors`."""
    missing = [name for name in expected if name not in tensors]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        shown = ", ".join(missing[:5]) + more
        raise ModelError(f"{path}: missing tensor(s) {shown}")


def check_state_dict(
    path: str | os.PathLike, state: Mapping[str, Any], expected: Mapping[str, Sequence[int]]
) -> None:
    """ModelError in one line when `state` (name -> tensor) lacks a tensor of `expected`
    (name -> shape, e.g. a model's own `state_dict()` shapes), has one more, or one of
    another shape; then when a tensor holds NaN or inf."""
    check_tensor_names(path, state, list(expected))
    unexpected = [name for name in state if name not in expected]
    if unexpected:
        more = f" and {len(unexpected) - 5} more" if len(unexpected) > 5 else ""
        raise ModelError(f"{path}: unexpected tensor(s) {', '.join(unexpected[:5])}{more}")
    for name, shape in expected.items():
        check_shape(path, name, state[name], tuple(shape))
    check_finite_tensors(path, state)


def _as_numpy(array: Any) -> np.ndarray:
    """A numpy view of a numpy array, torch tensor (any dtype) or nested list."""
    if hasattr(array, "detach"):  # a torch tensor: bfloat16/half have no numpy dtype
        array = array.detach().cpu()
        if array.is_floating_point():
            array = array.double()
        return array.numpy()
    return np.asarray(array)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _shown(value: Any) -> str:
    """A short description of a wrong value for a message: its kind and, if short, itself."""
    if value is None:
        return "null"
    text = repr(value)
    return f"{_kind(value)} {text}" if len(text) <= 40 else _kind(value)
