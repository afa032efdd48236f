"""The relevant population: typicality adaptation by value, case exclusion, size check,
safe files, and `score test --population` on generated BA vectors sharing one channel."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from balr.data import AudioDataset, load_trials
from balr.errors import DataError, ModelError
from balr.population import (
    MIN_RECORDINGS,
    Population,
    PopulationAdaptation,
    adapt_to_population,
    check_population_size,
    exclude_case,
    read_population,
)
from balr.scoring.beta import BetaScorer
from balr.scoring.config import ScoreSettings
from balr.scoring.jobs import TrialScoring, score_trials_file
from balr.scoring.pairs import matrix_scores
from balr.scoring.trials import score_trials, trial_vectors


def test_adapted_alpha_moves_the_rate_and_keeps_the_precision():
    bits = np.zeros((20, 2))
    bits[:10, 0] = 1  # rate 0.5
    bits[:2, 1] = 1  # rate 0.1
    adaptation = PopulationAdaptation(shrinkage=10).fit(bits)
    alpha = adaptation.adapted_alpha(np.array([[2.0, 8.0], [5.0, 5.0]]))
    # m = (20 p + 10 m_ref) / 30: (10 + 2) / 30 = 0.4 and (2 + 5) / 30 = 7/30; precision 10
    np.testing.assert_allclose(alpha, [[4.0, 6.0], [70 / 30, 230 / 30]])


def test_no_shrinkage_uses_the_population_rate_alone():
    bits = np.array([[1, 0], [1, 0], [0, 0], [1, 1]], dtype=float)
    alpha = PopulationAdaptation(shrinkage=0).fit(bits).adapted_alpha(np.array([[1.0, 1.0]] * 2))
    np.testing.assert_allclose(alpha[:, 0] / alpha.sum(1), [0.75, 0.25])


def test_adapt_returns_a_copy_and_refuses_a_scorer_without_typicality():
    scorer = BetaScorer()
    scorer.alpha_ = np.array([[1.0, 3.0]] * 3)
    adapted = PopulationAdaptation(0).fit(np.ones((4, 3))).adapt(scorer)
    assert adapted is not scorer and scorer.alpha_[0, 0] == 1.0
    np.testing.assert_allclose(adapted.alpha_[:, 0], 4.0 * (1 - 1e-4))
    from balr.scoring.cosine import CosineScorer

    with pytest.raises(Exception, match="adapts the beta scorer"):
        PopulationAdaptation().fit(np.ones((4, 3))).adapt(CosineScorer())


def _population(n_speakers: int, per_speaker: int) -> Population:
    ids = tuple(f"p{s}/r{r}" for s in range(n_speakers) for r in range(per_speaker))
    speakers = tuple(f"p{s}" for s in range(n_speakers) for _ in range(per_speaker))
    return Population("pop.csv", ids, speakers, np.zeros((len(ids), 3)))


def test_case_recordings_and_speakers_are_left_out():
    population = exclude_case(_population(6, 4), {"p0/r1"}, {"p2"})
    assert len(population.ids) == 24 - 1 - 4 and population.n_speakers == 5
    assert population.excluded == ("p0/r1", "p2/r0", "p2/r1", "p2/r2", "p2/r3")
    assert population.describe() == (
        "population pop.csv (19 recordings, 5 speakers; 5 left out as case recordings/speakers)"
    )


def test_too_small_a_population_is_one_clear_error():
    check_population_size(_population(5, 4))  # 20 recordings of 5 speakers: enough
    with pytest.raises(DataError) as error:
        check_population_size(exclude_case(_population(5, 4), set(), {"p4"}))
    assert str(error.value) == (
        "--population pop.csv: 16 recordings of 4 speakers after leaving out 4 case "
        f"recordings; at least {MIN_RECORDINGS} recordings of 5 or more other speakers are needed"
    )


def test_saved_adaptation_loads_the_same_and_damage_is_one_line(tmp_path):
    adaptation = PopulationAdaptation(30).fit(np.eye(25, 4))
    path = adaptation.save(tmp_path / "population.safetensors")
    loaded = PopulationAdaptation.load(path)
    np.testing.assert_array_equal(loaded.activation_rate_, adaptation.activation_rate_)
    assert (loaded.shrinkage, loaded.n_recordings_) == (30.0, 25)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ModelError, match="population.safetensors: not a readable") as error:
        PopulationAdaptation.load(path)
    assert "\n" not in str(error.value)


def _score(root, checkpoint, out, population=None):
    options = TrialScoring(
        ScoreSettings.from_overrides([f"scorer.checkpoint_path={checkpoint}"]),
        save_dir=out,
        exist_ok=True,
        vectors_dir=root / "vectors",
        population=population,
    )
    return score_trials_file(root / "case.csv", root / "trials.tsv", options)


def test_score_test_with_a_population_lowers_different_speaker_lrs(channel_case, tmp_path):
    root, checkpoint = channel_case
    plain = _score(root, checkpoint, tmp_path / "plain")
    adapted = _score(root, checkpoint, tmp_path / "adapted", root / "pop.csv")
    before = pd.read_csv(tmp_path / "plain" / "scores.csv", sep="\t")["scores"].to_numpy()
    after = pd.read_csv(tmp_path / "adapted" / "scores.csv", sep="\t")["scores"].to_numpy()
    # the shared channel makes every different-speaker pair share 12 active attributes:
    # the population's typicality of those attributes takes that evidence away
    assert after[8:].mean() < before[8:].mean() - 5
    assert plain.population is None
    metrics = json.loads((tmp_path / "adapted" / "metrics.json").read_text())
    record = metrics["population"]
    assert {key: record[key] for key in ("source", "n_recordings", "n_speakers", "excluded")} == {
        "source": str(root / "pop.csv"),
        "n_recordings": 24,
        "n_speakers": 6,
        "excluded": [],
    }
    assert record["per_trial"]["n_trials_reduced"] == 0 and len(record["sha256"]) == 64
    run = json.loads((tmp_path / "adapted" / "run.json").read_text())
    assert run["population_record"] == record  # the run record names it too
    assert "adapted to the population" in adapted.summary()
    assert f"({24} recordings, 6 speakers)" in adapted.summary()


def test_a_population_of_the_case_speakers_only_is_refused(channel_case, tmp_path):
    root, checkpoint = channel_case
    # 8 speakers x 2 recordings: a different-speaker trial leaves 12 of 6 speakers
    with pytest.raises(DataError, match="12 recordings of 6 speakers for trial 9 "):
        _score(root, checkpoint, tmp_path / "own", root / "case.csv")


def test_cli_score_test_population_names_it(channel_case, tmp_path):
    from typer.testing import CliRunner

    from balr.cli.main import app

    root, checkpoint = channel_case
    args = ["score", "test", root / "case.csv", root / "trials.tsv", "--vectors-dir",
            root / "vectors", "--population", root / "pop.csv", "--save-dir", tmp_path / "cli",
            f"scorer.checkpoint_path={checkpoint}"]  # fmt: skip
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert f"adapted to the population {root / 'pop.csv'} (24 recordings, 6 speakers)" in (
        result.output.replace("\n", " ")
    )


def test_score_matrix_with_a_population_writes_population_json(channel_case, tmp_path):
    from balr.scoring.jobs import MatrixScoring, score_matrix_file

    root, checkpoint = channel_case
    settings = ScoreSettings.from_overrides([f"scorer.checkpoint_path={checkpoint}"])
    run = MatrixScoring(settings, tmp_path / "plain", vectors_dir=root / "vectors")
    plain = score_matrix_file(root / "case.csv", run)
    adapted = score_matrix_file(
        root / "case.csv", replace(run, save_dir=tmp_path / "adapted", population=root / "pop.csv")
    )
    before, after = np.load(plain.path), np.load(adapted.path)
    speaker = np.repeat(np.arange(8), 2)
    other = speaker[:, None] != speaker[None, :]
    assert after[other].mean() < before[other].mean() - 5
    record = json.loads((tmp_path / "adapted" / "population.json").read_text())
    assert (record["n_recordings"], record["n_speakers"]) == (24, 6)
    assert record["per_cell"] == {"left_out": "each cell's own speakers and recordings",
        "min_recordings": 24, "max_recordings": 24, "min_speakers": 6,
        "n_cells_reduced": 0}  # fmt: skip
    assert adapted.summary().endswith(
        f"(adapted to the population {root / 'pop.csv'} (24 recordings, 6 speakers))"
    )
    # no case speaker in the population: every cell is scored against all of it
    dataset = AudioDataset.from_path(root / "case.csv", output_dir=root / "vectors")
    full = read_population(
        AudioDataset.from_path(root / "pop.csv", output_dir=root / "vectors"), "pop"
    )
    scorer = adapt_to_population(BetaScorer.load(checkpoint), full)[0]
    expected = matrix_scores(scorer, dataset.stack_vectors("ba")[1])
    np.testing.assert_allclose(after, expected, rtol=1e-10, atol=1e-10)


def test_score_matrix_judges_each_cell_without_its_own_speakers(channel_case, tmp_path):
    """`score matrix --population` with the case's other speakers (and 6 more): cell (i, j)
    is scored, by value, with the beta adapted to the population without the speakers and
    recordings of i and j, as `score test` does per trial."""
    from balr.scoring.jobs import MatrixScoring, score_matrix_file

    root, checkpoint = channel_case
    rows = pd.concat([pd.read_csv(root / "case.csv"), pd.read_csv(root / "pop.csv")])
    rows.to_csv(root / "own_matrix.csv", index=False)  # 14 speakers, 40 recordings
    settings = ScoreSettings.from_overrides([f"scorer.checkpoint_path={checkpoint}"])
    run = MatrixScoring(settings, tmp_path / "own", vectors_dir=root / "vectors",
                        population=root / "own_matrix.csv")  # fmt: skip
    result = score_matrix_file(root / "case.csv", run)
    scores = np.load(result.path)
    dataset = AudioDataset.from_path(root / "case.csv", output_dir=root / "vectors")
    full = read_population(
        AudioDataset.from_path(root / "own_matrix.csv", output_dir=root / "vectors"), "own"
    )
    vectors, beta = dataset.stack_vectors("ba")[1], BetaScorer.load(checkpoint)
    for i, j in [(0, 0), (0, 1), (0, 2), (5, 14), (15, 3)]:
        left = {dataset.items[i].speaker, dataset.items[j].speaker}
        ids = {dataset.items[i].id, dataset.items[j].id}
        adapted = adapt_to_population(beta, exclude_case(full, ids, left))[0]
        expected = adapted.pairs(vectors).score([i], [j])[0]
        assert scores[i, j] == pytest.approx(expected, rel=1e-10), (i, j)
    record = json.loads((tmp_path / "own" / "population.json").read_text())
    # same speaker (the diagonal too): 1 speaker x 2 recordings left out; different: 2 x 2
    assert record["per_cell"] == {"left_out": "each cell's own speakers and recordings",
        "min_recordings": 36, "max_recordings": 38, "min_speakers": 12,
        "n_cells_reduced": 256}  # fmt: skip
    assert result.summary() == (
        f"16 x 16 beta scores in {result.path} (adapted to the population "
        f"{root / 'own_matrix.csv'} (40 recordings, 14 speakers; 36-38 per cell without its "
        "own speakers))"
    )
    with pytest.raises(DataError) as error:  # the case alone: 12 recordings per cell
        score_matrix_file(root / "case.csv", replace(run, population=root / "case.csv"))
    assert str(error.value) == (
        f"--population {root / 'case.csv'}: 12 recordings of 6 speakers for cell "
        "case/s12/r0 vs case/s13/r0 once its speakers and recordings are left out; at least "
        "20 recordings of 5 or more other speakers are needed"
    )


def test_a_dataset_is_its_own_population_without_each_trials_speakers(channel_case, tmp_path):
    """`--population CASE` with the case's other speakers (and 6 more): each trial leaves out
    its own two speakers only; scores and explanations use that trial's population."""
    root, checkpoint = channel_case
    rows = pd.concat([pd.read_csv(root / "case.csv"), pd.read_csv(root / "pop.csv")])
    rows.to_csv(root / "own.csv", index=False)  # 14 speakers, 40 recordings
    options = TrialScoring(
        ScoreSettings.from_overrides([f"scorer.checkpoint_path={checkpoint}"]),
        save_dir=tmp_path / "own", vectors_dir=root / "vectors", population=root / "own.csv",
        explain=3, explain_plots=("9",),
    )  # fmt: skip
    result = score_trials_file(root / "own.csv", root / "trials.tsv", options)
    scores = pd.read_csv(tmp_path / "own" / "scores.csv", sep="\t")
    # same speaker: 1 speaker x 2 recordings left out; different: 2 x 2
    assert list(scores["population_recordings"]) == [38] * 8 + [36] * 8
    assert list(scores["population_speakers"]) == [13] * 8 + [12] * 8
    # trial 9 by definition: the beta adapted to the population without its two speakers
    dataset = AudioDataset.from_path(root / "own.csv", output_dir=root / "vectors")
    full = read_population(dataset, "own")
    trials = load_trials(root / "trials.tsv")
    enroll, test = trials.enrollment[8][0], trials.test[8][0]
    speakers = {dataset.items[dataset.index_of(i)].speaker for i in (enroll, test)}
    adapted = adapt_to_population(BetaScorer.load(checkpoint), exclude_case(full, set(), speakers))
    vectors, cells, _ = trial_vectors(dataset, trials.subset(np.arange(16) == 8), "ba")
    expected = score_trials(adapted[0], vectors, cells)[0]
    assert scores["scores"][8] == pytest.approx(expected, rel=1e-10)
    explained = pd.read_csv(tmp_path / "own" / "explanations.csv")
    assert explained.loc[explained.trial == 9, "score"].iloc[0] == pytest.approx(expected, 1e-10)
    assert "36-38 per trial without its own speakers" in result.summary()
    assert (tmp_path / "own" / "explanation_trial9.png").stat().st_size > 0
