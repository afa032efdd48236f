"""The shipped default models: present, small, loadable offline, and calibrated on held-out data."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import torch
from safetensors import safe_open

from balr import defaults
from balr.binary_attributes.model import BinaryAttributeEncoder
from balr.calibration import Calibrator
from balr.scoring import Scorer

SHIPPED = [
    defaults.BAE_CHECKPOINT,
    defaults.SCORER_CHECKPOINT,
    defaults.TYPICALITY_CHECKPOINT,
    defaults.CALIBRATION,
    defaults.COSINE_CALIBRATION,
    defaults.REFERENCE_LLRS,
    defaults.METRICS,
]


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to open a network socket fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_every_shipped_file_is_present_and_the_set_is_small():
    sizes = {path.name: path.stat().st_size for path in SHIPPED}
    assert sum(sizes.values()) < 4_000_000, sizes  # "a few MB in all"
    assert (defaults.RESOURCE_DIR / "README.md").is_file()


def test_encoder_is_stored_as_float16_and_upcast_exactly_on_load(offline):
    with safe_open(str(defaults.BAE_CHECKPOINT), framework="pt") as handle:
        stored = {key: handle.get_tensor(key) for key in handle.keys()}
    model = BinaryAttributeEncoder.load(defaults.BAE_CHECKPOINT)
    assert (model.input_dim, model.latent_dim) == (256, 512)
    state = model.state_dict()
    for key, value in stored.items():
        if value.is_floating_point():
            assert value.dtype == torch.float16, key
            assert state[key].dtype == torch.float32, key
            # float16 -> float32 is exact, so the loaded weights equal the stored ones
            assert torch.equal(state[key], value.float()), key


def test_shipped_pipeline_runs_offline_on_synthetic_embeddings(offline):
    """Encoder -> beta scorer -> calibrator, with the network disabled."""
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(6, 256)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)  # GE2E vectors are unit
    counts = BinaryAttributeEncoder.load(defaults.BAE_CHECKPOINT).binarize(embeddings)
    assert counts.shape == (6, 512, 2)
    assert set(np.unique(counts)) <= {0, 1} and (counts.sum(axis=2) == 1).all()

    scorer = Scorer.load(defaults.SCORER_CHECKPOINT)
    assert scorer.name == "beta" and scorer.n_attributes == 512
    typicality = Scorer.load(defaults.TYPICALITY_CHECKPOINT)
    assert typicality.name == "speech" and typicality.n_attributes == 512
    same = scorer.score(counts[:3], counts[:3])  # a recording against itself
    other = scorer.score(counts[:3], counts[3:])
    assert np.isfinite(same).all() and np.isfinite(other).all()
    assert (same > other).all()

    calibrator = Calibrator.load(defaults.CALIBRATION)
    assert calibrator.method == "logistic" and calibrator.slope_ > 0
    llrs = calibrator.transform(np.concatenate([same, other]))
    expected = np.clip(
        calibrator.slope_ * np.concatenate([same, other]) + calibrator.intercept_,
        calibrator.lower_bound_,
        calibrator.upper_bound_,
    )
    np.testing.assert_allclose(llrs, expected)
    cosine = Calibrator.load(defaults.COSINE_CALIBRATION)
    # a cosine of 1 (identical embeddings) is evidence for the same speaker, 0 against
    assert cosine.transform(np.array([1.0]))[0] > 0 > cosine.transform(np.array([0.0]))[0]


def test_reference_llrs_and_metrics_are_plain_data():
    with np.load(defaults.REFERENCE_LLRS, allow_pickle=False) as arrays:
        target, nontarget = arrays["target"], arrays["nontarget"]
    metrics = json.loads(defaults.METRICS.read_text())
    assert len(target) == metrics["reference_llrs"]["target"] > 100
    assert len(nontarget) == metrics["reference_llrs"]["nontarget"] > 1000
    # calibrated LLRs: same-speaker trials mostly support H1, different-speaker ones H2
    assert np.median(target) > 0 > np.median(nontarget)
    calibrated = metrics["test"]["librispeech_test"]["beta"]
    assert calibrated["cllr"] < calibrated["raw_cllr"]
    assert calibrated["eer"] < 0.25


def test_missing_shipped_file_says_how_to_rebuild(tmp_path):
    from balr.errors import ModelError

    with pytest.raises(ModelError, match="recipes/default_models.sh"):
        defaults.require(tmp_path / "bae.safetensors", "binary-attribute encoder")
    assert defaults.shipped_scorer("maxllr") is None
    assert defaults.shipped_calibration("cosine", "ba") is None
    assert defaults.shipped_calibration("cosine", "emb") == defaults.COSINE_CALIBRATION
