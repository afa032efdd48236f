"""Checkpoint round trip, resume from the latest checkpoint, CSV inputs and the CLI commands."""

import json
import pickle

import numpy as np
import pytest
import torch

from balr.doublemha.checkpoint import load_checkpoint, save_checkpoint
from balr.doublemha.config import ModelSettings, TrainConfig
from balr.doublemha.data import training_set, validation_pairs
from balr.doublemha.features import FeatureLoader
from balr.doublemha.model import SpeakerClassifier
from balr.doublemha.trainer import DoubleMHATrainer, embed_items, validation_eer
from balr.errors import ModelError
from balr.evaluation.metrics import eer
from tests.conftest import EXAMPLES

CLIPS = EXAMPLES / "audio"

TINY = dict(front_end="VGG3L", kernel_size=8, heads_number=2, embedding_size=8)


def write_lists(root):
    """4 speakers x 3 recordings of (80-120, 80) features with a speaker-specific offset."""
    rng = np.random.default_rng(0)
    lines, names = [], []
    for spk in range(4):
        for utt in range(3):
            rel = f"spk{spk}/utt{utt}"
            path = root / f"{rel}.npy"
            path.parent.mkdir(parents=True, exist_ok=True)
            feats = rng.normal(spk, 1.0, (80 + 20 * utt, 80)).astype(np.float32)
            np.save(path, feats)
            lines.append(f"{rel} {spk} -1")
            names.append(rel)
    (root / "train.ndx").write_text("\n".join(lines) + "\n")
    (root / "clients.ndx").write_text("spk0/utt0 spk0/utt1\nspk1/utt0 spk1/utt2\n")
    (root / "impostors.ndx").write_text("spk0/utt0 spk1/utt1\nspk2/utt0 spk3/utt2\n")


def tiny_config(root, **kw) -> TrainConfig:
    values = dict(
        train_labels_path=str(root / "train.ndx"),
        train_data_dir=str(root),
        valid_clients=str(root / "clients.ndx"),
        valid_impostors=str(root / "impostors.ndx"),
        valid_data_dir=str(root),
        window_size=0.5,
        batch_size=4,
        gradientAccumulation=1,
        num_workers=0,
        validate_every=1,
        print_every=1,
        learning_rate=1e-3,
        **TINY,
    )
    values.update(kw)
    return TrainConfig(**values)


def stepped_model() -> tuple[ModelSettings, SpeakerClassifier, torch.optim.Optimizer]:
    """A tiny 3-speaker model (seed 0) and its Adam optimiser after one step."""
    torch.manual_seed(0)
    settings = ModelSettings(num_spkrs=3, **TINY)
    model = SpeakerClassifier(settings)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(2, 40, 80), torch.tensor([0, 2])).sum().backward()
    optimizer.step()
    return settings, model, optimizer


def test_checkpoint_round_trip(tmp_path):
    settings, model, optimizer = stepped_model()
    save_checkpoint(
        tmp_path / "best.pt", model, optimizer, settings.to_dict(), epoch=3, step=17, best_eer=0.25
    )
    payload = load_checkpoint(tmp_path / "best.pt")
    assert (payload["epoch"], payload["step"], payload["state"]["best_eer"]) == (3, 17, 0.25)
    assert payload["settings"] == settings.to_dict()
    assert json.loads((tmp_path / "settings.json").read_text())["kernel_size"] == 8
    restored = SpeakerClassifier.load(tmp_path)  # a directory resolves to its checkpoint
    assert restored.settings == settings and not restored.training
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(restored.state_dict()[name], tensor)
    fresh = torch.optim.Adam(SpeakerClassifier(settings).parameters(), lr=0.01)
    fresh.load_state_dict(payload["optimizer"])
    assert fresh.state_dict()["state"][0]["step"] == 1


class Payload:
    """An arbitrary class: unpickling it would run code of the file's choosing."""


def test_pickled_objects_are_refused(tmp_path):
    with open(tmp_path / "evil.pt", "wb") as handle:
        pickle.dump({"model": Payload()}, handle)
    with pytest.raises(ModelError, match="evil.pt: not a readable extractor checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")


def test_model_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = SpeakerClassifier(ModelSettings(num_spkrs=3, **TINY)).eval()
    model.save(tmp_path / "model.pt")
    restored = SpeakerClassifier.load(tmp_path / "model.pt")
    assert restored.settings == model.settings
    feats = torch.randn(2, 50, 80)
    torch.testing.assert_close(restored.embed(feats), model.embed(feats), rtol=0, atol=0)
    payload = load_checkpoint(tmp_path / "model.pt")  # the trainer's file format
    assert (payload["epoch"], payload["step"], payload["optimizer"]) == (0, 0, {})


