"""Save/load (safetensors and plain .pt state dict), and unfitted scorers are errors."""

import numpy as np
import pytest
import torch

from balr.errors import ModelError
from balr.scoring import SCORERS, Scorer, make_scorer
from balr.scoring.base import CHECKPOINT_NAME


@pytest.fixture(scope="module")
def reference():
    rng = np.random.default_rng(0)
    active = rng.binomial(4, rng.uniform(0.1, 0.9, (30, 16)))
    return np.stack([active, 4 - active], axis=-1).astype(float)


@pytest.mark.parametrize("name", sorted(SCORERS))
@pytest.mark.parametrize("suffix", ["", ".pt", ".safetensors"])
def test_round_trip(name, suffix, reference, tmp_path):
    params = {"maxllr": {"f": 0.1, "n_iterations": 20}, "dna": {"drop_in": 0.2}}.get(name, {})
    scorer = make_scorer(name, **params).fit(reference)
    path = scorer.save(tmp_path / f"model{suffix}" if suffix else tmp_path)
    assert path.name == (CHECKPOINT_NAME if not suffix else f"model{suffix}")
    loaded = Scorer.load(path)
    assert type(loaded) is type(scorer) and loaded.get_params() == scorer.get_params()
    rng = np.random.default_rng(1)
    e, t = rng.integers(0, 2, (20, 16)), rng.integers(0, 2, (20, 16))
    np.testing.assert_array_equal(loaded.score(e, t), scorer.score(e, t))


@pytest.mark.parametrize("name", ["dna", "speech", "maxllr", "beta"])
def test_unfitted_is_an_error(name, tmp_path):
    scorer = make_scorer(name)
    with pytest.raises(ModelError, match="not fitted"):
        scorer.score(np.zeros((1, 4)), np.zeros((1, 4)))
    with pytest.raises(ModelError, match="not fitted"):
        scorer.save(tmp_path)


def test_checkpoint_without_state_is_an_error(tmp_path):
    path = tmp_path / "empty.pt"
    torch.save({"scorer": "beta", "params": {}, "state": {}}, path)
    with pytest.raises(ModelError, match="not fitted"):
        Scorer.load(path)
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="junk.safetensors"):
        Scorer.load(tmp_path / "junk.safetensors")
    with pytest.raises(ModelError, match="not found"):
        Scorer.load(tmp_path / "missing.safetensors")


def test_load_from_a_scorer_class_checks_the_kind(reference, tmp_path):
    path = make_scorer("dna").fit(reference).save(tmp_path)
    assert type(Scorer.load(path)) is SCORERS["dna"]
    assert type(SCORERS["dna"].load(path)) is SCORERS["dna"]
    with pytest.raises(ModelError, match="holds a 'dna' scorer, not a BetaScorer"):
        SCORERS["beta"].load(path)
