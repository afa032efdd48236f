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
from balr.conditions import ConditionsDescription, sidecar_path
from balr.scoring import Scorer

SHIPPED = [
    defaults.BAE_CHECKPOINT,
    defaults.SCORER_CHECKPOINT,
    defaults.TYPICALITY_CHECKPOINT,
    defaults.CALIBRATION,
    sidecar_path(defaults.CALIBRATION),
    defaults.COSINE_CALIBRATION,
    sidecar_path(defaults.COSINE_CALIBRATION),
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
    assert sum(sizes.values()) < 5_000_000, sizes  # "a few MB in all"
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
    assert calibrator.method == "qmf" and calibrator.slope_ > 0
    scores = np.concatenate([same, other])
    seconds = np.array([[3.0, 6.0], [0.2, 30.0], [8.0, 2.0], [3.0, 6.0], [0.2, 30.0], [8.0, 2.0]])
    llrs = calibrator.transform(scores, seconds)
    # qmf: slope * s + intercept + c_min * dmin + c_max * dmax, the log speech seconds of the
    # shorter / longer side (floored at 0.3 s) clamped to the calibrated range, then ELUB
    logs = np.log(np.maximum(seconds, 0.3))
    shorter_longer = np.stack([logs.min(axis=1), logs.max(axis=1)], axis=1)
    ranges = np.asarray(calibrator.log_duration_ranges_)
    clamped = np.clip(shorter_longer, ranges[:, 0], ranges[:, 1])
    expected = np.clip(
        calibrator.slope_ * scores + calibrator.intercept_ + clamped @ calibrator.duration_coefs_,
        calibrator.lower_bound_,
        calibrator.upper_bound_,
    )
    np.testing.assert_allclose(llrs, expected)
    assert calibrator.groups_ == ["commonvoice", "librispeech", "speechocean"]
    conditions = ConditionsDescription.load(defaults.CALIBRATION)
    assert conditions is not None and conditions.vector_kind_ == "ba"
    cosine = Calibrator.load(defaults.COSINE_CALIBRATION)
    assert cosine.method == "logistic"
    # a cosine of 1 (identical embeddings) is evidence for the same speaker, 0 against
    assert cosine.transform(np.array([1.0]))[0] > 0 > cosine.transform(np.array([0.0]))[0]
    assert ConditionsDescription.load(defaults.COSINE_CALIBRATION).vector_kind_ == "emb"


def test_reference_llrs_and_metrics_are_plain_data():
    with np.load(defaults.REFERENCE_LLRS, allow_pickle=False) as arrays:
        target, nontarget = arrays["target"], arrays["nontarget"]
        corpora = list(arrays["corpora"])
        target_corpus = arrays["target_corpus"]
    metrics = json.loads(defaults.METRICS.read_text())
    assert len(target) == metrics["reference_llrs"]["target"] > 1000
    assert len(nontarget) == metrics["reference_llrs"]["nontarget"] > 10000
    assert corpora == ["librispeech", "speechocean", "commonvoice", "voxceleb"]
    assert np.bincount(target_corpus).tolist() == [
        metrics["reference_llrs"]["per_corpus"][c]["target"] for c in corpora
    ]
    # calibrated LLRs: same-speaker trials mostly support H1, different-speaker ones H2
    assert np.median(target) > 0 > np.median(nontarget)


#: documented bounds on the held-out test parts (docs/default_models.md)
HELD_OUT_BOUNDS = {  # corpus: (beta EER at most, Cllr at most)
    "librispeech": (0.05, 0.3),
    "speechocean": (0.07, 0.3),
    "commonvoice": (0.15, 0.6),
    "voxceleb": (0.15, 0.6),
}


@pytest.mark.parametrize("corpus", HELD_OUT_BOUNDS)
def test_shipped_metrics_meet_the_documented_held_out_bounds(corpus):
    """The recipe's figures on held-out speakers: BA-LR EER within 2x the cosine EER (issue
    13), calibration lowers Cllr, few misleading LRs."""
    figures = json.loads(defaults.METRICS.read_text())["test"][corpus]
    beta, cosine = figures["beta"], figures["cosine_emb"]
    max_eer, max_cllr = HELD_OUT_BOUNDS[corpus]
    assert beta["eer"] <= max_eer and beta["cllr"] <= max_cllr
    assert beta["eer"] <= 2 * cosine["eer"]
    assert figures["eer_ratio_beta_to_cosine"] == pytest.approx(beta["eer"] / cosine["eer"])
    for system in (beta, cosine):
        assert system["cllr"] < min(system["raw_cllr"], 1.0)
        assert system["nontarget_lr_above_100"] < 0.01


def test_missing_shipped_file_says_how_to_rebuild(tmp_path):
    from balr.errors import ModelError

    with pytest.raises(ModelError, match="recipes/default_models.sh"):
        defaults.require(tmp_path / "bae.safetensors", "binary-attribute encoder")
    assert defaults.shipped_scorer("maxllr") is None
    assert defaults.shipped_calibration("cosine", "ba") is None
    assert defaults.shipped_calibration("cosine", "emb") == defaults.COSINE_CALIBRATION
