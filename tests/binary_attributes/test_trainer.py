"""Training on speaker-clustered embeddings: loss goes down, files are written, resume works.

The data are synthetic stand-ins for real speaker embeddings (no embedding model is shipped
yet): unit-norm speaker centroids in 256 dims plus Gaussian noise (conftest).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from balr.binary_attributes.config import train_config
from balr.binary_attributes.model import BinaryAttributeEncoder
from balr.binary_attributes.trainer import BAETrainer
from balr.config import load_config
from balr.data.labelled import LabelledEmbeddings
from balr.errors import ConfigError, DataError, ModelError

from .conftest import clustered_embeddings

SMALL = [
    "data.N_classes_per_batch=8",
    "data.M_samples_per_class=4",
    "trainer.progress=false",
    "trainer.log_period=1",
    "trainer.step_log_period=2",
    "trainer.val_period=1",
    "trainer.seed=0",
    "trainer.losses=[mse, triplet, sparsity]",
]


@pytest.fixture(scope="module")
def data() -> tuple[LabelledEmbeddings, LabelledEmbeddings]:
    train = LabelledEmbeddings(*clustered_embeddings(48, 8, seed=0))
    valid = LabelledEmbeddings(*clustered_embeddings(16, 6, seed=1))
    return train, valid


def fit(out_dir: Path, data, *overrides: str) -> BAETrainer:
    trainer = BAETrainer(train_config(SMALL + list(overrides)), out_dir)
    trainer.fit(*data)
    return trainer


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory, data):
    out_dir = tmp_path_factory.mktemp("bae") / "run"
    return fit(out_dir, data, "trainer.epochs=2", "trainer.save_period=1")


@pytest.mark.slow
def test_two_epochs_lower_the_loss(two_epochs):
    history = two_epochs.history
    assert [r["epoch"] for r in history] == [1, 2]
    assert history[1]["train"]["total"] < history[0]["train"]["total"]
    assert history[1]["val"]["total"] < history[0]["val"]["total"]
    assert set(history[0]["train"]) == {"total", "mse", "triplet", "sparsity"}


def test_checkpoints_config_and_history_are_written(two_epochs, data):
    out_dir = two_epochs.out_dir
    for name in ("last", "best", "epoch1", "epoch2"):
        assert (out_dir / "weights" / f"{name}.safetensors").is_file(), name
    meta = json.loads((out_dir / "weights" / "last.json").read_text())
    assert meta["epoch"] == 2 and meta["model"] == {"input_dim": 256, "latent_dim": 512}
    cfg = load_config(out_dir / "config.yaml")
    assert cfg.trainer.epochs == 2 and cfg.data.M_samples_per_class == 4
    assert len(json.loads((out_dir / "history.json").read_text())) == 2
    reloaded = BinaryAttributeEncoder.load(out_dir / "weights" / "last.safetensors")
    val_x = data[1].embeddings
    assert np.array_equal(reloaded.binarize(val_x), two_epochs.model.binarize(val_x))


@pytest.mark.difference("BA-tensorboard-tags")
def test_tensorboard_events_have_train_and_val_losses(two_epochs):
    events = EventAccumulator(str(two_epochs.out_dir))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    expected = {f"{s}/{n}" for s in ("train", "val") for n in ("total", "mse", "sparsity")}
    assert expected | {"step/total"} <= tags
    train_total = [e.value for e in events.Scalars("train/total")]
    assert train_total == pytest.approx([r["train"]["total"] for r in two_epochs.history])


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path, data, two_epochs):
    uninterrupted = fit(tmp_path / "straight", data, "trainer.epochs=3")
    resumed_dir = tmp_path / "resumed"
    fit(resumed_dir, data, "trainer.epochs=2")
    resumed = fit(resumed_dir, data, "trainer.epochs=3", "trainer.resume=true")
    assert resumed.start_epoch == 2
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    assert resumed.history[2]["train"]["total"] == pytest.approx(
        uninterrupted.history[2]["train"]["total"], rel=1e-5
    )
    meta = json.loads((resumed_dir / "weights" / "last.json").read_text())
    assert meta["epoch"] == 3


def test_resume_without_checkpoint_is_an_error(tmp_path, data):
    with pytest.raises(ModelError, match="nothing to resume"):
        fit(tmp_path / "empty", data, "trainer.epochs=1", "trainer.resume=true")


def test_arcface_weights_are_optimised_and_skipped_in_validation(tmp_path, data):
    trainer = fit(tmp_path / "arc", data, "trainer.epochs=1", "trainer/losses=[mse, arcface]")
    weights = trainer.losses.losses["arcface"].loss.W
    state = trainer.optimizer.state[weights]
    assert state["exp_avg"].abs().sum().item() > 0  # Adam has updated the class weights
    assert set(trainer.history[0]["train"]) == {"total", "mse", "arcface"}
    assert set(trainer.history[0]["val"]) == {"total", "mse"}


def test_too_few_speakers_for_one_batch(tmp_path):
    few = LabelledEmbeddings(*clustered_embeddings(3, 4, dim=16))
    with pytest.raises(DataError, match="3 speakers cannot fill one batch of N=8"):
        fit(tmp_path / "few", (few, None), "trainer.epochs=1")


def test_wrong_model_input_dim(tmp_path, data):

    with pytest.raises(ConfigError, match="model.input_dim=192"):
        fit(tmp_path / "dim", data, "trainer.epochs=1", "model.input_dim=192")


@pytest.mark.difference("BA-seed")
def test_seeded_runs_are_identical(tmp_path, data):
    a = fit(tmp_path / "a", data, "trainer.epochs=1", "trainer.val_period=0")
    b = fit(tmp_path / "b", data, "trainer.epochs=1", "trainer.val_period=0")
    assert [r["train"] for r in a.history] == [r["train"] for r in b.history]
    assert "val" not in a.history[0]
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.difference("BA-data-batch-size")
def test_reference_data_keys_are_accepted(tmp_path, data):
    """The reference library's `data.*` keys: plain batches with `data.sampler=null`."""
    trainer = fit(
        tmp_path / "plain", data, "trainer.epochs=1", "data.sampler=null", "data.batch_size=64",
        "data.num_workers=4", "data.shuffle=false", "data.normalize_mean=true",
        "data.normalize_var=false", "trainer.losses=[mse, triplet]",
    )  # fmt: skip
    assert [r["epoch"] for r in trainer.history] == [1]
    assert set(trainer.history[0]["train"]) == {"total", "mse", "triplet"}
    nxm = train_config(SMALL + ["data.batch_size=32"])  # 8 x 4: the same batches
    assert nxm.data.batch_size == 32


