"""The reference implementation's `{model_name}_{step}.chkpt` and `_config.pkl` files load with
restricted unpickling and give the embeddings of the same model in balr; code is refused.

The fake reference files are written from a balr model with the reference's module names,
settings Namespace and file formats (torch 1.5's legacy format and the zip format), as its
training script saves them (`scripts/utils.py` `chkptsave`, `scripts/train.py`).
"""

import argparse
import math
import os
import pickle

import numpy as np
import pytest
import torch

from balr.audio import load_audio
from balr.doublemha import SpeakerClassifier, embed_file
from balr.doublemha.config import ModelSettings
from balr.doublemha.reference import read_reference_config, reference_state_dict
from balr.doublemha.trainer import DoubleMHATrainer
from balr.embeddings import build_embedding_model
from balr.errors import ModelError
from tests.conftest import EXAMPLES
from tests.doublemha.test_training import (
    tiny_config,
    training_set,
    validation_pairs,
    write_lists,
)

CLIP = EXAMPLES / "audio" / "id01184" / "00133.flac"
ARCHITECTURE = dict(
    front_end="VGG3L", kernel_size=8, heads_number=2, embedding_size=8, pooling_method="DoubleMHA"
)


def reference_namespace(**values) -> argparse.Namespace:
    """The settings the reference's train.py pickles: its argparse options plus num_spkrs."""
    options = dict(
        train_data_dir="feats",
        valid_data_dir="feats",
        train_labels_path="labels/train.ndx",
        data_mode="normal",
        valid_clients="labels/clients.ndx",
        valid_impostors="labels/impostors.ndx",
        out_dir="models/model1",
        model_name="CNN_VGG3L_3.5_128batchSize_0.0001lr_0.001weightDecay_8kernel_8embSize",
        window_size=3.5,
        randomSlicing=False,
        normalization="cmn",
        mask_prob=0.3,
        scalingFactor=30.0,
        marginFactor=0.4,
        annealing=False,
        optimizer="Adam",
        learning_rate=0.0001,
        weight_decay=0.001,
        batch_size=64,
        gradientAccumulation=2,
        max_epochs=1000000,
        early_stopping=25,
        print_every=1000,
        requeue=False,
        validate_every=10000,
        num_workers=2,
        num_spkrs=3,
        **ARCHITECTURE,
    )
    options.update(values)
    return argparse.Namespace(**options)


def reference_state(model: SpeakerClassifier) -> dict[str, torch.Tensor]:
    """balr's weights under the reference's names and shapes (VGG3L + DoubleMHA): its MHA
    queries are (head size, heads) and its scores are divided by sqrt(heads); its AM-softmax
    weight is (embedding, speakers); b1 and b3 exist but its forward never uses them."""
    own = model.state_dict()
    heads = model.settings.heads_number
    state = {}
    for layer in range(3):
        for conv in (1, 2):
            for param in ("weight", "bias"):
                key = f"front_end.blocks.{layer}.conv{conv}.{param}"
                state[f"front_end.conv{layer + 1}{conv}.{param}"] = own[key]
    pooling = model.settings.pooling_method
    if pooling == "DoubleMHA":
        queries = own["pooling.mha.queries"].t() * math.sqrt(heads)
        state["poolingLayer.utteranceAttention.query"] = queries
        state["poolingLayer.headsAttention.att"] = own["pooling.head_query"][:, None]
    elif pooling == "MHA":
        state["poolingLayer.query"] = own["pooling.queries"].t() * math.sqrt(heads)
    else:
        state["poolingLayer.att"] = own["pooling.query"][:, None]
    for reference, balr in (("fc1", "0"), ("fc2", "2"), ("b2", "4")):
        for key, value in own.items():
            if key.startswith(f"embedding_head.{balr}."):
                state[f"{reference}.{key.rsplit('.', 1)[1]}"] = value
    for unused in ("b1", "b3"):
        norm = torch.nn.BatchNorm1d(model.settings.embedding_size)
        for key, value in norm.state_dict().items():
            state[f"{unused}.{key}"] = value + 5.0  # must not matter
    state["preLayer.weight"] = own["classifier_layer.weight"]
    state["preLayer.bias"] = own["classifier_layer.bias"]
    state["predictionLayer.W"] = own["prediction_layer.weight"].t().contiguous()
    return {key: value.clone() for key, value in state.items()}


