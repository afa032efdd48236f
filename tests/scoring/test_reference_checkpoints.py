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
@pytest.mark.difference("BA-scorer-pt")
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


def reference_maxllr_scores(buffers: OrderedDict, enroll: np.ndarray, test: np.ndarray):
    """The reference `MaxLLRScorer._score`: `log L(e + t) - log L(e) - log L(t)` summed, with
    `L(a, n) = f p**a (1-p)**n + (1-f) q**a (1-q)**n` (so `0**0 = 1`)."""
    f, p, q = (buffers[k].double() for k in ("f", "p", "q"))

    def likelihood(a, n):
        return f * p**a * (1 - p) ** n + (1 - f) * q**a * (1 - q) ** n

    e, t = torch.from_numpy(enroll), torch.from_numpy(test)
    ratios = (
        torch.log(likelihood(e[..., 0] + t[..., 0], e[..., 1] + t[..., 1]))
        - torch.log(likelihood(e[..., 0], e[..., 1]))
        - torch.log(likelihood(t[..., 0], t[..., 1]))
    )
    return ratios.sum(dim=1).numpy()


@pytest.mark.difference("BA-scorer-pt")
def reference_module_state(buffers: OrderedDict) -> OrderedDict:
    """`state_dict()` of a module holding `buffers` as the reference's MaxLLRScorer does
    (`register_buffer`, then the fitted float64 tensors assigned over them)."""
    module = torch.nn.Module()
    for name, value in buffers.items():
        module.register_buffer(name, torch.zeros(len(value)))
        setattr(module, name, value)
    return module.state_dict()


def test_reference_maxllr_with_probabilities_at_0_and_1_scores_as_the_reference(tmp_path):
    """A reference fit leaves p = q = 0 on a never-active attribute and p or q at exactly
    0 or 1 elsewhere; the reference's `p ** a` makes those terms finite, and so must balr's."""
    buffers = OrderedDict(  # the reference's fitted buffers are float64 (its EM runs in it)
        f=torch.tensor([0.5, 0.3, 0.6, 0.4, 0.25], dtype=torch.float64),
        p=torch.tensor([1.0, 0.8, 1.0, 0.0, 0.9], dtype=torch.float64),
        q=torch.tensor([0.0, 0.0, 0.3, 0.0, 0.1], dtype=torch.float64),
    )
    path = tmp_path / "scorer.pt"
    torch.save(reference_module_state(buffers), path)  # as the reference's save_model
    scorer = Scorer.load(path)
    assert scorer.name == "maxllr"
    # bits per trial; attribute 0 (p = 1, q = 0) only agreeing bits, attribute 3 never active
    enroll_bits = np.array([[1, 1, 1, 0, 1], [0, 0, 1, 0, 0], [1, 1, 0, 0, 1], [0, 1, 1, 0, 0]])
    test_bits = np.array([[1, 0, 1, 0, 1], [0, 1, 0, 0, 1], [1, 1, 1, 0, 0], [0, 0, 1, 0, 0]])
    enroll, test = bits_to_counts(enroll_bits), bits_to_counts(test_bits)
    expected = reference_maxllr_scores(buffers, enroll, test)
    assert np.all(np.isfinite(expected))
    # trial 1 by hand: log LR of attributes 0..4 (both bits 1 / 1,0 / 1,1 / 0,0 / 1,1)
    #   a0: log(0.5 / 0.25) ; a1: log(0.3*0.8*0.2 / (0.24 * 0.76)) ; a3: log(1) = 0
    a2 = np.log((0.6 + 0.4 * 0.09) / (0.6 + 0.4 * 0.3) ** 2)
    a4 = np.log((0.25 * 0.81 + 0.75 * 0.01) / (0.25 * 0.9 + 0.75 * 0.1) ** 2)
    by_hand = np.log(2.0) + np.log(0.048 / (0.24 * 0.76)) + a2 + 0.0 + a4
    np.testing.assert_allclose(expected[0], by_hand, rtol=1e-12)
    # an infinite bit-pair log-LR (attribute 0, bits 1 and 0) rules out the bilinear form
    assert scorer.pairs(np.concatenate([enroll_bits, test_bits]).astype(np.float32)) is None
    for scores in (
        scorer.score(enroll, test),
        scorer.explain(enroll, test).sum(axis=1),
        scorer.score_cells(enroll, test),  # lookup tables of the log marginal
    ):
        np.testing.assert_allclose(scores, expected, rtol=1e-12, atol=1e-12)


def test_matrix_of_a_scorer_with_an_infinite_bit_pair_term_is_a_model_error(tmp_path):
    from balr.scoring.pairs import matrix_scores

    buffers = OrderedDict(
        (name, torch.tensor([value, 0.5], dtype=torch.float64))
        for name, value in (("f", 0.5), ("p", 1.0), ("q", 0.0))
    )
    torch.save(buffers, tmp_path / "scorer.pt")
    scorer = Scorer.load(tmp_path / "scorer.pt")
    bits = bits_to_counts(np.array([[1, 0], [0, 1]])).astype(np.float64)
    with pytest.raises(ModelError, match="'maxllr' has an infinite log-LR for an attribute"):
        matrix_scores(scorer, bits)
