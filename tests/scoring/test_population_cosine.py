"""`score test scorer=cosine scorer.vectors=emb --population`: each trial's cosine equals,
by value, the cosine of embeddings centred on the population without that trial's speakers
and recordings (`EmbeddingCentring`); a shared channel direction stops inflating
different-speaker cosines; the population is recorded as embeddings; scorers without an
adaptation are refused before anything is read."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from balr import defaults
from balr.data import AudioDataset
from balr.data.trials import Trials
from balr.embedding_centring import EmbeddingCentring
from balr.errors import ConfigError, DataError
from balr.population import Population, exclude_case
from balr.scoring.config import ScoreSettings
from balr.scoring.cosine import CosineScorer
from balr.scoring.jobs import MatrixScoring, TrialScoring, score_matrix_file, score_trials_file
from balr.scoring.population_cosine import TrialwiseCentredCosine
from balr.scoring.population_trials import TrialPopulations
from balr.scoring.selection import CalibrationChoice
from balr.scoring.trials import TrialCells

DIM = 256  # the shipped cosine calibration's (GE2E) embeddings
COSINE_EMB = ["scorer=cosine", "scorer.vectors=emb"]


def _embeddings(rng, n_speakers: int, per_speaker: int, channel, scale: float = 1.0):
    """Recordings of speakers with their own direction (`scale` per dimension), noise of
    half that, plus a shared `channel`."""
    voices = scale * rng.normal(size=(n_speakers, DIM))
    noise = 0.5 * scale * rng.normal(size=(n_speakers * per_speaker, DIM))
    return np.repeat(voices, per_speaker, axis=0) + noise + channel


def _trials(pairs: list[tuple[list[str], list[str]]]) -> Trials:
    frame = pd.DataFrame([(",".join(e), ",".join(t)) for e, t in pairs], columns=["e", "t"])
    return Trials(frame, [list(e) for e, _ in pairs], [list(t) for _, t in pairs])


def _moved_cosine(population, enroll, test, row_of, vectors, target=0.0):
    """The definition: the population without the trial's speakers and recordings gives the
    mean; each side sums its recordings moved by `target - mean`; their cosine."""
    ids = {*enroll, *test}
    left = exclude_case(population, ids, {i.split("/")[0] for i in ids})
    mean = EmbeddingCentring().fit(left.vectors).mean_
    sides = [sum(vectors[row_of[i]] - mean + target for i in side) for side in (enroll, test)]
    return float(sides[0] @ sides[1] / np.linalg.norm(sides[0]) / np.linalg.norm(sides[1]))


@pytest.mark.parametrize("moved_to", [None, "a target"])
def test_each_trial_equals_moving_by_the_population_without_its_speakers(moved_to):
    rng = np.random.default_rng(4)
    ids = [f"s{s}/r{r}" for s in range(8) for r in range(4)]
    speakers = [i.split("/")[0] for i in ids]
    vectors = _embeddings(rng, 8, 4, rng.normal(size=DIM) * 3)
    target = None if moved_to is None else rng.normal(size=DIM)
    population = Population("own", tuple(ids), tuple(speakers), vectors, kind="emb")
    pairs = [([f"s{s}/r0"], [f"s{s}/r1"]) for s in range(8)]
    pairs += [([f"s{s}/r2"], [f"s{(s + 3) % 8}/r3"]) for s in range(8)]
    pairs += [([f"s{s}/r0", f"s{s}/r1"], [f"s{(s + 1) % 8}/r2"]) for s in range(4)]  # 2 vs 1
    trials = _trials(pairs)
    row_of = {item: i for i, item in enumerate(ids)}
    cells = TrialCells(
        [[row_of[i] for i in e] for e in trials.enrollment],
        [[row_of[i] for i in t] for t in trials.test],
    )
    pops = TrialPopulations.of_trials(population, trials, dict(zip(ids, speakers, strict=True)))
    scorer = TrialwiseCentredCosine(CosineScorer(vectors="emb"), pops, target)
    scores = scorer.score(vectors, cells, chunk=5)  # several chunks
    expected = [
        _moved_cosine(population, e, t, row_of, vectors, 0.0 if target is None else target)
        for e, t in zip(trials.enrollment, trials.test, strict=True)
    ]
    np.testing.assert_allclose(scores, expected, rtol=1e-10, atol=1e-12)
    # one recording a side: the dot product of EmbeddingCentring's rows
    left = exclude_case(population, {"s0/r0", "s0/r1"}, {"s0"})
    moved = EmbeddingCentring().fit(left.vectors, target).transform(vectors[[0, 1]])
    assert scores[0] == pytest.approx(float(moved[0] @ moved[1]), abs=1e-12)


def _write_embeddings(root, name: str, vectors: np.ndarray, per_speaker: int) -> None:
    n_speakers = len(vectors) // per_speaker
    rows = [
        (f"{name}/s{s}/r{r}", f"{name}{s}") for s in range(n_speakers) for r in range(per_speaker)
    ]
    pd.DataFrame(rows, columns=["id", "speaker"]).to_csv(root / f"{name}.csv", index=False)
    dataset = AudioDataset.from_path(root / f"{name}.csv", output_dir=root / "vectors")
    with dataset.vector_writer("emb") as writer:
        for index, vector in enumerate(vectors):
            writer.put(index, vector.astype(np.float32))


@pytest.fixture(scope="module")
def channel_embeddings(tmp_path_factory):
    """A case of 8 speakers x 2 recordings and a population of 6 x 4 more, every embedding
    carrying one channel direction 2.5 times as long as a voice's (GE2E-like lengths); the
    case's trials: each speaker's two recordings, then 8 pairs of different speakers."""
    root = tmp_path_factory.mktemp("channel_emb")
    rng = np.random.default_rng(11)
    channel = 0.1 * rng.normal(size=DIM)
    _write_embeddings(root, "case", _embeddings(rng, 8, 2, channel, 0.04), 2)
    _write_embeddings(root, "pop", _embeddings(rng, 6, 4, channel, 0.04), 4)
    ids = [f"case/s{s}/r{r}" for s in range(8) for r in range(2)]
    pairs = [(ids[2 * s], ids[2 * s + 1]) for s in range(8)]
    pairs += [(ids[2 * s], ids[(2 * s + 3) % 16]) for s in range(8)]
    pd.DataFrame(pairs, columns=["enrollment", "test"]).to_csv(
        root / "trials.tsv", sep="\t", index=False
    )
    return root


def _score_cosine(root, out, population=None, overrides=COSINE_EMB, **options):
    options = TrialScoring(
        ScoreSettings.from_overrides(overrides),
        save_dir=out,
        exist_ok=True,
        vectors_dir=root / "vectors",
        population=population,
        **options,
    )
    return score_trials_file(root / "case.csv", root / "trials.tsv", options)


def _scores(folder, column="scores") -> np.ndarray:
    return pd.read_csv(folder / "scores.csv", sep="\t")[column].to_numpy()


def _vectors(root, name: str) -> np.ndarray:
    return AudioDataset.from_path(root / f"{name}.csv", output_dir=root / "vectors").stack_vectors(
        "emb"
    )[1]


def test_the_shipped_calibration_sees_the_population_moved_to_its_mean(
    channel_embeddings, tmp_path
):
    root = channel_embeddings
    _score_cosine(root, tmp_path / "plain")
    result = _score_cosine(root, tmp_path / "adapted", root / "pop.csv")
    # the shared channel makes every different-speaker pair look alike to the calibration
    assert (_scores(tmp_path / "plain")[8:] > np.log(10)).all()
    record = json.loads((tmp_path / "adapted" / "metrics.json").read_text())["population"]
    assert (record["vectors"], record["n_recordings"], record["n_speakers"]) == ("emb", 24, 6)
    assert record["adaptation"]["adapted"] is True and record["adaptation"]["bound"]["broken"]
    elub = record["adaptation"]["elub"]  # the cosine keeps the calibration's bounds
    assert elub["applied"] is False and "the cosine keeps the calibration's" in elub["reason"]
    # each embedding moved by (the shipped calibration's reference mean - the population's)
    choice = CalibrationChoice.from_file(defaults.shipped_calibration("cosine", "emb"))
    target = choice.conditions.reference_vectors_.astype(np.float64).mean(axis=0)
    moved = _vectors(root, "case") - _vectors(root, "pop").mean(axis=0) + target
    unit = moved / np.linalg.norm(moved, axis=1, keepdims=True)
    expected = [unit[2 * s] @ unit[2 * s + 1] for s in range(8)]
    expected += [unit[2 * s] @ unit[(2 * s + 3) % 16] for s in range(8)]
    np.testing.assert_allclose(_scores(tmp_path / "adapted", "raw_score"), expected, rtol=1e-6)
    after = _scores(tmp_path / "adapted")
    assert after[8:].max() < 0 and after[:8].min() > np.log(100)
    assert "adapted to the population" in result.summary()


def test_uncalibrated_cosines_are_centred_on_the_population(channel_embeddings, tmp_path):
    root = channel_embeddings
    _score_cosine(root, tmp_path / "plain", no_calibration=True)
    _score_cosine(root, tmp_path / "adapted", root / "pop.csv", no_calibration=True)
    before, after = _scores(tmp_path / "plain"), _scores(tmp_path / "adapted")
    # the channel makes different speakers' cosines high; centring brings them near 0,
    # while each speaker's own two recordings stay alike
    assert before[8:].mean() > 0.8 and abs(after[8:].mean()) < 0.25
    assert after[:8].min() > 0.6
    record = json.loads((tmp_path / "adapted" / "metrics.json").read_text())["population"]
    assert record["adaptation"]["reason"].startswith("uncalibrated scores")


@pytest.mark.parametrize(
    ("overrides", "match"),
    [(["scorer=cosine"], "cosine of embeddings"), (["scorer=speech"], "cosine of embeddings")],
)
def test_a_scorer_without_an_adaptation_is_refused_first(
    channel_embeddings, tmp_path, overrides, match
):
    root = channel_embeddings
    with pytest.raises(ConfigError, match=match):
        _score_cosine(root, tmp_path / "refused", root / "pop.csv", overrides)


def test_score_matrix_cells_equal_score_test_trials(channel_embeddings, tmp_path):
    """`score matrix --population` with the cosine: cell (i, j) is the raw score `score test`
    gives trial (i, j), each without its own speakers (the case is its own population
    here, with the population's 6 speakers: 14 speakers)."""
    root = channel_embeddings
    case = pd.read_csv(root / "case.csv")
    pd.concat([case, pd.read_csv(root / "pop.csv")]).to_csv(root / "both.csv", index=False)
    run = MatrixScoring(
        ScoreSettings.from_overrides(COSINE_EMB),
        save_dir=tmp_path / "matrix",
        vectors_dir=root / "vectors",
        population=root / "both.csv",
    )
    result = score_matrix_file(root / "case.csv", run)
    matrix = np.load(result.path)
    ids = (tmp_path / "matrix" / "ids.txt").read_text().split()
    pairs = [(a, b) for a in ids for b in ids]
    pd.DataFrame(pairs, columns=["enrollment", "test"]).to_csv(
        root / "all_pairs.tsv", sep="\t", index=False
    )
    options = TrialScoring(
        ScoreSettings.from_overrides(COSINE_EMB),
        save_dir=tmp_path / "test",
        vectors_dir=root / "vectors",
        population=root / "both.csv",
        population_adapt="always",  # score matrix is uncalibrated: it always adapts
        keep_same_recording=True,
    )
    score_trials_file(root / "case.csv", root / "all_pairs.tsv", options)
    raw = _scores(tmp_path / "test", "raw_score").reshape(len(ids), len(ids))
    np.testing.assert_allclose(matrix, raw, rtol=1e-9, atol=1e-12)
    record = json.loads((tmp_path / "matrix" / "population.json").read_text())
    assert record["vectors"] == "emb" and record["per_cell"]["min_speakers"] == 12


def test_adapted_cosines_are_not_calibrated_again(channel_embeddings, tmp_path):
    from balr.scoring.jobs.population import calibration_population

    root = channel_embeddings
    _score_cosine(root, tmp_path / "adapted", root / "pop.csv")
    with pytest.raises(ConfigError, match="calibrate scores made without --population"):
        calibration_population(tmp_path / "adapted" / "scores.csv", None)


def test_population_embeddings_of_another_size_are_one_line_errors(channel_embeddings, tmp_path):
    """A population extracted with another embedding model (16-dim): refused in one line
    naming it, against the calibration's reference embeddings and, uncalibrated, against
    the trials' embeddings; no scores are written."""
    root = channel_embeddings
    _write_embeddings(root, "small", np.random.default_rng(0).normal(size=(24, 16)), 4)
    small = root / "small.csv"
    options = dict(population=small, vectors_dir=root / "vectors")
    for extra, match in (({}, "the calibration's reference embeddings are 256-dim"),
                         ({"no_calibration": True}, "the scored ones are \\(256,\\)")):  # fmt: skip
        out = tmp_path / f"out{len(extra)}"
        run = TrialScoring(ScoreSettings.from_overrides(COSINE_EMB), save_dir=out, exist_ok=True,
                           **options, **extra)  # fmt: skip
        with pytest.raises(
            DataError, match=f"--population {small}: 16-dim embeddings, {match}"
        ) as error:
            score_trials_file(root / "case.csv", root / "trials.tsv", run)
        assert "\n" not in str(error.value) and not (out / "scores.csv").exists()


def test_twins_in_the_population_break_the_retest_and_flag_every_trial(
    channel_embeddings, tmp_path
):
    """A population of 6 speakers in 3 pairs of look-alike twins (each twin pair shares one
    voice): after moving to the calibration's mean, the twins' 48 of the 240
    different-speaker comparisons still score as one speaker, so the adapted cosine breaks
    the bound on the population's own comparisons and every trial is out of conditions."""
    root = channel_embeddings
    rng = np.random.default_rng(5)
    channel = 0.1 * rng.normal(size=DIM)
    voices = np.repeat(0.04 * rng.normal(size=(3, DIM)), 2, axis=0)  # speakers 2k, 2k+1 alike
    noise = 0.02 * rng.normal(size=(24, DIM))
    _write_embeddings(root, "twins", np.repeat(voices, 4, axis=0) + noise + channel, 4)
    _score_cosine(root, tmp_path / "twins", root / "twins.csv")
    recheck = json.loads((tmp_path / "twins" / "metrics.json").read_text())["population"][
        "adaptation"
    ]["recheck"]
    assert (recheck["n_pairs"], recheck["n_speakers"], recheck["broken"]) == (240, 6, True)
    assert recheck["reaching"][1] >= 48 > 24  # LR >= 10: at most 10 % (24) allowed
    scores = pd.read_csv(tmp_path / "twins" / "scores.csv", sep="\t")
    assert not scores["in_conditions"].any()
    assert (
        scores["conditions_reason"]
        .str.contains(
            "the scores adapted to the population still break the bound of calibrated LRs on its "
            "own comparisons: "
        )
        .all()
    )
