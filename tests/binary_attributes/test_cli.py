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


@pytest.mark.slow
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
    """The reference's folders: runs/train, then runs/train2, runs/train3."""
    monkeypatch.chdir(tmp_path)
    for expected in ("train", "train2", "train3"):
        status, out = run(["train", *datasets, *TINY, "data.sampler=ExhaustiveNxMSampler"], capsys)
        assert status == 0, out
        assert (tmp_path / "runs" / expected / "weights" / "last.safetensors").is_file()


def test_train_exist_ok_reuses_the_save_dir(tmp_path, datasets, capsys):
    save = tmp_path / "mse"
    base = ["train", *datasets, *TINY, "data.sampler=ExhaustiveNxMSampler", "--save-dir", save]
    assert run(base, capsys)[0] == 0
    assert run([*base, "--no-exist-ok"], capsys)[0] == 0  # exists: a new mse2
    assert (tmp_path / "mse2" / "weights" / "last.safetensors").is_file()
    first = (save / "history.json").stat().st_mtime_ns
    assert run([*base, "--exist-ok"], capsys)[0] == 0
    assert (save / "history.json").stat().st_mtime_ns > first
    assert not (tmp_path / "mse3").exists()
    assert run([*base, "exist_ok=true"], capsys)[0] == 0  # the reference's top-level key
    assert not (tmp_path / "mse3").exists()


def test_train_errors_are_one_line(tmp_path, datasets, capsys):
    status, out = run(["train", *datasets, *TINY, "trainer.epochs=x"], capsys)
    assert status == 1 and "error:" in out and "trainer.epochs" in out
    status, out = run(["train", *datasets, *TINY, "trainer.resume=true"], capsys)
    assert status == 1 and "needs --save-dir" in out
    status, out = run(["train", *datasets, *TINY, "data.sampler=Nope"], capsys)
    assert status == 1 and "data.sampler 'Nope'" in out


@pytest.mark.difference("BA-trainer-dims")
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


def test_binarize_no_save_output_computes_and_writes_nothing(
    tmp_path, datasets, checkpoint, capsys
):
    out_dir = tmp_path / "ba"
    args = ["binarize", datasets[1], "--save-dir", out_dir, "--no-force"]
    args.append(f"encoder.model.checkpoint_path={checkpoint}")
    status, out = run([*args, "--no-save-output"], capsys)
    assert status == 0, out
    assert "binarized 11 items" in out and "nothing was written" in out
    assert not out_dir.exists() or not any(out_dir.rglob("*_ba*"))
    # the reference's top-level key in the overrides does the same; the option wins over it
    status, out = run([*args, "save_output=false"], capsys)
    assert "binarized 11 items" in out and not any(out_dir.rglob("*_ba*"))
    status, out = run([*args, "save_output=false", "--save-output"], capsys)
    assert "binarized 11 items" in out and len(list(out_dir.rglob("*_ba.txt"))) == 11


@pytest.mark.difference("BA-root-dir")
def test_binarize_root_dir_prefixes_the_csv_paths(tmp_path, datasets, checkpoint, capsys):
    """The CSV alone elsewhere: its relative embedding paths start at --root-dir."""
    csv = tmp_path / "lists" / "val.csv"
    csv.parent.mkdir()
    csv.write_text(datasets[1].read_text())
    args = ["binarize", csv, f"encoder.model.checkpoint_path={checkpoint}"]
    status, out = run([*args, "--save-dir", tmp_path / "a"], capsys)
    assert "binarized 0 items" in out and "12 without an embedding" in out  # not found
    status, out = run(
        [*args, "--save-dir", tmp_path / "b", "--root-dir", datasets[1].parent], capsys
    )
    assert status == 0, out
    assert "binarized 11 items" in out
    assert len(list((tmp_path / "b").rglob("*_ba.txt"))) == 11


@pytest.mark.difference("BA-audio-formats")
def test_binarize_audio_formats_select_the_scanned_extensions(
    tmp_path, datasets, checkpoint, capsys
):
    """A directory of one .flac and one .wav, each with an embedding beside it."""
    x, _ = clustered_embeddings(1, 2, dim=16, seed=3)
    folder = tmp_path / "audio"
    folder.mkdir()
    for name, vector in zip(("a.flac", "b.wav"), x, strict=True):
        (folder / name).write_bytes(b"")
        np.savetxt(folder / f"{Path(name).stem}_emb.txt", vector)
    args = ["binarize", folder, f"encoder.model.checkpoint_path={checkpoint}"]
    status, out = run([*args, "--audio-formats", "wav", "--no-save-output"], capsys)
    assert status == 0, out
    assert "binarized 1 items" in out
    status, out = run([*args, "audio_formats=[wav, flac]", "--no-save-output"], capsys)
    assert "binarized 2 items" in out


@pytest.mark.difference("BA-encoder-dims")
def test_binarize_reference_encoder_shape_keys(tmp_path, datasets, checkpoint, capsys):
    """`encoder.model.input_dim` / `internal_dim`: accepted when they match the weights
    (16 -> 32 here), a one-line error naming the checkpoint when they do not."""
    args = ["binarize", datasets[1], "--no-save-output"]
    args.append(f"encoder.model.checkpoint_path={checkpoint}")
    status, out = run(
        [*args, "encoder.model.input_dim=16", "encoder.model.internal_dim=32"], capsys
    )
    assert status == 0 and "binarized 11 items" in out, out
    status, out = run([*args, "encoder.model.internal_dim=512"], capsys)
    assert status == 1
    assert (
        f"encoder.model.internal_dim=512, but the encoder {checkpoint} has internal_dim 32" in out
    )


def test_train_resume_from_a_tampered_state_is_one_line(tmp_path, datasets, capsys):
    """Issue 19: a truncated or tampered resume state gave a traceback."""
    save = tmp_path / "run"
    base = ["train", *datasets, *TINY, "data.sampler=ExhaustiveNxMSampler", "--save-dir", save]
    assert run(base, capsys)[0] == 0
    state = save / "weights" / "last_state.pt"
    state.write_bytes(state.read_bytes()[:200])
    status, out = run([*base, "trainer.epochs=2", "trainer.resume=true"], capsys)
    lines = [line for line in out.splitlines() if line.strip()]
    assert status == 1 and len(lines) == 1, out
    assert lines[0].startswith(f"error: {state}: cannot read the resume state"), out
