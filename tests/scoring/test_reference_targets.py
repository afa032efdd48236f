"""`balr score train` with the reference's `scorer._target_` override fits that scorer."""

from __future__ import annotations

import subprocess
import sys

import pytest

from balr.scoring import MaxLLRScorer, Scorer
from balr.scoring.config import ScoreSettings
from balr.scoring.jobs import ScoringRun, train_scorer


def test_score_train_with_a_reference_target_fits_maxllr(corpus, tmp_path):
    overrides = ["scorer._target_=balr.scoring.llr.MaxLLRScorer", "scorer.f=0.25"]
    trained = train_scorer(
        corpus / "train.csv",
        ScoringRun(
            save_dir=tmp_path,
            vectors_dir=corpus / "vectors",
            settings=ScoreSettings.from_overrides(overrides),
            exist_ok=True,
        ),
    )
    loaded = Scorer.load(trained.path)
    assert isinstance(loaded, MaxLLRScorer) and loaded.f == 0.25 and loaded.is_fitted
    assert "name: maxllr" in (tmp_path / "config.yaml").read_text()


@pytest.mark.slow
def test_score_train_command_with_a_reference_yaml_config(corpus, tmp_path):
    """`balr score train ... --config-path DIR --config-name NAME`, the YAML naming the
    scorer by the reference's class path; a command-line override wins over the file."""
    (tmp_path / "maxllr.yaml").write_text(
        "scorer:\n  _target_: balr.scoring.llr.MaxLLRScorer\n  f: 0.25\n  p: 0.8\n"
    )
    command = [
        sys.executable, "-m", "balr.cli.main", "score", "train", str(corpus / "train.csv"),
        "--vectors-dir", str(corpus / "vectors"), "--save-dir", str(tmp_path / "out"),
        "--config-path", str(tmp_path), "--config-name", "maxllr", "scorer.p=0.7",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = Scorer.load(tmp_path / "out" / "scorer.safetensors")
    assert isinstance(loaded, MaxLLRScorer) and (loaded.f, loaded.p) == (0.25, 0.7)
