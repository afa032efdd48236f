"""Explanations: per-attribute terms sum to the score; top attributes; CSV and PNG outputs."""

import numpy as np
import pandas as pd
import pytest

from balr.scoring import make_scorer
from balr.scoring.explain import top_attributes, write_explanations
from balr.scoring.plots import plot_explanation
from balr.scoring.trials import TrialCells, score_trials


@pytest.fixture(scope="module")
def reference():
    rng = np.random.default_rng(0)
    active = rng.binomial(5, np.where(rng.random((40, 24)) < 0.4, 0.9, 0.1))
    return np.stack([active, 5 - active], axis=-1).astype(float)


@pytest.mark.parametrize("name", ["dna", "speech", "maxllr", "beta"])
def test_terms_sum_to_score(name, reference):
    scorer = make_scorer(name).fit(reference)
    rng = np.random.default_rng(1)
    enroll, test = rng.integers(0, 2, (50, 24)), rng.integers(0, 2, (50, 24))
    terms = scorer.explain(enroll, test)
    assert terms.shape == (50, 24)
    np.testing.assert_allclose(terms.sum(axis=1), scorer.score(enroll, test), atol=1e-12)
    # the terms differ across attributes: an explanation, not a constant share of the score
    assert np.ptp(terms, axis=1).min() > 0


def test_top_attributes_order():
    terms = np.array([[0.5, -2.0, 3.0, -0.1, 1.0]])
    high, low = top_attributes(terms, 2)
    np.testing.assert_array_equal(high, [[2, 4]])  # 3.0 then 1.0
    np.testing.assert_array_equal(low, [[1, 3]])  # -2.0 then -0.1


def test_explanations_csv(reference, tmp_path):
    scorer = make_scorer("maxllr").fit(reference)
    rng = np.random.default_rng(2)
    bits = rng.integers(0, 2, (10, 24)).astype(np.uint8)
    cells = TrialCells([[0], [1], [2]], [[3], [1], [4]])
    path = tmp_path / "explanations.csv"
    write_explanations(
        path, scorer, bits, cells, ["r0", "r1", "r2"], ["r3", "r1", "r4"], k=3, chunk=2
    )
    frame = pd.read_csv(path)
    assert len(frame) == 3 * 2 * 3  # trials x directions x k
    scores = score_trials(scorer, bits, cells)
    first = frame[frame.trial == 1]
    np.testing.assert_allclose(first.score.iloc[0], scores[0])
    same = first[first.direction == "same"].sort_values("rank")
    terms = scorer.explain(bits[[0]], bits[[3]])[0]
    np.testing.assert_allclose(same.llr, np.sort(terms)[::-1][:3])
    attribute = int(same.attribute.iloc[0])
    assert same.enroll_a.iloc[0] == bits[0, attribute] and same.test_a.iloc[0] == bits[3, attribute]
    np.testing.assert_allclose(same.p.iloc[0], scorer.p_[attribute])
    assert set(frame.columns) >= {"f", "p", "q", "enrollment", "test", "llr"}
    assert (frame[frame.trial == 2].enrollment == "r1").all()


def test_explanation_plot(reference, tmp_path):
    scorer = make_scorer("beta").fit(reference)
    e, t = np.ones(24), np.zeros(24)
    plot_explanation(scorer.explain(e[None], t[None])[0], e, t, tmp_path / "trial.png", k=5)
    assert (tmp_path / "trial.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
