"""Checkpoint round trip, resume from the latest checkpoint, CSV inputs and the CLI commands."""

import json
import pickle

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from balr.errors import ModelError
from balr.extractor.checkpoint import load_checkpoint, load_extractor, save_checkpoint
from balr.extractor.data import FeatureLoader
from balr.extractor.model import ModelSettings, SpeakerClassifier
from balr.extractor.trainer import (
    ExtractorTrainConfig,
    Trainer,
    model_settings,
    prepare_data,
    validation_eer,
)

TINY = dict(front_end="VGG3L", kernel_size=8, heads_number=2, embedding_size=8)


def write_seed_lists(root):
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


def tiny_config(root, **kw) -> ExtractorTrainConfig:
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
    return ExtractorTrainConfig(**values)


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    settings = ModelSettings(num_spkrs=3, **TINY)
    model = SpeakerClassifier(settings)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(2, 40, 80), torch.tensor([0, 2])).sum().backward()
    optimizer.step()
    save_checkpoint(
        tmp_path / "best.pt", model, optimizer, settings.to_dict(), epoch=3, step=17, best_eer=0.25
    )
    payload = load_checkpoint(tmp_path / "best.pt")
    assert (payload["epoch"], payload["step"], payload["state"]["best_eer"]) == (3, 17, 0.25)
    assert payload["settings"] == settings.to_dict()
    assert json.loads((tmp_path / "settings.json").read_text())["kernel_size"] == 8
    restored, _ = load_extractor(tmp_path)  # a directory resolves to its checkpoint
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


def test_training_saves_best_and_resumes_from_last(tmp_path):
    write_seed_lists(tmp_path)
    out = tmp_path / "run"
    cfg = tiny_config(tmp_path, max_steps=2, out_dir=str(out))
    data = prepare_data(cfg)
    assert data.num_speakers == 4 and len(data.train) == 12
    assert data.pair_labels.tolist() == [1, 1, 0, 0]
    summary = Trainer(cfg, data, out).fit()
    assert summary["steps"] == 2 and len(summary["validations"]) == 2
    last = load_checkpoint(out / "last.pt")
    assert last["step"] == 2 and (out / "best.pt").is_file()
    resumed = Trainer(tiny_config(tmp_path, max_steps=4, out_dir=str(out), requeue=True), data, out)
    assert (resumed.step, resumed.epoch) == (2, last["epoch"])
    for name, tensor in last["model"].items():
        torch.testing.assert_close(resumed.model.state_dict()[name], tensor)
    assert resumed.fit()["steps"] == 4
    assert load_checkpoint(out / "last.pt")["step"] == 4


def test_validation_embeds_in_eval_mode_and_restores_training_mode(tmp_path):
    write_seed_lists(tmp_path)
    cfg = tiny_config(tmp_path)
    data = prepare_data(cfg)
    torch.manual_seed(0)
    model = SpeakerClassifier(model_settings(cfg, data.num_speakers)).train()
    norm = model.embedding_head[-1]
    running = norm.running_mean.clone()
    loader = FeatureLoader(cfg.normalization)
    validation_eer(model, data, loader)
    assert model.training  # back in training mode for the next step
    # A training-mode forward moves the BatchNorm running mean (momentum 0.1): it is untouched.
    torch.testing.assert_close(norm.running_mean, running, rtol=0, atol=0)


def test_learning_rate_halves_and_training_stops_early(tmp_path):
    write_seed_lists(tmp_path)
    cfg = tiny_config(
        tmp_path, max_steps=50, lr_patience=2, early_stopping=3, out_dir=str(tmp_path / "run")
    )
    trainer = Trainer(cfg, prepare_data(cfg), tmp_path / "run")
    trainer.best_eer = -1.0  # nothing can improve on it: every validation is a miss
    summary = trainer.fit()
    assert summary["steps"] == 3  # stopped after 3 validations without improvement
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)  # halved at miss 2


def test_dataset_csv_input_with_generated_pairs(tmp_path, librispeech):
    files = sorted(librispeech.glob("*.flac"))[:3]
    rows = ["id,audio,speaker"]
    for f in files:
        wave, rate = sf.read(f, frames=16000 * 2)
        for k in range(2):
            name = f"{f.stem}_{k}"
            sf.write(tmp_path / f"{name}.wav", wave[k * 16000 : (k + 1) * 16000], rate)
            rows.append(f"{name},{name}.wav,{f.stem.split('-')[0]}")
    (tmp_path / "set.csv").write_text("\n".join(rows) + "\n")
    cfg = ExtractorTrainConfig(
        train_csv=str(tmp_path / "set.csv"), valid_csv=str(tmp_path / "set.csv")
    )
    data = prepare_data(cfg)
    assert data.num_speakers == 3 and sorted(i.label for i in data.train) == [0, 0, 1, 1, 2, 2]
    assert int(data.pair_labels.sum()) == 3 and len(data.pair_labels) == 6


@pytest.fixture
def tiny_checkpoint(tmp_path):
    torch.manual_seed(0)
    settings = ModelSettings(num_spkrs=3, pooling_method="DoubleMHA", **TINY)
    save_checkpoint(
        tmp_path / "best.pt", SpeakerClassifier(settings).eval(), None, settings.to_dict(), 0, 0
    )
    return tmp_path / "best.pt"


def test_cli_embed_attention_and_embedding_model(tmp_path, tiny_checkpoint, librispeech):
    from balr.cli.main import app
    from balr.embeddings import build_embedding_model
    from balr.extractor import embed_file, load_extractor

    audio = librispeech / "1034-121119-0000.flac"
    runner = CliRunner()
    result = runner.invoke(
        app, ["extractor", "embed", "--audio", str(audio), "--checkpoint", str(tiny_checkpoint)]
    )
    assert result.exit_code == 0, result.output
    printed = np.array(result.output.split(), dtype=np.float32)
    expected = embed_file(load_extractor(tiny_checkpoint)[0], audio)
    np.testing.assert_allclose(printed, expected, atol=1e-5)
    png = tmp_path / "att.png"
    result = runner.invoke(
        app,
        [
            "extractor",
            "attention",
            str(audio),
            "--checkpoint",
            str(tiny_checkpoint),
            "--out",
            str(png),
        ],
    )
    assert result.exit_code == 0, result.output
    import matplotlib.image

    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 300 and image.std() > 0.05
    model = build_embedding_model(
        type("Cfg", (), {"name": "doublemha", "checkpoint_path": str(tiny_checkpoint)})()
    )
    from balr.audio import load_audio

    wave = torch.from_numpy(load_audio(audio))
    batch = torch.zeros(2, wave.shape[0])
    batch[0], batch[1, :32000] = wave, wave[:32000]
    vectors = model.embed(batch, torch.tensor([wave.shape[0], 32000]))
    assert vectors.shape == (2, 8)
    np.testing.assert_allclose(vectors[0].numpy(), expected, atol=1e-4)


def test_seed_style_arguments_become_overrides():
    from balr.cli.extractor import seed_style_overrides

    args = [
        "--train_data_dir",
        "feats",
        "--annealing",
        "--window_size=2.0",
        "batch_size=8",
        "--randomSlicing",
    ]
    assert seed_style_overrides(args) == [
        "train_data_dir=feats",
        "annealing=true",
        "window_size=2.0",
        "batch_size=8",
        "randomSlicing=true",
    ]
