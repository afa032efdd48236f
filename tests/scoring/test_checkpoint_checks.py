"""Scorer checkpoints are checked on load: one ModelError line naming the file and field."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from balr.errors import ModelError
from balr.scoring import Scorer

ALPHA = np.array([[0.5, 1.5], [2.0, 0.25], [1.0, 1.0]])
TYPICALITY = {"typicality_": np.array([0.3, 0.6, 0.1]), "dropout_": np.array([0.2, 0.5, 0.0])}


def write(tmp_path, name: str, state: dict, params: object = None) -> str:
    path = tmp_path / "scorer.safetensors"
    params = (
        json.dumps(params if params is not None else {}) if not isinstance(params, str) else params
    )
    save_file(
        {k: np.asarray(v) for k, v in state.items()},
        str(path),
        metadata={"scorer": name, "params": params},
    )
    return str(path)


def load_error(path: str) -> str:
    with pytest.raises(ModelError) as caught:
        Scorer.load(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


def test_valid_checkpoints_load_with_their_values(tmp_path):
    scorer = Scorer.load(write(tmp_path, "beta", {"alpha_": ALPHA}, {"tol": 1e-5}))
    np.testing.assert_array_equal(scorer.alpha_, ALPHA)
    assert scorer.tol == 1e-5
    speech = Scorer.load(write(tmp_path, "speech", TYPICALITY, {"drop_in": 0.1}))
    np.testing.assert_array_equal(speech.dropout_, [0.2, 0.5, 0.0])


@pytest.mark.parametrize(
    ("name", "state", "words"),
    [
        ("beta", {"alpha_": [[0.5, np.nan], [1.0, 1.0]]}, "field 'alpha_' holds 1 non-finite"),
        (
            "beta",
            {"alpha_": [[0.5, -1.0], [1.0, 1.0]]},
            "field 'alpha_' must be positive, has a value -1",
        ),
        ("beta", {"alpha_": [[0.5, 0.0]]}, "field 'alpha_' must be positive, has a value 0"),
        ("beta", {"alpha_": [0.5, 1.0]}, "field 'alpha_' has shape (2,), expected (*, *)"),
        ("beta", {"alpha_": [[0.5], [1.0]]}, "field 'alpha_' must have at least 2 states"),
        (
            "speech",
            {**TYPICALITY, "dropout_": np.array([0.2, 1.5, 0.0])},
            "field 'dropout_' must be probabilities in [0, 1], has values from 0 to 1.5",
        ),
        (
            "dna",
            {**TYPICALITY, "typicality_": np.array([0.3, 0.6])},
            "fields disagree on the number of attributes (typicality_ 2, dropout_ 3)",
        ),
        ("maxllr", {"f_": [0.5], "p_": [np.inf], "q_": [0.1]}, "field 'p_' holds 1 non-finite"),
        ("maxllr", {"f_": [0.5], "p_": [0.9], "q_": [-0.1]}, "field 'q_' must be probabilities"),
    ],
)
def test_bad_state_is_one_line(tmp_path, name, state, words):
    assert load_error(write(tmp_path, name, state)).startswith(words)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"tol": "abc"}, "field 'params.tol' must be a number, got str 'abc'"),
        ({"tol": None}, "field 'params.tol' must be a number, got null"),
        ('{"tol": NaN}', "field 'params.tol' must be finite, got nan"),
        ({"n_iterations": 2.5}, "field 'params.n_iterations' must be a whole number, got 2.5"),
        ({"tolerance": 1e-3}, "field 'params.tolerance' is not a setting of the 'beta' scorer"),
        ("[1, 2]", "field 'params' must be a mapping, got list"),
        ("{tol", "field 'params' is not JSON"),
    ],
)
def test_bad_params_are_one_line(tmp_path, params, words):
    assert load_error(write(tmp_path, "beta", {"alpha_": ALPHA}, params)).startswith(words)


def test_out_of_range_setting_is_one_line(tmp_path):
    message = load_error(write(tmp_path, "speech", TYPICALITY, {"drop_in": 1.5}))
    assert message == "field 'params' is not valid (drop_in must be in [0, 1), got 1.5)"


def test_missing_header_fields(tmp_path):
    path = tmp_path / "scorer.safetensors"
    save_file({"alpha_": ALPHA}, str(path), metadata={"params": "{}"})
    assert load_error(str(path)) == "field 'scorer' is missing"


def test_reference_maxllr_with_exact_zero_and_one_probabilities_loads(tmp_path):
    """The reference's `scorer.pt` may hold p or q exactly 0 or 1: still probabilities."""
    path = tmp_path / "scorer.pt"
    torch.save(
        {
            k: torch.tensor(v)
            for k, v in {"f": [0.5, 1.0], "p": [1.0, 0.9], "q": [0.0, 0.1]}.items()
        },
        path,
    )
    scorer = Scorer.load(path)
    np.testing.assert_allclose(scorer.p_, [1.0, 0.9], rtol=1e-7)
    np.testing.assert_allclose(scorer.q_, [0.0, 0.1], rtol=1e-7)


def test_reference_beta_with_nan_is_one_line(tmp_path):
    path = tmp_path / "scorer.pt"
    torch.save({"alpha": torch.tensor([[1.0, float("nan")]])}, path)
    assert load_error(str(path)) == "field 'alpha_' holds 1 non-finite value(s) (NaN or inf)"


def test_balr_pt_with_a_non_tensor_state(tmp_path):
    path = tmp_path / "scorer.pt"
    torch.save({"scorer": "beta", "params": {}, "state": [1, 2]}, path)
    assert load_error(str(path)) == "field 'state' must be a mapping of tensors"