def trained_looking_model(**architecture) -> SpeakerClassifier:
    """A balr model with random weights and BatchNorm statistics (not the identity)."""
    torch.manual_seed(0)
    model = SpeakerClassifier(ModelSettings(num_spkrs=3, **{**ARCHITECTURE, **architecture}))
    norm = model.embedding_head[4]
    norm.running_mean.uniform_(-0.5, 0.5)
    norm.running_var.uniform_(0.5, 2.0)
    norm.num_batches_tracked.fill_(7)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.2, 0.2)
    return model.eval()


def write_reference_run(directory, model, zip_format: bool, step: int = 120):
    """`{model_name}_config.pkl` and `{model_name}_{step}.chkpt` as the reference writes them."""
    settings = reference_namespace(**{key: getattr(model.settings, key) for key in ARCHITECTURE})
    name = settings.model_name
    config = directory / f"{name}_config.pkl"
    with open(config, "wb") as handle:
        pickle.dump(settings, handle, protocol=pickle.HIGHEST_PROTOCOL)
    settings.feature_size = 80  # set by the reference model's constructor before saving
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    checkpoint = directory / f"{name}_{step}.chkpt"
    payload = {
        "model": reference_state(model),
        "optimizer": optimizer.state_dict(),
        "settings": settings,
        "epoch": 4,
        "step": step,
    }
    torch.save(payload, checkpoint, _use_new_zipfile_serialization=zip_format)
    return config, checkpoint


