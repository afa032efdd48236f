"""Which scorer and calibration are used: explicit checkpoint, shipped default, or cosine."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from balr import defaults
from balr.errors import ConfigError
from balr.scoring import make_scorer
from balr.scoring.selection import select_calibration, select_scorer


@pytest.fixture(scope="module")
def dna_checkpoint(tmp_path_factory):
    rng = np.random.default_rng(0)
    active = rng.binomial(4, rng.uniform(0.1, 0.9, (30, 16)))
    stats = np.stack([active, 4 - active], axis=-1).astype(float)
    return make_scorer("dna").fit(stats).save(tmp_path_factory.mktemp("dna"))


def test_shipped_beta_and_its_calibration(caplog):
    caplog.set_level(logging.INFO)
    choice = select_scorer("beta")
    assert choice.scorer.name == "beta" and choice.checkpoint == defaults.SCORER_CHECKPOINT
    assert not choice.user_checkpoint
    calibrated = select_calibration(choice)
    assert calibrated.source == str(defaults.CALIBRATION)
    assert calibrated.calibrator.method == "qmf"  # the shipped beta calibration (rebuild)
    assert "using the shipped beta scorer" in caplog.text
    assert "calibrating with the shipped" in caplog.text


def test_cosine_needs_no_checkpoint_and_only_embeddings_are_calibrated():
    on_embeddings = select_scorer("cosine", params={"vectors": "emb"})
    assert on_embeddings.checkpoint is None and on_embeddings.scorer.vector_kind == "emb"
    assert select_calibration(on_embeddings).source == str(defaults.COSINE_CALIBRATION)
    on_attributes = select_calibration(select_scorer("cosine", params={"vectors": "ba"}))
    assert on_attributes.calibrator is None
    assert on_attributes.source == "none (no shipped calibration for cosine)"


def test_user_checkpoint_scoring_time_overrides_and_no_calibration(dna_checkpoint, caplog):
    choice = select_scorer(
        "dna",
        dna_checkpoint,
        params={"drop_in": 0.3, "typicality_threshold": 1e-4},
        chosen="dna",
        set_keys={"drop_in"},
    )
    assert choice.user_checkpoint and choice.scorer.drop_in == 0.3
    calibrated = select_calibration(choice)
    assert calibrated.calibrator is None
    assert calibrated.source == "none (user checkpoint without --calibration)"
    assert "scores are not calibrated" in caplog.text
    given = select_calibration(choice, defaults.CALIBRATION)
    assert given.calibrator is not None and given.source == str(defaults.CALIBRATION)


def test_refusals(dna_checkpoint):
    with pytest.raises(ConfigError, match="needs scorer.checkpoint_path"):
        select_scorer("maxllr")
    with pytest.raises(ConfigError, match="holds a 'dna' scorer, not 'beta'"):
        select_scorer("beta", dna_checkpoint, chosen="beta")
    with pytest.raises(ConfigError, match="exclude each other"):
        select_calibration(select_scorer("beta"), defaults.CALIBRATION, disabled=True)
    assert select_calibration(select_scorer("beta"), disabled=True).calibrator is None


def test_quiet_logs_nothing(dna_checkpoint, caplog):
    caplog.set_level(logging.INFO)
    select_calibration(select_scorer("beta", quiet=True), quiet=True)
    select_calibration(select_scorer("dna", dna_checkpoint, quiet=True), quiet=True)
    assert caplog.text == ""