@pytest.mark.difference("BA-data-sampler")
def test_plain_batches_cover_every_sample_and_conflicts_are_errors(tmp_path, data):
    from balr.binary_attributes.samplers import PlainBatchSampler

    sampler = PlainBatchSampler(np.repeat(np.arange(5), 3), 4, shuffle=False, drop_last=False)
    assert list(sampler) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14]]
    with pytest.raises(ConfigError, match=r"data.batch_size=100 but .* 8 x 4 = 32"):
        fit(tmp_path / "a", data, "trainer.epochs=1", "data.batch_size=100")
    with pytest.raises(ConfigError, match="sparsity loss needs NxM batches"):
        fit(tmp_path / "b", data, "trainer.epochs=1", "data.sampler=null")


@pytest.mark.slow
@pytest.mark.difference("BA-bae-recipe")
def test_the_reference_bae_recipe_command_runs(tmp_path):
    """The reference's `BAE_mse` recipe line (its paths, device and 200 epochs aside):
    `'trainer.losses=[mse]' data.N_classes_per_batch=32 data.M_samples_per_class=16
    data.batch_size=512 data.num_workers=16`."""
    from balr.binary_attributes.trainer import TrainingRun, train_encoder

    from .conftest import write_embedding_csv

    train = write_embedding_csv(tmp_path / "train", *clustered_embeddings(40, 16, seed=0))
    val = write_embedding_csv(tmp_path / "val", *clustered_embeddings(32, 16, seed=1), prefix="v")
    overrides = [
        "trainer.epochs=1", "trainer.losses=[mse]", "data.N_classes_per_batch=32",
        "data.M_samples_per_class=16", "data.batch_size=512", "data.num_workers=16",
        "trainer.progress=false",
    ]  # fmt: skip
    options = TrainingRun(train_config(overrides), tmp_path / "train" / "mse", device="cpu")
    run = train_encoder(train, val, options)
    assert run.history[0]["epoch"] == 1 and set(run.history[0]["train"]) == {"total", "mse"}
    assert (tmp_path / "train" / "mse" / "weights" / "best.safetensors").is_file()


