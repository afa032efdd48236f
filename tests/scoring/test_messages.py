"""Messages of `score test` for a trials file without trials and a negative --explain."""

from __future__ import annotations

import pytest

from balr.data import load_trials
from balr.errors import ConfigError, TrialsError
from balr.scoring.jobs import ScoringRun, TrialScoring, score_trials_file, train_scorer
from tests.scoring.conftest import scoring_with


def test_header_only_trials_file_says_it_has_no_trials(corpus, tmp_path):
    trials = tmp_path / "trials.tsv"
    trials.write_text("enrollment\ttest\n")
    with pytest.raises(TrialsError, match=r"trials\.tsv: the trials file has no trials"):
        score_trials_file(
            corpus / "test.csv",
            trials,
            TrialScoring(save_dir=tmp_path / "out", vectors_dir=corpus / "vectors"),
        )
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    with pytest.raises(TrialsError, match=r"empty\.tsv: the trials file is empty"):
        load_trials(empty)


def test_negative_explain_is_refused(corpus, tmp_path):
    trained = train_scorer(
        corpus / "train.csv", ScoringRun(save_dir=tmp_path / "beta", vectors_dir=corpus / "vectors")
    )
    with pytest.raises(ConfigError, match=r"--explain -3: give the number of attributes"):
        score_trials_file(
            corpus / "test.csv",
            corpus / "trials.tsv",
            scoring_with(trained.path, corpus, tmp_path / "out", explain=-3),
        )
    assert not (tmp_path / "out").exists()
