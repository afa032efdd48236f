"""DoubleMHA checkpoints (balr's `.pt`, the reference's `.chkpt`) are checked on load: a
missing or renamed weight, a wrong shape, NaN, a setting of the wrong type is one line."""

from __future__ import annotations

import json

import pytest
import torch

from balr.doublemha.checkpoint import load_checkpoint, restore_training, save_checkpoint
from balr.doublemha.model import SpeakerClassifier
from balr.errors import ModelError
from tests.conftest import model_error
from tests.doublemha.test_reference_checkpoint import (
    reference_namespace,
    reference_state,
    trained_looking_model,
)
from tests.doublemha.test_training import stepped_model


@pytest.fixture(scope="module")
def model() -> SpeakerClassifier:
    return trained_looking_model()


def saved_payload(model: SpeakerClassifier, tmp_path) -> tuple:
    path = tmp_path / "best.pt"
    model.save(path)
    return path, torch.load(path, weights_only=True)


def load_error(path) -> str:
    message = model_error(SpeakerClassifier.load, path)
    assert message.startswith(f"{path}: ")
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


def requeue_parts(tmp_path):
    """A model, its optimiser after one step, and the checkpoint `last.pt` of both."""
    settings, model, optimizer = stepped_model()
    path = tmp_path / "last.pt"
    save_checkpoint(path, model, optimizer, settings.to_dict(), 3, 17, best_eer=0.25, stopping=1)
    fresh = SpeakerClassifier(settings)
    return path, fresh, torch.optim.Adam(fresh.parameters(), lr=0.01)


def test_requeue_restores_a_good_checkpoint(tmp_path):
    path, model, optimizer = requeue_parts(tmp_path)
    assert restore_training(path, load_checkpoint(path), model, optimizer) == (3, 17, 0.25, 1)
    assert optimizer.state_dict()["state"][0]["step"] == 1


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda p: p.update(epoch=-1), "field 'epoch' must not be negative, got -1"),
        (lambda p: p.update(step="17"), "field 'step' must be a number, got str '17'"),
        (lambda p: p.pop("optimizer"), "field 'optimizer' is missing"),
        (
            lambda p: p["state"].update(best_eer=float("nan")),
            "field 'state.best_eer' must be finite",
        ),
        (lambda p: p["state"].update(best_eer=3.0), "field 'state.best_eer' must be in [0, 1]"),
        (
            lambda p: p["state"].update(stopping=1.5),
            "field 'state.stopping' must be a whole number",
        ),
        (lambda p: p.update(state=[1]), "field 'state' must be a mapping, got list"),
        (
            lambda p: next(iter(p["optimizer"]["state"].values()))["exp_avg"].fill_(float("inf")),
            "field 'optimizer.state.0.exp_avg' holds",
        ),
        (
            lambda p: p["optimizer"]["param_groups"][0]["params"].pop(),
            "field 'optimizer' does not fit this model",
        ),
    ],
    ids=[
        "epoch",
        "step",
        "no-optimizer",
        "nan-eer",
        "eer-range",
        "stopping",
        "state",
        "inf-moment",
        "param-groups",
    ],
)
def test_requeue_with_a_tampered_checkpoint_is_one_line(tmp_path, change, words):
    path, model, optimizer = requeue_parts(tmp_path)
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch.save(payload, path)
    with pytest.raises(ModelError) as caught:
        restore_training(path, load_checkpoint(path), model, optimizer)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: {words}"), message
