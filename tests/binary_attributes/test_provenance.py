"""Embedding provenance: `extract` records the model, an encoder records what it was trained
on, and `binarize` / `compare` refuse an encoder trained on another embedding model."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from balr import defaults
from balr.binary_attributes import model as bae_model
from balr.binary_attributes.binarize import BinarizeRun, binarize_dataset, binarize_path
from balr.binary_attributes.config import binarize_config, train_config
from balr.binary_attributes.model import BinaryAttributeEncoder, read_trained_on
from balr.binary_attributes.trainer import TrainingRun, train_encoder
from balr.compare import compare_files
from balr.compare.config import compare_config
from balr.data import AudioDataset, DatasetItem
from balr.data.provenance import (
    ALLOW_KEY,
    PROVENANCE_FILE,
    EmbeddingProvenance,
    dataset_provenance,
    read_provenance,
    write_provenance,
)
from balr.embeddings.extract import extract_dataset_embeddings, model_provenance
from balr.embeddings.wespeaker_resnet import ARCHITECTURES, ResNet, WespeakerEncoder
from balr.errors import DataError, ModelError
from balr.features.fbank import FbankOptions
from recipes.default_models import save_float16_encoder
from tests.conftest import EXAMPLES, REFERENCE_BALR_MIRROR, extraction_run

from .conftest import clustered_embeddings, write_embedding_csv

pytestmark = pytest.mark.slow  # end-to-end runs (models, CLI processes): not in `make test-fast`

GE2E = EmbeddingProvenance("ge2e", 256)
RESNET34 = EmbeddingProvenance("wespeaker_resnet34", 256)
REFERENCE_MIRROR = REFERENCE_BALR_MIRROR


def encoder_file(folder: Path, trained_on: EmbeddingProvenance | None, dim: int = 256) -> Path:
    """A random encoder saved with `trained_on` as its recorded embedding model."""
    torch.manual_seed(0)
    encoder = BinaryAttributeEncoder(dim, 32)
    encoder.trained_on = trained_on
    path = folder / f"bae_{trained_on.model if trained_on else 'unknown'}_{dim}.safetensors"
    encoder.save(path)
    return path


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> Path:
    """GE2E embeddings of the 8 bundled clips (examples/audio), under their own folder."""
    out = tmp_path_factory.mktemp("emb")
    report = extract_dataset_embeddings(EXAMPLES / "audio", extraction_run(out))
    assert report.succeeded == 8
    return out


def binarize_config_for(checkpoint: Path, *extra: str):
    return binarize_config([f"encoder.model.checkpoint_path={checkpoint}", *extra])


def test_extract_records_the_model_and_dimension(extracted):
    assert json.loads((extracted / PROVENANCE_FILE).read_text()) == {"model": "ge2e", "dim": 256}
    assert (extracted / "speech_durations.tsv").is_file()  # the record sits beside it


def test_binarize_refuses_an_encoder_of_another_model_naming_both(extracted, tmp_path):
    checkpoint = encoder_file(tmp_path, RESNET34)
    message = (
        rf"{extracted}: embeddings of ge2e, but the encoder {checkpoint} was trained on "
        rf"wespeaker_resnet34 embeddings; .*pass {ALLOW_KEY}=true"
    )
    with pytest.raises(ModelError, match=message):
        binarize_path(EXAMPLES / "audio", BinarizeRun(binarize_config_for(checkpoint), extracted))
    assert not list(extracted.rglob("*_ba.txt"))  # refused before writing anything


def test_binarize_with_the_matching_encoder_is_silent(extracted, tmp_path, caplog):
    out = tmp_path / "copy"
    shutil.copytree(extracted, out)
    with caplog.at_level(logging.WARNING):
        shipped = BinarizeRun(binarize_config([]), out)  # the shipped encoder: GE2E
        report = binarize_path(EXAMPLES / "audio", shipped)
    assert report.binarized == 8
    assert not [r for r in caplog.records if "embedding model" in r.getMessage()]


def test_allowed_mismatch_binarizes_with_a_warning(extracted, tmp_path, caplog):
    out = tmp_path / "copy"
    shutil.copytree(extracted, out)
    checkpoint = encoder_file(tmp_path, RESNET34)
    cfg = binarize_config_for(checkpoint, f"{ALLOW_KEY}=true")
    with caplog.at_level(logging.WARNING):
        report = binarize_path(EXAMPLES / "audio", BinarizeRun(cfg, out))
    assert report.binarized == 8
    assert f"{ALLOW_KEY}=true: applying the encoder {checkpoint}" in caplog.text
    assert "(trained on wespeaker_resnet34) to ge2e embeddings" in caplog.text


def test_dimension_mismatch_is_refused_even_when_allowed(tmp_path):
    x, _ = clustered_embeddings(2, 2, dim=256, seed=1)
    ds = AudioDataset([DatasetItem(id=f"u{i}") for i in range(4)], tmp_path, vector_format="npy")
    ds.save_vectors("emb", range(4), x)
    write_provenance(tmp_path, GE2E)
    encoder = BinaryAttributeEncoder(192, 32)
    encoder.trained_on = EmbeddingProvenance("ge2e", 192)
    with pytest.raises(ModelError, match=r"ge2e \(256-dim\) embeddings, but the encoder e\.st "
                       r"takes 192-dim ones"):  # fmt: skip
        binarize_dataset(ds, encoder, encoder_source="e.st", allow_other_model=True)


def test_unknown_provenance_on_either_side_goes_on_with_a_warning(tmp_path, caplog):
    x, _ = clustered_embeddings(2, 2, dim=16, seed=2)
    ds = AudioDataset([DatasetItem(id=f"u{i}") for i in range(4)], tmp_path, vector_format="npy")
    ds.save_vectors("emb", range(4), x)
    with caplog.at_level(logging.WARNING):
        report = binarize_dataset(ds, BinaryAttributeEncoder(16, 32), encoder_source="e.st")
    assert report.binarized == 4
    assert (
        f"no embedding model recorded for the embeddings in {tmp_path} nor the encoder e.st"
        in caplog.text
    )


def test_shipped_encoder_records_ge2e():
    assert read_trained_on(defaults.BAE_CHECKPOINT) == GE2E
    assert BinaryAttributeEncoder.load(defaults.BAE_CHECKPOINT).trained_on == GE2E


def on_cpu(save_dir: Path, overrides: list[str]) -> TrainingRun:
    """The `TrainingRun` of `balr train --save-dir SAVE_DIR --device cpu OVERRIDES`."""
    return TrainingRun(train_config(overrides), save_dir, device="cpu")


def test_train_records_the_training_embeddings_model(tmp_path):
    x, y = clustered_embeddings(8, 4, dim=32, seed=0)
    train = write_embedding_csv(tmp_path / "train", x, y)
    val = write_embedding_csv(tmp_path / "val", *clustered_embeddings(4, 4, dim=32, seed=1))
    for data in (train, val):
        write_provenance(data.parent, EmbeddingProvenance("doublemha:0123456789ab", 32))
    overrides = [
        "trainer.epochs=1", "trainer.progress=false", "data.N_classes_per_batch=4",
        "data.M_samples_per_class=4", "model.latent_dim=16",
    ]  # fmt: skip
    run = train_encoder(train, val, on_cpu(tmp_path / "run", overrides))
    best = run.save_dir / "weights" / "best.safetensors"
    expected = EmbeddingProvenance("doublemha:0123456789ab", 32)
    assert BinaryAttributeEncoder.load(best).trained_on == expected
    sidecar = json.loads(best.with_suffix(".json").read_text())
    assert sidecar["embedding_model"] == {"model": "doublemha:0123456789ab", "dim": 32}
    # the float16 copy of the recipe keeps it
    half = save_float16_encoder(best, tmp_path / "bae16.safetensors")
    assert read_trained_on(half) == expected
    # validation embeddings of another model are refused
    write_provenance(val.parent, EmbeddingProvenance("ge2e", 32))
    with pytest.raises(DataError, match="validation embeddings ge2e"):
        train_encoder(train, val, on_cpu(tmp_path / "run2", overrides))


def test_train_without_recorded_model_leaves_it_unknown(tmp_path, caplog):
    x, y = clustered_embeddings(8, 4, dim=32, seed=0)
    train = write_embedding_csv(tmp_path / "train", x, y)
    overrides = [
        "trainer.epochs=1", "trainer.progress=false", "data.N_classes_per_batch=4",
        "data.M_samples_per_class=4", "model.latent_dim=16", "trainer.val_period=0",
    ]  # fmt: skip
    with caplog.at_level(logging.WARNING):
        run = train_encoder(train, train, on_cpu(tmp_path / "run", overrides))
    assert "training embeddings have no recorded model" in caplog.text
    assert read_trained_on(run.save_dir / "weights" / "last.safetensors") is None


def test_plain_state_dict_is_recognised_by_its_hash(tmp_path, monkeypatch):
    torch.manual_seed(0)
    path = tmp_path / "BAE_like.pt"
    torch.save(BinaryAttributeEncoder(256, 32).state_dict(), path)
    assert BinaryAttributeEncoder.load(path).trained_on is None
    digest = bae_model.sha256_file(path)
    monkeypatch.setitem(bae_model.KNOWN_CHECKPOINTS, digest, RESNET34)
    assert BinaryAttributeEncoder.load(path).trained_on == RESNET34


def test_reference_bae_mse_is_refused_on_ge2e_embeddings(extracted, tmp_path):
    """The reference's `BAE_mse.pt` (Wespeaker ResNet34 embeddings) on GE2E vectors."""
    if not (REFERENCE_MIRROR / "HEAD").is_file():
        pytest.skip(f"the reference mirror {REFERENCE_MIRROR} is not on this machine")
    path = tmp_path / "BAE_mse.pt"
    blob = ["git", "-C", str(REFERENCE_MIRROR), "show", "HEAD:resources/models/BAE/BAE_mse.pt"]
    path.write_bytes(subprocess.run(blob, capture_output=True, check=True).stdout)
    assert BinaryAttributeEncoder.load(path).trained_on == RESNET34
    with pytest.raises(ModelError, match="embeddings of ge2e, but the encoder .*BAE_mse.pt was "
                       "trained on wespeaker_resnet34"):  # fmt: skip
        binarize_path(EXAMPLES / "audio", BinarizeRun(binarize_config_for(path), extracted))


