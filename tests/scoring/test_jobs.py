"""The `balr score` jobs called as library functions on the generated corpus."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from balr.calibration import Calibrator
from balr.data import AudioDataset, load_trials
from balr.errors import ConfigError
from balr.evaluation import cllr
from balr.scoring import Scorer
from balr.scoring.config import ScoreSettings
from balr.scoring.jobs import (
    CalibrationFit,
    MatrixScoring,
    ScoringRun,
    calibrate_scores_file,
    score_matrix_file,
    score_trials_file,
    train_scorer,
)
from tests.scoring.conftest import N_ATTRIBUTES, N_SPEAKERS, scoring_with


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("beta")
    return train_scorer(
        corpus / "train.csv",
        ScoringRun(
            save_dir=out,
            vectors_dir=corpus / "vectors",
            settings=ScoreSettings.from_overrides(["scorer=beta"]),
        ),
    )


def test_train_scorer_saves_a_fitted_scorer_and_its_config(trained, corpus):
    assert trained.path.name == "scorer.safetensors" and trained.scorer.is_fitted
    assert trained.fitted_on == f"18 recordings, {N_SPEAKERS} speakers, {N_ATTRIBUTES} attributes"
    assert Scorer.load(trained.path).get_params() == trained.scorer.get_params()
    assert f"checkpoint_path: {trained.path}" in (trained.path.parent / "config.yaml").read_text()
    assert trained.summary() == f"beta scorer ({trained.fitted_on}) saved to {trained.path}"


def test_score_trials_file_returns_what_it_wrote(trained, corpus, tmp_path):
    result = score_trials_file(
        corpus / "test.csv",
        corpus / "trials.tsv",
        scoring_with(
            trained.path, corpus, tmp_path, exist_ok=True, explain=2, keep_same_recording=True
        ),
    )
    assert (result.n_trials, result.scorer) == (18, "beta")
    assert result.calibration == "none (user checkpoint without --calibration)"
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert result.evaluation.metrics == pytest.approx(
        {k: metrics[k] for k in result.evaluation.metrics}
    )
    assert (result.evaluation.n_target, result.evaluation.n_nontarget) == (9, 9)
    assert result.summary().startswith("18 trials scored with beta, calibration none")
    assert f"EER {metrics['eer']:.4f}, Cllr {metrics['cllr']:.4f}, minCllr" in result.summary()
    assert len(pd.read_csv(tmp_path / "explanations.csv")) == 18 * 2 * 2


@pytest.mark.slow
def test_calibrate_then_score_calibrated(trained, corpus, tmp_path):
    raw = score_trials_file(
        corpus / "test.csv",
        corpus / "trials.tsv",
        scoring_with(trained.path, corpus, tmp_path / "raw", keep_same_recording=True),
    )
    fitted = calibrate_scores_file(raw.save_dir / "scores.csv", corpus / "test.csv")
    assert fitted.path == raw.save_dir / "calibration.json"
    assert (fitted.calibrator.n_target_, fitted.calibrator.n_nontarget_) == (9, 9)
    scores = pd.read_csv(raw.save_dir / "scores.csv", sep="\t").scores.to_numpy()
    labels = load_trials(corpus / "trials.tsv").labels(AudioDataset.from_path(corpus / "test.csv"))
    assert fitted.cllr_before == pytest.approx(cllr(scores, labels))
    calibrator = Calibrator.load(fitted.path)
    assert fitted.cllr_after == pytest.approx(cllr(calibrator.transform(scores), labels))
    # separable raw scores: the ELUB bounds (9 trials a side) keep the calibrated LLRs modest
    assert calibrator.upper_bound_ <= np.log(10) + 1e-9
    calibrated = score_trials_file(
        corpus / "test.csv",
        corpus / "trials.tsv",
        scoring_with(
            trained.path,
            corpus,
            tmp_path / "calibrated",
            calibration=fitted.path,
            keep_same_recording=True,
        ),
    )
    written = pd.read_csv(tmp_path / "calibrated" / "scores.csv", sep="\t")
    np.testing.assert_allclose(written.raw_score, scores)
    np.testing.assert_allclose(written.scores, calibrator.transform(scores))
    assert calibrated.evaluation.metrics["raw_cllr"] == pytest.approx(fitted.cllr_before)
    with pytest.raises(ConfigError, match="--method spline"):
        calibrate_scores_file(
            raw.save_dir / "scores.csv", corpus / "test.csv", CalibrationFit(method="spline")
        )


def test_score_matrix_file(trained, corpus, tmp_path):
    result = score_matrix_file(
        corpus / "test.csv",
        scoring_with(trained.path, corpus, tmp_path, MatrixScoring),
    )
    matrix = np.load(result.path)
    assert result.size == N_SPEAKERS and matrix.shape == (N_SPEAKERS, N_SPEAKERS)
    ids = (tmp_path / "ids.txt").read_text().split()
    dataset = AudioDataset.from_path(corpus / "test.csv", output_dir=corpus / "vectors")
    _, vectors = dataset.stack_vectors("ba")
    np.testing.assert_allclose(matrix[0, 1], trained.scorer.score(vectors[:1], vectors[1:2]))
    assert ids == dataset.ids
    assert result.summary() == f"9 x 9 beta scores in {result.path}"


def _first_vector(corpus, csv: str) -> np.ndarray:
    dataset = AudioDataset.from_path(corpus / csv, output_dir=corpus / "vectors")
    return dataset.get_vector(0, "ba").astype(np.float64)


def _with_bad_first_vector(corpus, csv: str, tmp_path, vector: np.ndarray) -> None:
    """tmp_path/csv: the corpus CSV whose first recording's BA vector is bad_ba.txt."""
    frame = pd.read_csv(corpus / csv)
    np.savetxt(tmp_path / "bad_ba.txt", vector)
    frame["binary_attributes"] = ""
    frame.loc[0, "binary_attributes"] = str(tmp_path / "bad_ba.txt")
    frame.to_csv(tmp_path / csv, index=False)


