"""Reference BA-LR `scorer.pt` files (plain state dicts of buffers) load into balr scorers
that give the same scores."""

from collections import OrderedDict

import numpy as np
import pytest
import torch

from balr.data.vectors import bits_to_counts
from balr.errors import ModelError
from balr.scoring import Scorer, make_scorer


def reference_stats(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    recordings = rng.integers(2, 8, size=(120, 1))
    active = rng.binomial(recordings, rng.beta(0.4, 1.5, size=(120, 32)))
    return np.stack([active, recordings - active], axis=-1).astype(np.float64)


def reference_buffers(scorer) -> OrderedDict:
    """What the reference library saves for this fitted scorer (float32 buffers; typicality
    models also save `llrs[x, i, y] = log LR_i(e = 1 - x, t = 1 - y)`)."""
    if scorer.name == "beta":
        arrays = {"alpha": scorer.alpha_}
    elif scorer.name == "maxllr":
        arrays = {"f": scorer.f_, "p": scorer.p_, "q": scorer.q_}
    else:
        table = scorer.bit_table()  # (attribute, e, t)
        llrs = np.flip(table.transpose(1, 0, 2), axis=(0, 2))
        arrays = {"typicality": scorer.typicality_, "dropout": scorer.dropout_, "llrs": llrs}
    return OrderedDict(
        (k, torch.tensor(np.ascontiguousarray(v), dtype=torch.float32)) for k, v in arrays.items()
    )


@pytest.mark.parametrize("name", ["beta", "maxllr", "dna", "speech"])
def test_reference_scorer_pt_gives_the_same_scores(tmp_path, name):
    fitted = make_scorer(name).fit(reference_stats())
    path = tmp_path / "scorer.pt"
    torch.save(reference_buffers(fitted), path)
    loaded = Scorer.load(path)
    assert loaded.name == name
    rng = np.random.default_rng(1)
    enroll = bits_to_counts(rng.integers(0, 2, size=(50, 32))).astype(np.float64)
    test = bits_to_counts(rng.integers(0, 2, size=(50, 32))).astype(np.float64)
    np.testing.assert_allclose(loaded.score(enroll, test), fitted.score(enroll, test), atol=1e-3)


def test_unknown_buffers_and_foreign_tables_are_refused(tmp_path):
    path = tmp_path / "scorer.pt"
    torch.save(OrderedDict(weights=torch.zeros(3)), path)
    with pytest.raises(ModelError, match="neither a balr scorer checkpoint nor a reference"):
        Scorer.load(path)
    buffers = reference_buffers(make_scorer("dna").fit(reference_stats()))
    buffers["llrs"] = buffers["llrs"] + 0.5  # made with another drop-in
    torch.save(buffers, path)
    with pytest.raises(ModelError, match="match neither the dna nor the speech formula"):
        Scorer.load(path)