def test_extract_refuses_to_mix_models_in_one_folder_unless_forced(tmp_path):
    clip = EXAMPLES / "audio" / "id01184" / "00133.flac"
    write_provenance(tmp_path, RESNET34)
    with pytest.raises(DataError, match=r"holds embeddings of wespeaker_resnet34 \(256-dim\).*"
                       r"extracting ge2e \(256-dim\) there would mix two models"):  # fmt: skip
        extract_dataset_embeddings(clip, extraction_run(tmp_path))
    extract_dataset_embeddings(clip, extraction_run(tmp_path, force=True))
    assert read_provenance(tmp_path) == GE2E


def test_a_record_beside_the_audio_from_before_balr_records_folder_still_counts(tmp_path):
    """balr wrote `embedding_model.json` beside the audio before `.balr/`: it is still read."""
    shutil.copy(EXAMPLES / "audio" / "id01184" / "00133.flac", tmp_path)
    write_provenance(tmp_path, RESNET34)
    with pytest.raises(DataError, match=rf"^{tmp_path}: holds embeddings of wespeaker_resnet34 "
                       rf"\(256-dim\) \({tmp_path / PROVENANCE_FILE}\)"):  # fmt: skip
        extract_dataset_embeddings(tmp_path, extraction_run(None))
    extract_dataset_embeddings(tmp_path, extraction_run(None, force=True))
    assert read_provenance(tmp_path / ".balr") == GE2E
    assert dataset_provenance(AudioDataset.from_path(tmp_path))[0] == GE2E