@pytest.mark.parametrize("zip_format", [False, True], ids=["torch1.5-legacy", "zip"])
@pytest.mark.difference("DMHA-embedding-head", "DMHA-checkpoint-read", "DMHA-state-dict-names")
def test_reference_checkpoint_embeds_like_the_same_balr_model(tmp_path, zip_format):
    model = trained_looking_model()
    config, checkpoint = write_reference_run(tmp_path, model, zip_format)
    if not zip_format:
        assert not checkpoint.read_bytes().startswith(b"PK")  # torch 1.5's legacy format
    loaded = SpeakerClassifier.load(checkpoint)
    assert loaded.settings == model.settings
    assert loaded.settings.feature_recipe == "reference" and loaded.settings.n_mels == 80
    expected = embed_file(model, CLIP)
    np.testing.assert_allclose(embed_file(loaded, CLIP), expected, rtol=1e-5, atol=1e-6)
    settings = read_reference_config(config)
    assert settings["kernel_size"] == 8 and settings["num_spkrs"] == 3
    # `balr extract embeddings.model=doublemha` uses the same loader
    embedder = build_embedding_model(
        type("Cfg", (), {"name": "doublemha", "checkpoint_path": str(checkpoint)})()
    )
    wave = torch.from_numpy(load_audio(CLIP))[None]
    vector = embedder.embed(wave, torch.tensor([wave.shape[1]]))[0].numpy()
    np.testing.assert_allclose(vector, expected, rtol=1e-5, atol=1e-6)
    # the reference's output directory resolves to its newest checkpoint (highest step)
    write_reference_run(tmp_path, trained_looking_model(kernel_size=16), zip_format, step=40)
    np.testing.assert_allclose(
        embed_file(SpeakerClassifier.load(tmp_path), CLIP), expected, rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("pooling", ["MHA", "Attention"])
def test_the_other_poolings_load_too(tmp_path, pooling):
    model = trained_looking_model(pooling_method=pooling)
    _, checkpoint = write_reference_run(tmp_path, model, zip_format=True)
    loaded = SpeakerClassifier.load(checkpoint)
    assert loaded.settings.pooling_method == pooling
    np.testing.assert_allclose(
        embed_file(loaded, CLIP), embed_file(model, CLIP), rtol=1e-5, atol=1e-6
    )


@pytest.mark.difference("DMHA-mha-scale")
def test_pooling_weights_follow_the_reference_formula():
    """The reference's multi-head scores are `key . query / sqrt(H)`, softmax over time, its
    head scores `context . att`, softmax over heads: written out here on random frames with
    the reference weights, they equal balr's pooling with the converted weights."""
    model = trained_looking_model()
    state = reference_state(model)
    loaded = SpeakerClassifier(model.settings)
    loaded.load_state_dict(reference_state_dict(state, "fake.chkpt"))
    loaded.eval()
    heads = model.settings.heads_number
    frames = torch.randn(2, 13, loaded.front_end.output_dim)
    query = state["poolingLayer.utteranceAttention.query"]  # (head size, H)
    split = frames.reshape(2, 13, heads, -1)
    scores = torch.einsum("bthe,eh->bth", split, query) / math.sqrt(query.shape[1])
    contexts = torch.einsum("bth,bthe->bhe", torch.softmax(scores, dim=1), split)
    head_scores = contexts @ state["poolingLayer.headsAttention.att"][:, 0]
    expected = torch.einsum("bh,bhe->be", torch.softmax(head_scores, dim=1), contexts)
    torch.testing.assert_close(loaded.pooling(frames).vector, expected, rtol=1e-5, atol=1e-6)


class RunsCode:
    """Unpickling it would call os.system: a file of that kind must never be loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("zip_format", [False, True], ids=["torch1.5-legacy", "zip"])
def test_code_in_a_reference_checkpoint_is_refused_without_running(tmp_path, zip_format):
    marker = tmp_path / "ran"
    payload = {"model": {}, "settings": RunsCode(marker), "epoch": 0, "step": 0}
    path = tmp_path / f"CNN_{int(zip_format)}.chkpt"
    torch.save(payload, path, _use_new_zipfile_serialization=zip_format)
    with pytest.raises(ModelError) as error:
        SpeakerClassifier.load(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message and "system" in message
    assert "weights_only=False" not in message
    assert not marker.exists()


@pytest.mark.difference("DMHA-config-read")
def test_code_in_a_reference_config_is_refused_without_running(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "CNN_config.pkl"
    path.write_bytes(pickle.dumps(RunsCode(marker), protocol=pickle.HIGHEST_PROTOCOL))
    with pytest.raises(ModelError) as error:
        read_reference_config(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message
    assert f"{os.system.__module__}.system" in message
    assert not marker.exists()


def test_settings_that_are_not_plain_values_or_weights_of_another_model_are_refused(tmp_path):
    model = trained_looking_model()
    odd = reference_namespace(kernel_size=torch.tensor(8))
    path = tmp_path / "odd.chkpt"
    torch.save({"model": reference_state(model), "settings": odd}, path)
    with pytest.raises(ModelError, match="odd.chkpt: setting 'kernel_size' is a Tensor"):
        SpeakerClassifier.load(path)

    lacking = reference_namespace()
    del lacking.heads_number
    torch.save({"model": reference_state(model), "settings": lacking}, path)
    with pytest.raises(ModelError, match="odd.chkpt: the reference settings lack heads_number"):
        SpeakerClassifier.load(path)

    renamed = {**reference_state(model), "encoder.layer.weight": torch.zeros(2)}
    torch.save({"model": renamed, "settings": reference_namespace()}, path)
    with pytest.raises(ModelError, match="weight 'encoder.layer.weight' is not one of the ref"):
        SpeakerClassifier.load(path)

    wrong_size = reference_namespace(embedding_size=16)  # weights of an 8-dim model
    torch.save({"model": reference_state(model), "settings": wrong_size}, path)
    with pytest.raises(
        ModelError,
        match=r"odd.chkpt: field 'embedding_head.0.weight' has shape \(8, 40\), "
        r"expected \(16, 40\)$",
    ):
        SpeakerClassifier.load(path)


BUFFER_NAMES = ("running_mean", "running_var", "num_batches_tracked")


def reference_optimizer_run(directory, model: SpeakerClassifier, lr: float = 5e-5):
    """A reference `.chkpt` whose Adam state is numbered in the reference's module order (the
    unused b1/b3 included) after two steps with fixed gradients, as its requeue reads it."""
    state = reference_state(model)
    names = [key for key in state if key.rsplit(".", 1)[-1] not in BUFFER_NAMES]
    params = [torch.nn.Parameter(state[name].clone()) for name in names]
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=0.001)
    generator = torch.Generator().manual_seed(1)
    for _ in range(2):
        for param in params:
            param.grad = torch.randn(param.shape, generator=generator)
        optimizer.step()
    settings = reference_namespace(
        **{key: getattr(model.settings, key) for key in ARCHITECTURE},
        num_spkrs=model.settings.num_spkrs,
        out_dir=str(directory),
        requeue=True,
    )
    settings.feature_size = 80
    payload = {
        "model": state,
        "optimizer": optimizer.state_dict(),
        "settings": settings,
        "epoch": 4,
        "step": 120,
    }
    torch.save(payload, directory / f"{settings.model_name}_120.chkpt")
    return dict(zip(names, range(len(names)), strict=True)), optimizer.state_dict()


def test_requeue_continues_a_reference_run_with_its_optimizer_state(tmp_path):
    write_lists(tmp_path)
    out = tmp_path / "models" / "model1"
    out.mkdir(parents=True)
    config = tiny_config(tmp_path, out_dir=str(out), requeue=True, max_steps=122)
    train, valid = training_set(config), validation_pairs(config)
    torch.manual_seed(3)
    model = SpeakerClassifier(config.model_settings(train.num_speakers))
    index_of, saved = reference_optimizer_run(out, model)

    trainer = DoubleMHATrainer(config, out)
    trainer.build(train.num_speakers)
    assert (trainer.epoch, trainer.step, trainer.best_eer) == (5, 120, 0.5)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(trainer.model.state_dict()[name], tensor)
    resumed = trainer.optimizer.state_dict()
    assert resumed["param_groups"][0]["lr"] == 5e-5  # the reference's, not the config's 1e-3
    balr_index = {name: i for i, (name, _) in enumerate(trainer.model.named_parameters())}
    assert set(resumed["state"]) == set(balr_index.values())  # b1/b3 dropped, all others set

    def moments(reference_name):
        return saved["state"][index_of[reference_name]]

    weight = resumed["state"][balr_index["prediction_layer.weight"]]
    torch.testing.assert_close(weight["exp_avg"], moments("predictionLayer.W")["exp_avg"].t())
    assert float(weight["step"]) == 2.0
    queries = resumed["state"][balr_index["pooling.mha.queries"]]
    reference_queries = moments("poolingLayer.utteranceAttention.query")
    heads = model.settings.heads_number
    torch.testing.assert_close(queries["exp_avg"], reference_queries["exp_avg"].t() * heads**0.5)
    torch.testing.assert_close(queries["exp_avg_sq"], reference_queries["exp_avg_sq"].t() * heads)
    head_query = resumed["state"][balr_index["pooling.head_query"]]
    torch.testing.assert_close(
        head_query["exp_avg_sq"], moments("poolingLayer.headsAttention.att")["exp_avg_sq"][:, 0]
    )
    trainer.fit(train, valid)  # two more steps from the reference's state
    assert trainer.summary()["steps"] == 122


def test_requeue_refuses_a_reference_run_of_another_architecture(tmp_path):
    write_lists(tmp_path)
    out = tmp_path / "run"
    out.mkdir()
    config = tiny_config(tmp_path, out_dir=str(out), requeue=True)
    wider = {**config.model_settings(4).to_dict(), "embedding_size": 16}
    model = SpeakerClassifier(ModelSettings(**wider))
    reference_optimizer_run(out, model)
    trainer = DoubleMHATrainer(config, out)
    with pytest.raises(ModelError, match=r"_120\.chkpt: this reference checkpoint does not fit"):
        trainer.build(4)
