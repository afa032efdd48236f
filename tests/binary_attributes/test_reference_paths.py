"""The reference's `runs/train/best.pt` (and `last.pt`, `epoch{E}.pt`) typed after a balr
`train`, which wrote `weights/best.safetensors`: balr's file is read, with a logged note."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from balr.binary_attributes.model import BinaryAttributeEncoder
from balr.cli.main import main
from balr.data import AudioDataset
from balr.errors import ModelError
from balr.reference_paths import resolve_reference_path

from .conftest import clustered_embeddings, write_embedding_csv


@pytest.fixture
def balr_run(tmp_path):
    """A balr `train` folder: weights/{best,last,epoch1}.safetensors of distinct encoders."""
    run = tmp_path / "runs" / "train"
    encoders = {}
    for seed, name in enumerate(("best", "last", "epoch1")):
        torch.manual_seed(seed)
        encoders[name] = BinaryAttributeEncoder(16, 32)
        encoders[name].save(run / "weights" / f"{name}.safetensors")
    return run, encoders


def same_weights(a: BinaryAttributeEncoder, b: BinaryAttributeEncoder) -> bool:
    pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    return all(torch.equal(x, y) for x, y in pairs)


@pytest.mark.difference("BA-reference-checkpoint-paths")
def test_reference_encoder_names_load_balr_files(balr_run, caplog):
    run, encoders = balr_run
    with caplog.at_level(logging.INFO, logger="balr.reference_paths"):
        for typed, name in (("best.pt", "best"), ("last.pt", "last"), ("epoch0.pt", "epoch1")):
            loaded = BinaryAttributeEncoder.load(run / typed)  # reference epochs count from 0
            assert same_weights(loaded, encoders[name]), typed
            assert not same_weights(loaded, encoders["last" if name != "last" else "best"])
    assert (
        f"{run / 'best.pt'}: not found; reading {run / 'weights' / 'best.safetensors'}"
        in (caplog.messages[0])
    )
    with pytest.raises(ModelError, match="epoch5.pt: checkpoint not found"):
        BinaryAttributeEncoder.load(run / "epoch5.pt")  # no weights/epoch6 either


def test_an_existing_reference_file_is_read_as_it_is(balr_run):
    run, encoders = balr_run
    torch.save(encoders["last"].state_dict(), run / "best.pt")  # the reference's own best.pt
    assert resolve_reference_path(run / "best.pt", "encoder") == run / "best.pt"
    assert same_weights(BinaryAttributeEncoder.load(run / "best.pt"), encoders["last"])


@pytest.mark.difference("BA-reference-checkpoint-paths")
def test_binarize_with_the_reference_checkpoint_path(balr_run, tmp_path, monkeypatch, capsys):
    run, encoders = balr_run
    x, y = clustered_embeddings(3, 2, dim=16, seed=0)
    data = write_embedding_csv(tmp_path / "data", x, y)
    monkeypatch.chdir(tmp_path)  # the reference's relative runs/train/best.pt
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "binarize",
                str(data),
                "--save-dir",
                str(tmp_path / "ba"),
                "encoder.model.checkpoint_path=runs/train/best.pt",
            ]
        )
    assert exit_info.value.code in (0, None), capsys.readouterr()
    dataset = AudioDataset.from_path(data, output_dir=tmp_path / "ba")
    _, embeddings = dataset.stack_vectors("emb")
    expected = encoders["best"].binarize(embeddings)
    np.testing.assert_array_equal(dataset.stack_vectors("ba")[1], expected)
