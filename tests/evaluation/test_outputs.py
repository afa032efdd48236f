"""write_evaluation: metrics.json plus DET, Tippett, PAV and ECE plots (PAV/ECE drawn by lir);
write_trial_metrics: the same on the labelled, scored trials of `score test`."""

from __future__ import annotations

import json

import matplotlib.image
import numpy as np
import pytest

from balr.evaluation import compute_metrics, write_evaluation
from balr.evaluation.outputs import write_trial_metrics


def test_writes_strict_json_and_four_decodable_plots(tmp_path):
    rng = np.random.default_rng(0)
    scores = np.r_[rng.normal(4, 2.8, 100), rng.normal(-4, 2.8, 900), [np.inf]]
    labels = np.r_[np.ones(100), np.zeros(901)].astype(int)  # an infinite non-target LLR
    metrics = compute_metrics(scores, labels)
    written = write_evaluation(tmp_path, metrics, scores, labels, title="unit")
    assert written == ["metrics.json", "det.png", "tippett.png", "pav.png", "ece.png"]
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["cllr"] == "inf"  # a misleading infinite LLR: strict JSON keeps it readable
    assert saved["eer"] == metrics["eer"]
    for name in written[1:]:
        pixels = matplotlib.image.imread(tmp_path / name)
        assert pixels.shape[0] > 200 and pixels.shape[1] > 300 and pixels.std() > 0.01
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(written)


def test_trial_metrics_skip_unlabelled_and_unscored_trials(tmp_path):
    rng = np.random.default_rng(1)
    scores = np.r_[rng.normal(3, 1, 20), rng.normal(-3, 1, 80), [np.nan, 7.0]]
    labels = np.r_[np.ones(20), np.zeros(80), [1, -1]].astype(int)  # no score / no speaker
    raw = scores / 2
    result = write_trial_metrics(tmp_path, scores, labels, "beta", raw, "calibration.json")
    assert (result.n_target, result.n_nontarget) == (20, 80)
    expected = compute_metrics(scores[:100], labels[:100])
    assert result.metrics["cllr"] == pytest.approx(expected["cllr"])
    assert result.metrics["raw_cllr"] == pytest.approx(
        compute_metrics(raw[:100], labels[:100])["cllr"]
    )
    assert result.metrics["n_trials"] == 102 and result.metrics["n_scored"] == 101
    assert (
        result.metrics["n_unlabelled"] == 1 and result.metrics["calibration"] == "calibration.json"
    )
    assert json.loads((tmp_path / "metrics.json").read_text())["scorer"] == "beta"
    assert result.summary().endswith(f"minCllr {expected['min_cllr']:.4f}")
    assert "(raw " in result.summary()


def test_trial_metrics_need_both_classes(tmp_path):
    result = write_trial_metrics(tmp_path, np.array([1.0, 2.0]), np.array([1, -1]), "beta")
    assert result.metrics is None and not any(tmp_path.iterdir())
    assert result.summary() == (
        "no metrics: 1 target and 0 non-target trials with known speakers (both are needed)"
    )
