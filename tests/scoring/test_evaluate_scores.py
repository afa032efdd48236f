"""`balr evaluate` reads the tab-separated scores.csv of `balr score test` (no label column),
labelled by the speakers of the dataset given with --data; the separator is detected."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from balr.cli.main import app
from balr.errors import DataError
from balr.evaluation import compute_metrics
from balr.scoring.jobs import ScoringRun, score_trials_file, train_scorer
from tests.scoring.conftest import N_SPEAKERS, scoring_with


@pytest.fixture(scope="module")
def scores_csv(corpus, tmp_path_factory):
    """scores.csv of `score test` with a beta scorer fitted on the corpus (uncalibrated)."""
    out = tmp_path_factory.mktemp("scored")
    trained = train_scorer(
        corpus / "train.csv", ScoringRun(save_dir=out / "beta", vectors_dir=corpus / "vectors")
    )
    options = scoring_with(trained.path, corpus, out, exist_ok=True)  # out exists: write in it
    score_trials_file(corpus / "test.csv", corpus / "trials.tsv", options)
    return out / "scores.csv"


def invoke(*args: str):
    return CliRunner().invoke(app, ["evaluate", *map(str, args)])


@pytest.mark.slow
def test_evaluate_reads_score_test_output_with_data(scores_csv, corpus, tmp_path):
    assert "\t" in scores_csv.read_text().splitlines()[0]  # as written by score test
    result = invoke(scores_csv, "--data", corpus / "test.csv", "--save-dir", tmp_path)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    scores = pd.read_csv(scores_csv, sep="\t")["scores"].to_numpy()
    labels = np.r_[np.ones(N_SPEAKERS), np.zeros(N_SPEAKERS)]  # the corpus's trial order
    expected = compute_metrics(scores, labels)
    assert {k: metrics[k] for k in expected} == pytest.approx(expected)
    assert metrics["EER"] == pytest.approx(expected["eer"], abs=0.5 / N_SPEAKERS)
    assert (metrics["n_target"], metrics["n_nontarget"]) == (N_SPEAKERS, N_SPEAKERS)


def test_without_data_the_error_says_to_give_it(scores_csv):
    result = invoke(scores_csv, "--save-dir", scores_csv.parent / "eval")
    assert isinstance(result.exception, DataError)
    assert "add --data DATASET" in str(result.exception)


def test_separator_is_detected(tmp_path):
    frame = pd.DataFrame({"scores": [2.0, 1.0, -1.0, -2.0, 0.5], "label": [1, 1, 0, 0, 0]})
    frame.to_csv(tmp_path / "s.tsv", sep="\t", index=False)
    result = invoke(tmp_path / "s.tsv", "--save-dir", tmp_path / "out")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert (metrics["n_target"], metrics["n_nontarget"], metrics["eer"]) == (2, 3, 0.0)
