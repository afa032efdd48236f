"""`balr train` and `balr binarize` end to end on CSV datasets of embedding files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from balr.binary_attributes.model import BinaryAttributeEncoder
from balr.cli.main import main
from balr.config import load_config
from balr.data import AudioDataset

from .conftest import clustered_embeddings, write_embedding_csv

TINY = [
    "--device",
    "cpu",
    "trainer.epochs=1",
    "trainer.progress=false",
    "data.N_classes_per_batch=4",
    "data.M_samples_per_class=2",
    "model.latent_dim=32",
]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("csv")
    x, y = clustered_embeddings(12, 3, dim=16, seed=0)
    train = write_embedding_csv(root / "train", x, y)
    x, y = clustered_embeddings(4, 3, dim=16, seed=1)
    val = write_embedding_csv(root / "val", x, y, prefix="val", missing=1)
    return train, val


def run(args: list[str], capsys) -> tuple[int, str]:
    """Exit status and output (stdout + stderr) of `balr ARGS`."""
    try:
        main([str(a) for a in args])
        status = 0
    except SystemExit as exc:
        status = exc.code or 0
    out = capsys.readouterr()
    return status, out.out + out.err


def test_train_with_loss_selection_and_override(tmp_path, datasets, capsys):
    save = tmp_path / "run"
    args = ["train", *datasets, "--save-dir", save, *TINY]
    args += ["trainer.losses=[mse, arcface]", "trainer.losses.arcface.margin=0.3"]
    status, out = run(args, capsys)
    assert status == 0, out
    assert "weights in" in out
    cfg = load_config(save / "config.yaml")
    assert set(cfg.trainer.losses) == {"mse", "arcface"}
    assert cfg.trainer.losses.arcface.margin == 0.3
    assert BinaryAttributeEncoder.load(save / "weights" / "best.safetensors").latent_dim == 32


def test_train_default_save_dirs_increment(tmp_path, datasets, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for expected in ("train1", "train2"):
        status, out = run(["train", *datasets, *TINY, "data.sampler=ExhaustiveNxMSampler"], capsys)
        assert status == 0, out
        assert (tmp_path / "runs" / expected / "weights" / "last.safetensors").is_file()


def test_train_errors_are_one_line(tmp_path, datasets, capsys):
    status, out = run(["train", *datasets, *TINY, "trainer.epochs=x"], capsys)
    assert status == 1 and "error:" in out and "trainer.epochs" in out
    status, out = run(["train", *datasets, *TINY, "trainer.resume=true"], capsys)
    assert status == 1 and "needs --save-dir" in out
    status, out = run(["train", *datasets, *TINY, "data.sampler=Nope"], capsys)
    assert status == 1 and "data.sampler 'Nope'" in out


def test_train_reads_the_reference_dimension_keys(tmp_path, datasets, capsys):
    """trainer.input_dim / trainer.internal_dim (the reference's names, here from a
    --config-path YAML as the reference's users write them) are model.input_dim /
    model.latent_dim."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "dims.yaml").write_text("trainer:\n  input_dim: 16\n  internal_dim: 24\n")
    save = tmp_path / "run"
    tiny = [a for a in TINY if not a.startswith("model.latent_dim")]
    args = ["train", *datasets, "--save-dir", save, *tiny]
    args += ["--config-path", tmp_path / "conf", "--config-name", "dims"]
    status, out = run(args, capsys)
    assert status == 0, out
    encoder = BinaryAttributeEncoder.load(save / "weights" / "best.safetensors")
    assert (encoder.input_dim, encoder.latent_dim) == (16, 24)
    cfg = load_config(save / "config.yaml")
    assert (cfg.model.input_dim, cfg.model.latent_dim) == (16, 24)


def test_train_reference_dimension_errors_are_one_line(tmp_path, datasets, capsys):
    tiny = [a for a in TINY if not a.startswith("model.latent_dim")]
    args = ["train", *datasets, "--save-dir", tmp_path / "run", *tiny]
    status, out = run([*args, "trainer.input_dim=256"], capsys)  # the reference's default
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert status == 1 and len(errors) == 1, out
    assert "trainer.input_dim=256 but the training embeddings have 16 dimensions" in errors[0]
    assert not (tmp_path / "run" / "weights" / "last.safetensors").exists()
    status, out = run([*args, "trainer.internal_dim=24", "model.latent_dim=32"], capsys)
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert status == 1 and len(errors) == 1, out
    assert "trainer.internal_dim=24 and model.latent_dim=32 differ" in errors[0]
    status, out = run([*args, "trainer.input_dim=16", "model.input_dim=16"], capsys)
    assert status == 0, out  # one value given under both names


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, datasets) -> Path:
    save = tmp_path_factory.mktemp("ckpt") / "run"
    with pytest.raises(SystemExit) as exit_info:  # typer exits 0 on success
        main([str(a) for a in ["train", *datasets, "--save-dir", save, *TINY]])
    assert exit_info.value.code in (0, None)
    return save / "weights" / "best.safetensors"


def test_binarize_defaults_to_the_shipped_encoder(datasets, capsys):
    """No checkpoint: the shipped 256-dim encoder, which refuses these 16-dim embeddings."""
    status, out = run(["binarize", datasets[1]], capsys)
    assert status == 1
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "16-dim embeddings, but the encoder" in errors[0] and "takes 256-dim" in errors[0]


def test_binarize_writes_ba_vectors_skips_done_and_reports_missing(
    tmp_path, datasets, checkpoint, capsys
):
    out_dir = tmp_path / "ba"
    args = ["binarize", datasets[1], "--save-dir", out_dir, "--device", "cpu"]
    args.append(f"encoder.model.checkpoint_path={checkpoint}")
    status, out = run(args, capsys)
    # val: 12 items, the last one listed without an embedding
    assert status == 0, out
    assert "binarized 11 items; 0 already had _ba vectors; 1 without an embedding" in out
    ds = AudioDataset.from_path(datasets[1], output_dir=out_dir)
    indices, embeddings = ds.stack_vectors("emb")
    expected = BinaryAttributeEncoder.load(checkpoint).binarize(embeddings)
    for i, index in enumerate(indices):
        assert np.array_equal(ds.get_vector(int(index), "ba"), expected[i])
    # items are sorted by id: find the one listed without an embedding by its row
    (missing,) = [i for i, item in enumerate(ds.items) if item.embedding is None]
    assert not ds.has_vector(missing, "ba")

    status, out = run(args, capsys)
    assert "binarized 0 items; 11 already had _ba vectors; 1 without" in out
    status, out = run([*args, "--force"], capsys)
    assert "binarized 11 items; 0 already had" in out
