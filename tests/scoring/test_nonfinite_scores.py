"""`score test` with a scorer that gives non-finite scores stops with one line naming the
trials (exit 1, nothing written), instead of exit 0 without metrics."""

from collections import OrderedDict

import torch

from tests.scoring.conftest import N_ATTRIBUTES, score_test


def test_non_finite_scores_are_an_error_naming_the_trials(corpus, tmp_path, capsys):
    # a reference maxllr scorer.pt with p = 1, q = 0: an attribute set on one side only has
    # likelihood 0, log LR -inf (the reference's own formula gives -inf too)
    buffers = OrderedDict(
        (name, torch.full((N_ATTRIBUTES,), value, dtype=torch.float64))
        for name, value in (("f", 0.5), ("p", 1.0), ("q", 0.0))
    )
    checkpoint = tmp_path / "scorer.pt"
    torch.save(buffers, checkpoint)
    out = tmp_path / "out"
    args = ["--vectors-dir", corpus / "vectors", "--save-dir", out]
    assert score_test(corpus, *args, f"scorer.checkpoint_path={checkpoint}") == 1
    err = capsys.readouterr().err.strip()
    # trials 1-9 compare a recording with itself (finite); 10-18 two speakers' recordings
    assert len(err.splitlines()) == 1, err
    assert f"scorer 'maxllr' from {checkpoint}" in err
    assert "non-finite scores (NaN or infinite) for 9 of 18 trials: trials 10 (spk0/rec2 :: " in err
    assert "and 6 more" in err
    assert not out.exists()  # no scores.csv without metrics