def test_training_saves_best_and_resumes_from_last(tmp_path):
    write_lists(tmp_path)
    out = tmp_path / "run"
    cfg = tiny_config(tmp_path, max_steps=2, out_dir=str(out))
    train, valid = training_set(cfg), validation_pairs(cfg)
    assert train.num_speakers == 4 and len(train.items) == 12
    assert valid.labels.tolist() == [1, 1, 0, 0]
    trainer = DoubleMHATrainer(cfg, out)
    history = trainer.fit(train, valid)
    assert trainer.summary()["steps"] == 2 and len(history) == 2
    last = load_checkpoint(out / "last.pt")
    assert last["step"] == 2 and (out / "best.pt").is_file()
    resumed = DoubleMHATrainer(
        tiny_config(tmp_path, max_steps=4, out_dir=str(out), requeue=True), out
    )
    resumed.build(train.num_speakers)
    assert (resumed.step, resumed.epoch) == (2, last["epoch"])
    for name, tensor in last["model"].items():
        torch.testing.assert_close(resumed.model.state_dict()[name], tensor)
    resumed.fit(train, valid)
    assert resumed.summary()["steps"] == 4
    assert load_checkpoint(out / "last.pt")["step"] == 4


def test_validation_embeds_in_eval_mode_and_restores_training_mode(tmp_path):
    write_lists(tmp_path)
    cfg = tiny_config(tmp_path)
    train, valid = training_set(cfg), validation_pairs(cfg)
    torch.manual_seed(0)
    model = SpeakerClassifier(cfg.model_settings(train.num_speakers)).train()
    norm = model.embedding_head[-1]
    running = norm.running_mean.clone()
    loader = FeatureLoader(cfg.normalization)
    value = validation_eer(model, valid, loader)
    assert model.training  # back in training mode for the next step
    # A training-mode forward moves the BatchNorm running mean (momentum 0.1): it is untouched.
    torch.testing.assert_close(norm.running_mean, running, rtol=0, atol=0)
    # the EER of balr.evaluation of the pairs' cosine scores
    emb = torch.nn.functional.normalize(embed_items(model.eval(), valid.items, loader), dim=1)
    scores = (emb[valid.first] * emb[valid.second]).sum(1).numpy()
    assert value == eer(scores, valid.labels)[0]


@pytest.mark.difference("DMHA-early-stopping", "DMHA-lr-halving")
def test_learning_rate_halves_and_training_stops_early(tmp_path):
    write_lists(tmp_path)
    cfg = tiny_config(
        tmp_path, max_steps=50, lr_patience=2, early_stopping=3, out_dir=str(tmp_path / "run")
    )
    trainer = DoubleMHATrainer(cfg, tmp_path / "run")
    trainer.best_eer = -1.0  # nothing can improve on it: every validation is a miss
    trainer.fit(training_set(cfg), validation_pairs(cfg))
    # the reference's schedule, checked at each epoch end (12 recordings / batch 4 = 3 steps,
    # one validation a step): after epoch 1, 3 misses: not > 3, and (3 + 1) % 2 == 0 halves
    # the lr; after epoch 2, 6 misses > 3: stop
    assert trainer.summary()["steps"] == 6 and trainer.stopping == 6
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)


@pytest.mark.difference("DMHA-optimizer", "DMHA-early-stopping")
def test_rmsprop_keeps_its_learning_rate_and_minus_one_stops_after_one_epoch(tmp_path):
    write_lists(tmp_path)
    cfg = tiny_config(
        tmp_path, optimizer="RMSprop", lr_patience=1, early_stopping=-1, out_dir=str(tmp_path)
    )
    trainer = DoubleMHATrainer(cfg, tmp_path)
    trainer.fit(training_set(cfg), validation_pairs(cfg))
    assert trainer.summary()["epochs"] == 1 and trainer.summary()["steps"] == 3
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)


def test_dataset_csv_input_with_generated_pairs():
    cfg = TrainConfig(train_csv=str(CLIPS / "metadata.csv"), valid_csv=str(CLIPS / "metadata.csv"))
    train, valid = training_set(cfg), validation_pairs(cfg)
    assert train.num_speakers == 4
    assert [i.label for i in train.items] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert train.items[0].audio_path == CLIPS / "id00906" / "00014.flac"
    # the 4 same-speaker pairs and as many different-speaker ones
    assert int(valid.labels.sum()) == 4 and len(valid.labels) == 8


@pytest.mark.difference("DMHA-dashed-flags")
def test_dashed_arguments_become_overrides():
    from balr.cli.extractor import dashed_overrides

    args = [
        "--train_data_dir",
        "feats",
        "--annealing",
        "--window_size=2.0",
        "batch_size=8",
        "--randomSlicing",
    ]
    assert dashed_overrides(args) == [
        "train_data_dir=feats",
        "annealing=true",
        "window_size=2.0",
        "batch_size=8",
        "randomSlicing=true",
    ]
