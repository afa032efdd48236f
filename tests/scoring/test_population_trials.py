"""Per-trial populations (`score test --population`): each trial's scores equal, by value,
the beta scorer adapted to the population without that trial's speakers and recordings;
the smallest per-trial population is size-checked; explanations use each trial's alpha."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from balr.data.trials import Trials
from balr.errors import DataError
from balr.population import Population, adapt_to_population, exclude_case
from balr.scoring.beta import BetaScorer
from balr.scoring.population_trials import TrialPopulations, TrialwiseBeta, beta_bit_parts
from balr.scoring.trials import TrialCells, score_trials

N_ATTRIBUTES = 40
N_SPEAKERS, PER_SPEAKER = 8, 4


def _scorer(rng) -> BetaScorer:
    scorer = BetaScorer()
    scorer.alpha_ = rng.uniform(0.2, 5.0, (N_ATTRIBUTES, 2))
    return scorer


def _corpus(rng, labelled: bool = True):
    """8 speakers x 4 recordings: ids, speakers, counts `(recordings, attributes, 2)`."""
    ids = [f"s{s}/r{r}" for s in range(N_SPEAKERS) for r in range(PER_SPEAKER)]
    speakers = [f"s{s}" if labelled else None for s in range(N_SPEAKERS) for _ in range(4)]
    rates = np.where(rng.random((N_SPEAKERS, N_ATTRIBUTES)) < 0.3, 0.85, 0.1)
    bits = rng.random((len(ids), N_ATTRIBUTES)) < np.repeat(rates, PER_SPEAKER, axis=0)
    return ids, speakers, np.stack([bits, ~bits], axis=2).astype(np.float64)


def _trials(pairs: list[tuple[list[str], list[str]]]) -> Trials:
    frame = pd.DataFrame([(",".join(e), ",".join(t)) for e, t in pairs], columns=["e", "t"])
    return Trials(frame, [list(e) for e, _ in pairs], [list(t) for _, t in pairs])


def _cells(trials: Trials, ids: list[str]) -> TrialCells:
    row = {item: i for i, item in enumerate(ids)}
    return TrialCells(
        [[row[i] for i in cell] for cell in trials.enrollment],
        [[row[i] for i in cell] for cell in trials.test],
    )


def _one_by_one(scorer, population, trials, speaker_of, vectors, cells) -> np.ndarray:
    """Each trial scored alone with `adapt_to_population` on the population without its
    speakers and recordings (the definition)."""
    scores = []
    for j, (enroll, test) in enumerate(zip(trials.enrollment, trials.test, strict=True)):
        ids = {*enroll, *test}
        left = exclude_case(population, ids, {speaker_of[i] for i in ids} - {None})
        adapted = adapt_to_population(scorer, left)[0]
        scores.append(score_trials(adapted, vectors, cells.one(j))[0])
    return np.array(scores)


def test_bit_tables_equal_the_beta_scorers_table():
    scorer = _scorer(np.random.default_rng(3))
    mixed, active, inactive = beta_bit_parts(scorer.alpha_)
    table = np.stack([mixed + inactive, mixed, mixed, mixed + active], axis=1)
    np.testing.assert_allclose(table, scorer.bit_table().reshape(-1, 4), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("labelled", [True, False])
def test_each_trial_equals_adapting_to_the_population_without_its_speakers(labelled):
    rng = np.random.default_rng(7)
    ids, speakers, vectors = _corpus(rng, labelled)
    scorer = _scorer(rng)
    population = Population("own", tuple(ids), tuple(speakers), vectors[..., 0])
    pairs = [([f"s{s}/r0"], [f"s{s}/r1"]) for s in range(N_SPEAKERS)]  # same speaker
    pairs += [([f"s{s}/r2"], [f"s{(s + 3) % 8}/r3"]) for s in range(N_SPEAKERS)]  # different
    pairs += [([f"s{s}/r2"], [f"s{(s + 3) % 8}/r0"]) for s in range(N_SPEAKERS)]  # same sets
    trials = _trials(pairs)
    speaker_of = dict(zip(ids, speakers, strict=True))
    cells = _cells(trials, ids)
    pops = TrialPopulations.of_trials(population, trials, speaker_of)
    trialwise = TrialwiseBeta(scorer, pops)
    expected = _one_by_one(scorer, population, trials, speaker_of, vectors, cells)
    np.testing.assert_allclose(trialwise.score(vectors, cells, chunk=5), expected, rtol=1e-10)
    recordings, n_speakers = pops.trial_sizes()
    if labelled:  # same speaker: 4 left out of 32; two speakers: 8
        assert list(recordings[:16]) == [28] * 8 + [24] * 8 and list(n_speakers[:9]) == [7] * 8 + [
            6
        ]
        assert len(set(pops.keys)) == 16  # the 3rd block shares the 2nd's speaker pairs
    else:  # each trial's own two recordings only
        assert set(recordings) == {30} and n_speakers is None
    # explanations: per-attribute terms with each trial's own alpha, summing to the score
    chunks = list(trialwise.explain(vectors, cells, chunk=7))
    terms = np.concatenate([c[1] for c in chunks])
    np.testing.assert_allclose(terms.sum(axis=1), expected, rtol=1e-10)
    first_alpha = np.stack([chunks[0][4]["alpha_0"][0], chunks[0][4]["alpha_1"][0]], axis=1)
    left = exclude_case(population, {"s0/r0", "s0/r1"}, {speaker_of["s0/r0"]} - {None})
    np.testing.assert_allclose(first_alpha, adapt_to_population(scorer, left)[0].alpha_)


def test_several_recordings_per_side_equal_the_definition():
    rng = np.random.default_rng(11)
    ids, speakers, vectors = _corpus(rng)
    scorer = _scorer(rng)
    population = Population("own", tuple(ids), tuple(speakers), vectors[..., 0])
    pairs = [(["s0/r0", "s0/r1"], ["s0/r2"]), (["s1/r0", "s1/r1", "s1/r2"], ["s5/r3", "s5/r0"])]
    trials = _trials(pairs)
    speaker_of = dict(zip(ids, speakers, strict=True))
    cells = _cells(trials, ids)
    trialwise = TrialwiseBeta(scorer, TrialPopulations.of_trials(population, trials, speaker_of))
    expected = _one_by_one(scorer, population, trials, speaker_of, vectors, cells)
    np.testing.assert_allclose(trialwise.score(vectors, cells), expected, rtol=1e-10)


def test_the_smallest_per_trial_population_is_checked_and_named():
    rng = np.random.default_rng(5)
    ids, speakers, vectors = _corpus(rng)
    # 6 speakers x 4 = 24 recordings: a same-speaker trial leaves 20 of 5, a pair 16 of 4
    population = Population("pop.csv", tuple(ids[:24]), tuple(speakers[:24]), vectors[:24, :, 0])
    trials = _trials([(["s0/r0"], ["s0/r1"]), (["s1/r0"], ["s2/r0"]), (["s3/r0"], ["s7/r0"])])
    pops = TrialPopulations.of_trials(population, trials, dict(zip(ids, speakers, strict=True)))
    pops.subset(np.array([True, False, True])).check_size(str)  # 20 of 5, 20 of 5: enough
    with pytest.raises(DataError) as error:
        pops.check_size(lambda j: f"{j + 1} (E vs T)")
    assert str(error.value) == (
        "--population pop.csv: 16 recordings of 4 speakers for trial 2 (E vs T) once its "
        "speakers and recordings are left out; at least 20 recordings of 5 or more other "
        "speakers are needed"
    )
    assert pops.record()["per_trial"] == {
        "left_out": "each trial's own speakers and recordings",
        "min_recordings": 16,
        "max_recordings": 20,
        "min_speakers": 4,
        "n_trials_reduced": 3,
    }
    assert pops.describe() == (
        "population pop.csv (24 recordings, 6 speakers; 16-20 per trial without its own speakers)"
    )
