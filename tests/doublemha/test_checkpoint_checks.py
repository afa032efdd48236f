"""DoubleMHA checkpoints (balr's `.pt`, the reference's `.chkpt`) are checked on load: a
missing or renamed weight, a wrong shape, NaN, a setting of the wrong type is one line."""

from __future__ import annotations

import json

import pytest
import torch

from balr.doublemha.model import SpeakerClassifier
from balr.errors import ModelError
from tests.doublemha.test_reference_checkpoint import (
    reference_namespace,
    reference_state,
    trained_looking_model,
)


@pytest.fixture(scope="module")
def model() -> SpeakerClassifier:
    return trained_looking_model()


def saved_payload(model: SpeakerClassifier, tmp_path) -> tuple:
    path = tmp_path / "best.pt"
    model.save(path)
    return path, torch.load(path, weights_only=True)


def load_error(path) -> str:
    with pytest.raises(ModelError) as caught:
        SpeakerClassifier.load(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


def test_a_good_checkpoint_loads_the_same_weights(model, tmp_path):
    path, _ = saved_payload(model, tmp_path)
    loaded = SpeakerClassifier.load(path)
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value)


def first_weight(payload: dict) -> str:
    return next(name for name in payload["model"] if name.endswith("weight"))


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        ("nan", "field '{w}' holds 1 non-finite value(s) (NaN or inf)"),
        ("missing", "missing tensor(s) {w}"),
        ("renamed", "missing tensor(s) {w}"),
        ("shape", "field '{w}' has shape"),
        ("no model", "field 'model' is missing"),
        ("model list", "field 'model' must be a state dict of tensors"),
    ],
)
def test_damaged_weights_are_one_line(model, tmp_path, damage, words):
    path, payload = saved_payload(model, tmp_path)
    weight = first_weight(payload)
    if damage == "nan":
        payload["model"][weight].view(-1)[0] = float("nan")
    elif damage == "missing":
        del payload["model"][weight]
    elif damage == "renamed":
        payload["model"][weight + "_renamed"] = payload["model"].pop(weight)
    elif damage == "shape":
        payload["model"][weight] = payload["model"][weight][:1]
    elif damage == "no model":
        del payload["model"]
    else:
        payload["model"] = [1, 2]
    torch.save(payload, path)
    assert load_error(path).startswith(words.format(w=weight))


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"embedding_size": "abc"}, "field 'settings.embedding_size' must be a number, got str"),
        ({"embedding_size": -8}, "field 'settings.embedding_size' must be positive, got -8"),
        ({"heads_number": 2.5}, "field 'settings.heads_number' must be a whole number, got 2.5"),
        ({"annealing": "yes"}, "field 'settings.annealing' must be true or false, got str"),
        ({"front_end": None}, "field 'settings.front_end' must be a string, got null"),
        ({"mask_prob": float("nan")}, "field 'settings.mask_prob' must be finite, got nan"),
        ({"front_end": "VGG9L"}, "field 'settings' is not valid (front_end 'VGG9L'"),
    ],
)
def test_bad_settings_are_one_line(model, tmp_path, settings, words):
    path, payload = saved_payload(model, tmp_path)
    payload["settings"] = json.dumps({**json.loads(payload["settings"]), **settings})
    torch.save(payload, path)
    assert load_error(path).startswith(words)


def test_settings_that_are_not_json_are_one_line(model, tmp_path):
    path, payload = saved_payload(model, tmp_path)
    payload["settings"] = "{kernel_size"
    torch.save(payload, path)
    assert load_error(path).startswith("field 'settings' is not JSON")


def test_reference_chkpt_with_nan_weight_is_one_line(model, tmp_path):
    state = reference_state(model)
    name = next(iter(state))
    state[name].view(-1)[0] = float("inf")
    path = tmp_path / "model_7.chkpt"
    torch.save({"model": state, "settings": reference_namespace()}, path)
    assert "holds 1 non-finite value(s) (NaN or inf)" in load_error(path)
