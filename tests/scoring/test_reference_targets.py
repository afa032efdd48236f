"""`balr score train` with the reference's `scorer._target_` override fits that scorer."""

from __future__ import annotations

from balr.scoring import MaxLLRScorer, Scorer
from balr.scoring.jobs import train_scorer


def test_score_train_with_a_reference_target_fits_maxllr(corpus, tmp_path):
    overrides = ["scorer._target_=balr.scoring.llr.MaxLLRScorer", "scorer.f=0.25"]
    trained = train_scorer(corpus / "train.csv", tmp_path, corpus / "vectors", overrides)
    loaded = Scorer.load(trained.path)
    assert isinstance(loaded, MaxLLRScorer) and loaded.f == 0.25 and loaded.is_fitted
    assert "name: maxllr" in (tmp_path / "config.yaml").read_text()
