"""The issue-20 case end to end: a maxllr `scorer.pt` fitted by the reference's EM on speakers
with a never-active and an always-active attribute (so p = q = 0 and p = q = 1 there) scores
every trial of `balr score test` finitely, as the reference's formula does, with metrics."""

from __future__ import annotations

import json
from collections import OrderedDict

import numpy as np
import pandas as pd
import pytest
import torch

from balr.data import AudioDataset
from tests.scoring.conftest import score_test
from tests.scoring.test_reference_checkpoints import (
    reference_maxllr_scores,
    reference_module_state,
)

N_SPEAKERS, N_ATTRIBUTES, PER_SPEAKER = 30, 12, 6  # the last two recordings are tested


def reference_em(stats: np.ndarray, n_iterations: int = 100) -> OrderedDict:
    """The reference `MaxLLRScorer._fit_prior` (f, p, q start 0.5, 0.9, 0.1), in torch."""
    a, n = torch.from_numpy(stats[..., 0]), torch.from_numpy(stats[..., 1])
    f, p, q = (torch.full((stats.shape[1],), v, dtype=torch.float64) for v in (0.5, 0.9, 0.1))
    for _ in range(n_iterations):
        present = f * p**a * (1 - p) ** n
        f = present / (present + (1 - f) * q**a * (1 - q) ** n)
        p = (a * f).sum(dim=0) / ((a + n) * f).sum(dim=0)
        q = (a * (1 - f)).sum(dim=0) / ((a + n) * (1 - f)).sum(dim=0)
        f = f.mean(dim=0)
    return OrderedDict(f=f, p=p, q=q)


@pytest.fixture
def corpus(tmp_path):
    """6 recordings of each of 30 speakers (4 fit the scorer, 2 are tested against each
    other); attribute 0 never active, attribute 1 always."""
    rng = np.random.default_rng(4)
    rates = np.where(rng.random((N_SPEAKERS, N_ATTRIBUTES)) < 0.4, 0.85, 0.1)
    rates[:, 0], rates[:, 1] = 0.0, 1.0
    rows = [(f"spk{s}/rec{r}", f"spk{s}") for s in range(N_SPEAKERS) for r in range(PER_SPEAKER)]
    frame = pd.DataFrame(rows, columns=["id", "speaker"])
    frame.to_csv(tmp_path / "all.csv", index=False)
    test = frame.id.str.endswith((f"rec{PER_SPEAKER - 2}", f"rec{PER_SPEAKER - 1}"))
    frame[~test].to_csv(tmp_path / "train.csv", index=False)
    frame[test].to_csv(tmp_path / "test.csv", index=False)
    dataset = AudioDataset.from_path(tmp_path / "all.csv", output_dir=tmp_path / "vectors")
    bits = {}
    with dataset.vector_writer("ba") as writer:
        for index, item in enumerate(dataset.items):
            bits[item.id] = rng.random(N_ATTRIBUTES) < rates[int(item.speaker[3:])]
            writer.put(index, np.stack([bits[item.id], ~bits[item.id]], 1).astype(np.float32))
    enrolled = [f"spk{s}/rec{PER_SPEAKER - 2}" for s in range(8)]
    tests = [f"spk{s}/rec{PER_SPEAKER - 1}" for s in range(8)]
    trials = [(e, t) for e in enrolled for t in tests]  # 8 targets, 56 non-targets
    pd.DataFrame(trials, columns=["enrollment", "test"]).to_csv(
        tmp_path / "trials.tsv", sep="\t", index=False
    )
    return tmp_path, bits


@pytest.mark.difference("BA-scorer-pt")
def test_reference_em_file_scores_finite_as_the_reference(corpus, tmp_path):
    root, bits = corpus
    train = [f"spk{s}/rec{r}" for s in range(N_SPEAKERS) for r in range(PER_SPEAKER - 2)]
    stats = np.zeros((N_SPEAKERS, N_ATTRIBUTES, 2))
    for item in train:
        b = bits[item].astype(float)
        speaker = int(item.split("/")[0][3:])
        stats[speaker, :, 0] += b
        stats[speaker, :, 1] += 1 - b
    buffers = reference_em(stats)
    assert buffers["p"][0] == buffers["q"][0] == 0.0 and buffers["p"][1] == buffers["q"][1] == 1.0
    torch.save(reference_module_state(buffers), tmp_path / "scorer.pt")
    out = tmp_path / "out"
    args = ["--vectors-dir", root / "vectors", "--save-dir", out]
    assert score_test(root, *args, f"scorer.checkpoint_path={tmp_path / 'scorer.pt'}") == 0
    scores = pd.read_csv(out / "scores.csv", sep="\t")

    def counts(ids):
        b = np.stack([bits[i] for i in ids]).astype(float)
        return np.stack([b, 1 - b], axis=-1)

    expected = reference_maxllr_scores(buffers, counts(scores.enrollment), counts(scores.test))
    assert np.all(np.isfinite(expected)) and len(expected) == 64
    np.testing.assert_allclose(scores.scores, expected, rtol=1e-9, atol=1e-9)
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["n_target"], metrics["n_nontarget"], metrics["n_scored"]) == (8, 56, 64)