@pytest.mark.difference("BA-log-period")
def test_log_period_counts_epochs_as_the_reference(tmp_path, data):
    """Training losses reach TensorBoard every `log_period` epochs, validation ones always."""
    trainer = fit(tmp_path / "log", data, "trainer.epochs=3", "trainer.log_period=2")
    events = EventAccumulator(str(trainer.out_dir))
    events.Reload()
    assert [e.step for e in events.Scalars("train/total")] == [2]
    assert [e.step for e in events.Scalars("val/total")] == [1, 2, 3]
    # the reference's tags too: `train/total_loss`, `test/MSE`, ..., its epoch 0-based
    assert [e.step for e in events.Scalars("train/total_loss")] == [1]
    assert [e.step for e in events.Scalars("test/total_loss")] == [0, 1, 2]
    reference_mse = [e.value for e in events.Scalars("test/MSE")]
    assert reference_mse == pytest.approx([r["val"]["mse"] for r in trainer.history])
    tags = set(events.Tags()["scalars"])
    assert {"train/Triplet", "train/Sparsity", "test/Triplet", "test/Sparsity"} <= tags


def test_checkpoint_period_zero_writes_only_after_the_last_epoch(tmp_path, data, monkeypatch):
    saved: list[int] = []
    original = BinaryAttributeEncoder.save

    def record(model, path, **meta):
        saved.append(meta["epoch"])
        return original(model, path, **meta)

    monkeypatch.setattr(BinaryAttributeEncoder, "save", record)
    trainer = fit(tmp_path / "run", data, "trainer.epochs=3", "trainer.checkpoint_period=0")
    assert [r["epoch"] for r in trainer.history] == [1, 2, 3]
    assert set(saved) == {3}  # last (and best) written once, after epoch 3
    assert len(json.loads((tmp_path / "run" / "history.json").read_text())) == 3
    meta = json.loads((tmp_path / "run" / "weights" / "last.json").read_text())
    assert meta["epoch"] == 3


def test_training_sampler_pads_the_last_group_by_default_as_the_reference(tmp_path):
    """20 speakers, N=8: the reference (drop_last False) makes 3 batches, the last padded."""
    labels = np.repeat(np.arange(20), 4)
    trainer = BAETrainer(train_config(SMALL), tmp_path)
    batches = trainer._sampler("RandomNxMSampler", labels, train=True).all_batches()
    assert [len(b) for b in batches] == [32, 32, 32]
    assert all(len(set(labels[b])) == 8 for b in batches)  # padding brings other speakers
    dropping = BAETrainer(train_config(SMALL + ["data.drop_last=true"]), tmp_path / "drop")
    assert len(dropping._sampler("RandomNxMSampler", labels, train=True).all_batches()) == 2
    validation = dropping._sampler("RandomNxMSampler", labels, train=False).all_batches()
    assert len(validation) == 3  # validation never drops samples