def test_compare_refuses_an_encoder_of_another_model(tmp_path):
    checkpoint = encoder_file(tmp_path, RESNET34)
    clip = EXAMPLES / "audio" / "id01184" / "00133.flac"
    with pytest.raises(ModelError, match=r"embeddings\.model=ge2e: embeddings of ge2e, but the "
                       rf"encoder {checkpoint} was trained on wespeaker_resnet34"):  # fmt: skip
        config = compare_config([f"encoder.model.checkpoint_path={checkpoint}"])
        compare_files([clip], [clip], config)


def test_wespeaker_models_are_named_by_architecture():
    block, blocks = ARCHITECTURES["ResNet34"]
    network = ResNet(block, blocks, m_channels=4, embed_dim=16)
    encoder = WespeakerEncoder(network, FbankOptions())
    assert model_provenance(encoder, None) == EmbeddingProvenance("wespeaker_resnet34", 16)


def test_npy_embeddings_of_old_balr_without_record_stay_unknown(tmp_path, caplog):
    clip = EXAMPLES / "audio" / "id01184" / "00133.flac"
    ds = AudioDataset.from_path(clip, output_dir=tmp_path)
    ds.save_vectors("emb", [0], [np.ones(256, np.float32)])
    with caplog.at_level(logging.WARNING):
        extract_dataset_embeddings(clip, extraction_run(tmp_path))
    assert read_provenance(tmp_path) is None
    assert "embeddings already there have no recorded model" in caplog.text


def test_doublemha_models_are_named_by_their_checkpoint_hash(tmp_path):
    from balr.doublemha import SpeakerClassifier
    from balr.doublemha.config import ModelSettings
    from balr.embeddings import build_embedding_model
    from balr.fileio import sha256_file

    torch.manual_seed(0)
    tiny = dict(front_end="VGG3L", kernel_size=8, heads_number=2, embedding_size=8)
    settings = ModelSettings(num_spkrs=3, pooling_method="DoubleMHA", **tiny)
    SpeakerClassifier(settings).eval().save(tmp_path / "best.pt")
    expected = EmbeddingProvenance(f"doublemha:{sha256_file(tmp_path / 'best.pt')[:12]}", 8)
    for given in (tmp_path / "best.pt", tmp_path):  # the file, or its training directory
        cfg = type("Cfg", (), {"name": "doublemha", "checkpoint_path": str(given)})()
        assert model_provenance(build_embedding_model(cfg), cfg) == expected
