"""write_evaluation: metrics.json plus DET, Tippett, PAV and ECE plots (PAV/ECE drawn by lir)."""

from __future__ import annotations

import json

import matplotlib.image
import numpy as np

from balr.evaluation import compute_metrics, write_evaluation


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