def test_score_train_leaves_out_and_names_a_vector_that_is_not_counts(corpus, tmp_path):
    bad = _first_vector(corpus, "train.csv")
    bad[0] = [0.3, 0.7]
    _with_bad_first_vector(corpus, "train.csv", tmp_path, bad)
    result = train_scorer(
        tmp_path / "train.csv",
        ScoringRun(save_dir=tmp_path / "out", vectors_dir=corpus / "vectors"),
    )
    assert result.fitted_on == (
        f"17 recordings, {N_SPEAKERS} speakers, {N_ATTRIBUTES} attributes; 1 bad vector "
        f"({tmp_path / 'bad_ba.txt'}: BA vector holds 0.3 at attribute 0 (counts must be "
        "non-negative integers)) left out"
    )


def test_score_matrix_leaves_out_and_names_the_wrong_shape(trained, corpus, tmp_path):
    """A 300-attribute vector first among 64-attribute ones used to blame the second item."""
    _with_bad_first_vector(corpus, "test.csv", tmp_path, np.tile([[1, 0]], (300, 1)))
    checkpoint = f"scorer.checkpoint_path={trained.path}"
    result = score_matrix_file(
        tmp_path / "test.csv",
        MatrixScoring(
            save_dir=tmp_path,
            vectors_dir=corpus / "vectors",
            settings=ScoreSettings.from_overrides([checkpoint]),
        ),
    )
    assert result.size == N_SPEAKERS - 1
    assert result.summary().endswith(
        f"1 bad vector ({tmp_path / 'bad_ba.txt'}: vector shape (300, 2) differs from "
        f"({N_ATTRIBUTES}, 2), the shape of {N_SPEAKERS - 1} other vectors) left out"
    )


def test_trials_with_a_bad_vector_are_counted_not_silently_dropped(trained, corpus, tmp_path):
    """A NaN in one recording's BA vector used to drop its trials with no word while the
    summary still said "18 trials scored"; a file given per recording is named."""
    bad = _first_vector(corpus, "test.csv")
    bad[5, 0] = np.nan
    _with_bad_first_vector(corpus, "test.csv", tmp_path, bad)
    result = score_trials_file(
        tmp_path / "test.csv",
        corpus / "trials.tsv",
        scoring_with(trained.path, corpus, tmp_path / "out", keep_same_recording=True),
    )
    # spk0/rec2 is in 3 trials: against itself, against spk4 and spk5 against it
    assert (result.unscored.bad_vector, result.unscored.without_vector) == (3, 0)
    assert result.summary().startswith(
        "15 of 18 trials scored, 3 not scored (3 use a recording with 1 bad vector ("
        f"{tmp_path / 'bad_ba.txt'}: 1 non-finite values (NaN/inf))), with beta"
    )
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert (metrics["n_trials"], metrics["n_scored"]) == (18, 15)
    assert np.isnan(pd.read_csv(tmp_path / "out" / "scores.csv", sep="\t").scores).sum() == 3
