"""`--population` on the bundled example clips (4 speakers x 2 recordings, vectors extracted
with the shipped models): the examples alone are too small a population for themselves (one
error line naming the trial), the examples plus 24 generated recordings of 6 more speakers
are used with each trial's own speakers left out, and a calibration fitted on those scores
warns when applied without them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from balr import defaults
from balr.calibration import CalibrationBundle, elub_bounds
from balr.cli.main import main
from balr.data import AudioDataset
from balr.population import adapt_to_population, read_population
from balr.population_bounds import same_speaker_pairs
from balr.population_decision import different_speaker_pairs
from balr.scoring.base import Scorer
from tests.conftest import EXAMPLES

AUDIO = EXAMPLES / "audio"
META, TRIALS = AUDIO / "metadata.csv", AUDIO / "trials.tsv"


def balr(*args) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return exit_info.value.code or 0


@pytest.fixture(scope="module")
def example_vectors(tmp_path_factory):
    """The examples' BA vectors, and pop.csv: the 8 examples plus 6 generated speakers x 4
    recordings (BA bits drawn at each speaker's rates) in the same vectors folder."""
    folder = tmp_path_factory.mktemp("examples")
    vectors = folder / "vectors"
    assert balr("extract", META, "--save-dir", vectors) == 0
    assert balr("binarize", META, "--save-dir", vectors) == 0
    n_attributes = AudioDataset.from_path(META, output_dir=vectors).stack_vectors("ba")[1].shape[1]
    rows = [(f"gen{s}/r{r}", f"gen{s}") for s in range(6) for r in range(4)]
    pd.DataFrame(rows, columns=["id", "speaker"]).to_csv(folder / "gen.csv", index=False)
    rng = np.random.default_rng(0)
    rates = np.where(rng.random((6, n_attributes)) < 0.3, 0.8, 0.1)
    generated = AudioDataset.from_path(folder / "gen.csv", output_dir=vectors)
    with generated.vector_writer("ba") as writer:
        for index, item in enumerate(generated.items):
            bits = rng.random(n_attributes) < rates[int(item.speaker[3:])]
            writer.put(index, np.stack([bits, ~bits], axis=1).astype(np.float32))
    examples = pd.read_csv(META)[["id", "speaker"]]
    pd.concat([examples, pd.DataFrame(rows, columns=["id", "speaker"])]).to_csv(
        folder / "pop.csv", index=False
    )
    # one shared "channel": 6 speakers x 4 recordings whose bits all follow the same rates
    shared = [(f"chan{s}/r{r}", f"chan{s}") for s in range(6) for r in range(4)]
    pd.DataFrame(shared, columns=["id", "speaker"]).to_csv(folder / "chan.csv", index=False)
    channel = AudioDataset.from_path(folder / "chan.csv", output_dir=vectors)
    common = rates[0]
    with channel.vector_writer("ba") as writer:
        for index in range(len(channel.items)):
            bits = rng.random(n_attributes) < common
            writer.put(index, np.stack([bits, ~bits], axis=1).astype(np.float32))
    return folder, vectors


@pytest.mark.slow
def test_the_examples_are_too_small_a_population_for_themselves(example_vectors, capsys):
    folder, vectors = example_vectors
    code = balr("score", "test", META, TRIALS, "--vectors-dir", vectors, "--population", META,
                "--save-dir", folder / "own")  # fmt: skip
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert code == 1
    assert errors == [
        f"error: --population {META}: 4 recordings of 2 speakers for trial 2 (id00906/00014 vs "
        "id01184/00123) once its speakers and recordings are left out; at least 20 recordings "
        "of 5 or more other speakers are needed"
    ]


@pytest.mark.slow
def test_examples_with_other_speakers_calibrated_and_warned(example_vectors, capsys, caplog):
    folder, vectors = example_vectors
    pop = folder / "pop.csv"
    out = folder / "adapted"
    assert balr("score", "test", META, TRIALS, "--vectors-dir", vectors, "--population", pop,
                "--population-adapt", "always", "--save-dir", out) == 0  # fmt: skip
    printed = " ".join(capsys.readouterr().out.split())
    assert f"adapted to the population {pop} (32 recordings, 10 speakers; 28-30 per trial" in (
        printed
    )
    adaptation = metrics_of(out)["population"]["adaptation"]
    elub, recheck = adaptation.pop("elub"), adaptation.pop("recheck")
    # the adapted LLRs of the 6 generated speakers' own 240 different-speaker pairs respect
    # the bound (no trial flagged by the re-test)
    assert (recheck["n_pairs"], recheck["broken"]) == (240, False)
    assert adaptation == {
        "adapted": True,
        "reason": "--population-adapt always",
        "bound": None,
        "offset": 0.0,
    }
    # bounds of its own from the 6 generated speakers only: the 4 examples' speakers are
    # the trials' (each trial leaves its own out, so none may set any trial's bounds)
    assert (elub["applied"], elub["n_target_pairs"], elub["n_nontarget_pairs"]) == (True, 36, 240)
    scores = pd.read_csv(out / "scores.csv", sep="\t")
    same = scores["enrollment"].str[:7] == scores["test"].str[:7]
    assert list(scores["population_recordings"]) == list(np.where(same, 30, 28))
    assert list(scores["population_speakers"]) == list(np.where(same, 9, 8))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["population"]["per_trial"]["min_recordings"] == 28
    assert balr("score", "calibrate", out / "scores.csv", META, "--vectors-dir", vectors,
                "--population", pop, "--no-conditions") == 0  # fmt: skip
    assert json.loads((out / "calibration.json").read_text())["population"]["n_recordings"] == 32
    caplog.clear()
    assert balr("score", "test", META, TRIALS, "--vectors-dir", vectors, "--calibration",
                out / "calibration.json", "--save-dir", folder / "none") == 0  # fmt: skip
    warned = [r.getMessage() for r in caplog.records if "fitted on scores" in r.getMessage()]
    assert len(warned) == 1 and "these scores to none" in warned[0]


def metrics_of(out) -> dict:
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.slow
def test_a_population_that_respects_the_bound_leaves_the_lrs_as_without(example_vectors, capsys):
    """auto: the population's 456 different-speaker pairs (10 speakers) respect the bound of
    calibrated LRs, so the scores are those of the run without a population, the calibrated
    LLRs moved by one offset (inside the ELUB bounds); the decision and its counts are
    recorded, and a calibration of these scores keeps no population."""
    folder, vectors = example_vectors
    pop, out, plain = folder / "pop.csv", folder / "auto", folder / "plain"
    assert balr("score", "test", META, TRIALS, "--vectors-dir", vectors, "--population", pop,
                "--save-dir", out) == 0  # fmt: skip
    printed = " ".join(capsys.readouterr().out.split())
    assert f"checked against the population {pop} (32 recordings, 10 speakers" in printed
    assert "not adapted: its 456 different-speaker comparisons respect the bound" in printed
    assert balr("score", "test", META, TRIALS, "--vectors-dir", vectors,
                "--save-dir", plain) == 0  # fmt: skip
    kept = pd.read_csv(out / "scores.csv", sep="\t")
    without = pd.read_csv(plain / "scores.csv", sep="\t")
    np.testing.assert_array_equal(kept["raw_score"], without["raw_score"])  # same scorer
    decision = metrics_of(out)["population"]["adaptation"]
    assert decision["adapted"] is False
    offset = decision["offset"]  # the shipped calibration: its reference median LLR
    assert 0 < abs(offset) <= 1.0 and f"offset by {offset:+.2f}" in decision["reason"]
    # the LLRs within the ELUB bounds of the 6 generated speakers' own comparisons (the
    # trials' speakers take no part), inside the shipped calibration's
    elub = decision["elub"]
    assert (elub["applied"], elub["n_target_pairs"], elub["n_nontarget_pairs"]) == (True, 36, 240)
    shipped = CalibrationBundle.load(defaults.CALIBRATION).calibrator
    lower, upper = np.log(10) * elub["lower_log10"], np.log(10) * elub["upper_log10"]
    assert shipped.lower_bound_ <= lower < 0 < upper <= shipped.upper_bound_
    assert kept["scores"].between(lower - 1e-3, upper + 1e-3).all()
    inside = (without["scores"] > lower) & (without["scores"] < upper)
    inside &= (kept["scores"] > lower) & (kept["scores"] < upper)
    assert inside.sum() >= 10
    np.testing.assert_allclose(kept["scores"][inside] - without["scores"][inside], offset)
    bound = decision["bound"]
    assert (bound["n_pairs"], bound["n_speakers"], bound["levels"]) == (456, 10, [1.0, 10.0])
    assert bound["excess"] == pytest.approx(max(bound["reaching"][0] / 456,
                                                10 * bound["reaching"][1] / 456))  # fmt: skip
    assert bound["excess"] <= 1.0 and bound["broken"] is False
    assert balr("score", "calibrate", out / "scores.csv", META, "--vectors-dir", vectors,
                "--population", pop, "--no-conditions") == 0  # fmt: skip
    assert "population" not in json.loads((out / "calibration.json").read_text())


@pytest.mark.slow
def test_an_unknown_adaptation_mode_is_one_line(example_vectors, capsys):
    folder, vectors = example_vectors
    pop, out = folder / "pop.csv", folder / "x"
    code = balr("score", "test", META, TRIALS, "--vectors-dir", vectors, "--population", pop,
                "--population-adapt", "never", "--save-dir", out)  # fmt: skip
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert code == 1
    assert errors == ["error: --population-adapt never: choose one of auto, always"]


@pytest.mark.slow
def test_a_population_that_breaks_the_bound_is_adapted_to(example_vectors, capsys):
    """auto: 6 speakers sharing one set of rates (as through one channel): their
    different-speaker pairs reach high LRs far beyond the bound, so the scorer adapts, as
    with `always`, by value."""
    folder, vectors = example_vectors
    chan = folder / "chan.csv"
    runs = {}
    for mode in ("auto", "always"):
        runs[mode] = folder / f"chan_{mode}"
        assert balr("score", "test", META, TRIALS, "--vectors-dir", vectors, "--population",
                    chan, "--population-adapt", mode, "--save-dir", runs[mode]) == 0  # fmt: skip
    decision = metrics_of(runs["auto"])["population"]["adaptation"]
    bound = decision["bound"]
    assert decision["adapted"] is True and bound["broken"] is True
    assert (bound["n_pairs"], bound["n_speakers"]) == (24 * 23 // 2 - 6 * 6, 6)
    assert bound["excess"] > 1.0
    assert (
        "different-speaker comparisons of the population (6 speakers) reach LR >="
        in (decision["reason"])
    )
    auto, always = (pd.read_csv(runs[m] / "scores.csv", sep="\t")["scores"] for m in runs)
    np.testing.assert_array_equal(auto.to_numpy(), always.to_numpy())
    check_population_bounds(decision["elub"], chan, vectors, auto.to_numpy())


def check_population_bounds(elub: dict, chan, vectors, scores: np.ndarray) -> None:
    """The adapted LLRs lie within the ELUB bounds of the population's own 36 same- and 240
    different-speaker pairs, scored by hand: the shipped scorer adapted to the population,
    the shipped calibration (no speech durations: its medians), `elub_bounds`."""
    assert elub["applied"] is True
    assert (elub["n_target_pairs"], elub["n_nontarget_pairs"]) == (6 * 6, 24 * 23 // 2 - 36)
    population = read_population(AudioDataset.from_path(chan, output_dir=vectors), str(chan))
    adapted, _ = adapt_to_population(Scorer.load(defaults.SCORER_CHECKPOINT), population)
    shipped = CalibrationBundle.load(defaults.CALIBRATION).calibrator
    same, other = same_speaker_pairs(population), different_speaker_pairs(population)
    i, j = np.concatenate([same[0], other[0]]), np.concatenate([same[1], other[1]])
    raw = adapted.score(population.vectors[i], population.vectors[j])
    parts = shipped.parts(raw, np.full((len(i), 2), np.nan))
    labels = np.repeat([1, 0], [len(same[0]), len(other[0])])
    lower10, upper10 = elub_bounds((parts.llr - parts.bounding) / np.log(10), labels)
    lower = max(shipped.lower_bound_ / np.log(10), lower10)
    upper = min(shipped.upper_bound_ / np.log(10), upper10)
    assert (elub["lower_log10"], elub["upper_log10"]) == pytest.approx((lower, upper), abs=1e-4)
    assert upper < shipped.upper_bound_ / np.log(10)  # 6 speakers support less than 459,160
    finite = scores[np.isfinite(scores)] / np.log(10)
    assert len(finite) and (finite >= lower - 1e-9).all() and (finite <= upper + 1e-9).all()


@pytest.mark.slow
def test_the_cosine_of_the_examples_moves_to_the_calibrations_mean(example_vectors, capsys):
    """`scorer=cosine scorer.vectors=emb --population-adapt always` on the examples' real
    GE2E embeddings, with the examples plus 24 embeddings of 6 more speakers (real ones
    rotated among their dimensions, each speaker its own rotation) as population: each
    trial's raw score is, by hand, the cosine of its two embeddings moved from the mean of
    the population without the trial's speakers to the shipped cosine calibration's
    reference mean."""
    folder, vectors = example_vectors
    examples = AudioDataset.from_path(META, output_dir=vectors)
    rows, embeddings = examples.stack_vectors("emb")
    ids = [examples.items[r].id for r in rows]
    rng = np.random.default_rng(3)
    others = [(f"emb{s}/r{r}", f"emb{s}") for s in range(6) for r in range(4)]
    pd.DataFrame(others, columns=["id", "speaker"]).to_csv(folder / "emb.csv", index=False)
    generated = AudioDataset.from_path(folder / "emb.csv", output_dir=vectors)
    made = []
    with generated.vector_writer("emb") as writer:
        for index, item in enumerate(generated.items):
            order = np.random.default_rng(int(item.speaker[3:])).permutation(embeddings.shape[1])
            made.append(embeddings[rng.integers(len(embeddings))][order].astype(np.float32))
            writer.put(index, made[-1])
    meta = pd.read_csv(META)[["id", "speaker"]]
    pd.concat([meta, pd.DataFrame(others, columns=["id", "speaker"])]).to_csv(
        folder / "pop_emb.csv", index=False
    )
    out = folder / "cosine"
    assert balr("score", "test", META, TRIALS, "--vectors-dir", vectors, "--population",
                folder / "pop_emb.csv", "--population-adapt", "always", "--save-dir", out,
                "scorer=cosine", "scorer.vectors=emb") == 0  # fmt: skip
    assert "adapted to the population" in " ".join(capsys.readouterr().out.split())
    scores = pd.read_csv(out / "scores.csv", sep="\t")
    population = np.vstack([embeddings, np.array(made)]).astype(np.float64)
    speakers = [i.split("/")[0] for i in ids] + [s for _, s in others]
    cosine = CalibrationBundle.load(defaults.COSINE_CALIBRATION)
    target = cosine.conditions.reference_vectors_.astype(np.float64).mean(axis=0)
    row = {item: k for k, item in enumerate(ids)}
    expected = []
    for enroll, test in zip(scores["enrollment"], scores["test"], strict=True):
        left = [k for k, s in enumerate(speakers) if s not in {enroll[:7], test[:7]}]
        shift = population[left].mean(axis=0) - target
        a, b = population[row[enroll]] - shift, population[row[test]] - shift
        expected.append(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    np.testing.assert_allclose(scores["raw_score"], expected, rtol=1e-6)
    assert metrics_of(out)["population"]["vectors"] == "emb"
