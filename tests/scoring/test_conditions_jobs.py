"""`score calibrate --method qmf` with a conditions description, then `score test` columns
and metrics.json counts, on a generated corpus with speech durations."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from balr.calibration import Calibrator
from balr.cli.main import app
from balr.conditions import NO_DESCRIPTION, UNKNOWN_SPEECH, ConditionsDescription
from balr.data import AudioDataset
from balr.scoring.config import ScoreSettings
from balr.scoring.jobs import (
    CalibrationFit,
    ScoringRun,
    TrialScoring,
    calibrate_scores_file,
    score_trials_file,
    train_scorer,
)

N_ATTRIBUTES, N_SPEAKERS = 64, 12
#: attributes 48-63 are never active in the population; the odd recording has only those
USED = 48


def write_speech(folder, rows):
    lines = ["id\tpath\tspeech_s"] + [f"{i}\t{i}.wav\t{s}" for i, s in rows]
    (folder / "speech_durations.tsv").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """cal.csv: 12 speakers x 3 recordings (2-8 s of speech); test.csv: 3 new speakers x 2
    recordings (4 s; attribute rates of 3 calibration speakers), plus `odd` (bits only where
    the population never has any); speech
    durations in vectors/speech_durations.tsv, where `extract` writes them: test recording
    spk12/rec0 has 0.2 s, spk14/rec1 none. Trials: all pairs of each set."""
    root = tmp_path_factory.mktemp("conditions")
    rng = np.random.default_rng(1)
    rates = np.zeros((N_SPEAKERS + 3, N_ATTRIBUTES))
    rates[:, :USED] = np.where(rng.random((N_SPEAKERS + 3, USED)) < 0.3, 0.9, 0.05)
    rates[N_SPEAKERS:] = rates[:3]  # the test speakers sound like calibration speakers
    rows = [(f"spk{s}/rec{r}", f"spk{s}") for s in range(N_SPEAKERS + 3) for r in range(3)]
    frame = pd.DataFrame(rows + [("odd", "odd")], columns=["id", "speaker"])
    frame.to_csv(root / "all.csv", index=False)
    cal = frame[frame.speaker.isin([f"spk{s}" for s in range(N_SPEAKERS)])]
    cal.to_csv(root / "cal.csv", index=False)
    test = frame[~frame.index.isin(cal.index) & ~frame.id.str.endswith("rec2")]
    test.to_csv(root / "test.csv", index=False)
    dataset = AudioDataset.from_path(root / "all.csv", output_dir=root / "vectors")
    with dataset.vector_writer("ba") as writer:
        for index, item in enumerate(dataset.items):
            if item.id == "odd":
                bits = np.arange(N_ATTRIBUTES) >= USED
            else:
                bits = rng.random(N_ATTRIBUTES) < rates[int(item.speaker[3:])]
            writer.put(index, np.stack([bits, ~bits], axis=1).astype(np.float32))
    speech = {i: round(float(rng.uniform(2, 8)), 3) for i in cal.id}
    speech.update({i: 4.0 for i in test.id})
    speech["spk12/rec0"] = 0.2
    del speech["spk14/rec1"]
    write_speech(root / "vectors", speech.items())
    for name, part in (("cal", cal), ("test", test)):
        pairs = list(itertools.combinations(part.id, 2))
        pd.DataFrame(pairs, columns=["enrollment", "test"]).to_csv(
            root / f"{name}_trials.tsv", sep="\t", index=False
        )
    return root


@pytest.fixture(scope="module")
def calibrated(corpus, tmp_path_factory):
    """beta scorer fitted on the calibration set, its raw scores, a qmf calibration."""
    work = tmp_path_factory.mktemp("work")
    scorer = train_scorer(
        corpus / "cal.csv",
        ScoringRun(
            save_dir=work / "scorer",
            vectors_dir=corpus / "vectors",
            settings=ScoreSettings.from_overrides(["scorer=beta"]),
        ),
    )
    raw = score_trials_file(
        corpus / "cal.csv",
        corpus / "cal_trials.tsv",
        TrialScoring(
            save_dir=work / "raw",
            vectors_dir=corpus / "vectors",
            settings=ScoreSettings.from_overrides([f"scorer.checkpoint_path={scorer.path}"]),
        ),
    )
    result = CliRunner().invoke(
        app,
        [
            "score", "calibrate", str(raw.save_dir / "scores.csv"), str(corpus / "cal.csv"),
            "--method", "qmf", "--vectors-dir", str(corpus / "vectors"),
            "--out", str(work / "calibration.json"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output + repr(result.exception)
    return work, scorer.path, result.output


@pytest.mark.slow
def test_calibrate_fits_qmf_and_describes_the_calibration_recordings(corpus, calibrated):
    work, _, output = calibrated
    calibrator = Calibrator.load(work / "calibration.json")
    description = ConditionsDescription.load(work / "calibration.json")
    assert calibrator.method == "qmf" and len(calibrator.duration_coefs_) == 2
    assert (calibrator.n_target_, calibrator.n_nontarget_) == (N_SPEAKERS * 3, 594)
    assert description.vector_kind_ == "ba" and description.n_recordings_ == N_SPEAKERS * 3
    speech = pd.read_csv(corpus / "vectors" / "speech_durations.tsv", sep="\t")
    cal_ids = set(pd.read_csv(corpus / "cal.csv").id)
    cal_speech = speech[speech.id.isin(cal_ids)].speech_s.to_numpy()
    # the sides of the calibration trials (one recording each): the [0.5, 99.5] % order
    # statistics of 36 values are the shortest and the longest
    assert description.speech_range_s_ == [cal_speech.min(), cal_speech.max()]
    assert (work / "calibration.conditions.safetensors").is_file()
    assert "conditions: 36 recordings, speech" in output


def test_score_test_writes_conditions_columns_and_counts(corpus, calibrated, tmp_path):
    work, scorer, _ = calibrated
    result = score_trials_file(
        corpus / "test.csv",
        corpus / "test_trials.tsv",
        TrialScoring(
            save_dir=tmp_path,
            exist_ok=True,
            vectors_dir=corpus / "vectors",
            calibration=work / "calibration.json",
            settings=ScoreSettings.from_overrides([f"scorer.checkpoint_path={scorer}"]),
        ),
    )
    scores = pd.read_csv(tmp_path / "scores.csv", sep="\t", keep_default_na=False)
    description = ConditionsDescription.load(work / "calibration.json")
    low, high = description.speech_range_s_
    # expected independently: a trial is out iff it uses spk12/rec0, spk14/rec1 or odd
    bad = {"spk12/rec0", "spk14/rec1", "odd"}
    expected_out = scores.enrollment.isin(bad) | scores.test.isin(bad)
    assert (scores.in_conditions.astype(str) == "False").tolist() == expected_out.tolist()
    assert (scores.conditions_reason[~expected_out] == "").all()
    short = scores[(scores.enrollment == "spk12/rec0") & (scores.test == "spk12/rec1")]
    calibrator = Calibrator.load(work / "calibration.json")
    (min_low, min_high), _ = np.exp(calibrator.log_duration_ranges_)
    assert short.conditions_reason.item() == (
        f"enrollment speech 0.2 s below the calibrated {low:.1f}-{high:.1f} s; the qmf duration "
        f"terms count the shorter side's 0.2 s of speech as {min_low:.1f} s, the calibrated "
        f"{min_low:.1f}-{min_high:.1f} s"
    )
    unknown = scores[(scores.enrollment == "spk13/rec0") & (scores.test == "spk14/rec1")]
    assert unknown.conditions_reason.item() == f"test {UNKNOWN_SPEECH}"
    odd = scores[(scores.enrollment == "spk13/rec0") & (scores.test == "odd")]
    similarity = description.similarity(np.r_[np.zeros(USED), np.ones(N_ATTRIBUTES - USED)][None])
    assert similarity[0] == 0.0
    assert odd.conditions_reason.item() == (
        "test recording unlike the calibration population "
        f"(similarity 0.00 < {description.similarity_threshold_:.2f})"
    )
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    n_out = int(expected_out.sum())
    assert (metrics["n_in_conditions"], metrics["n_out_of_conditions"]) == (
        len(scores) - n_out,
        n_out,
    )
    assert metrics["vector_kind"] == "ba"
    assert f"{n_out} of {len(scores)} trials out of the calibration conditions" in result.summary()
    # qmf: the trials' durations enter the LLR (the unknown one takes the medians)
    seconds = pd.read_csv(corpus / "vectors" / "speech_durations.tsv", sep="\t")
    speech_of = dict(zip(seconds.id, seconds.speech_s, strict=True))
    pairs = zip(scores.enrollment, scores.test, strict=True)
    durations = np.array([[speech_of.get(e, np.nan), speech_of.get(t, np.nan)] for e, t in pairs])
    np.testing.assert_allclose(scores.scores, calibrator.transform(scores.raw_score, durations))


def test_a_calibration_without_description_puts_trials_out_of_conditions(
    corpus, calibrated, tmp_path
):
    work, scorer, _ = calibrated
    fitted = calibrate_scores_file(
        work / "raw" / "scores.csv",
        corpus / "cal.csv",
        CalibrationFit(out=tmp_path / "plain.json", describe_conditions=False),
    )
    assert fitted.conditions is None
    assert fitted.summary().endswith("; no conditions description (not asked for)")
    scores = scored_with(corpus, "test", fitted.path, scorer, tmp_path / "out")
    assert (~scores.in_conditions).all() and (scores.conditions_reason == NO_DESCRIPTION).all()
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["n_out_of_conditions"] == len(scores) and "in_conditions_metrics" not in metrics


def scored_with(corpus, part: str, calibration, scorer, save_dir) -> pd.DataFrame:
    """scores.csv of `score test` on the corpus part's trials with that calibration."""
    score_trials_file(
        corpus / f"{part}.csv",
        corpus / f"{part}_trials.tsv",
        TrialScoring(
            save_dir=save_dir,
            vectors_dir=corpus / "vectors",
            calibration=calibration,
            settings=ScoreSettings.from_overrides([f"scorer.checkpoint_path={scorer}"]),
        ),
    )
    return pd.read_csv(save_dir / "scores.csv", sep="\t")


def test_qmf_without_speech_durations_is_refused(corpus, calibrated, tmp_path):
    from balr.errors import DataError

    work, _, _ = calibrated
    scores = tmp_path / "scores.csv"  # without the run record of `score test` beside it
    scores.write_text((work / "raw" / "scores.csv").read_text())
    (tmp_path / "metrics.json").write_text((work / "raw" / "metrics.json").read_text())
    with pytest.raises(DataError, match="--method qmf needs the recordings' speech durations"):
        calibrate_scores_file(scores, corpus / "cal.csv", CalibrationFit(method="qmf"))
    fitted = calibrate_scores_file(
        scores, corpus / "cal.csv", CalibrationFit(out=tmp_path / "c.json")
    )
    assert fitted.conditions is None
    assert f"no speech_durations.tsv in {corpus}" in fitted.summary()


def test_calibrate_as_documented_reads_the_vectors_the_scores_were_computed_on(
    corpus, calibrated, tmp_path
):
    """`score calibrate SCORES DATA` without --vectors-dir (docs/scoring.md): the vectors'
    folder and speech durations come from the run record of the `score test` that wrote the
    scores, so the calibration has a description and the in-domain trials are in it."""
    work, scorer, _ = calibrated
    fitted = calibrate_scores_file(
        work / "raw" / "scores.csv", corpus / "cal.csv", CalibrationFit(out=tmp_path / "c.json")
    )
    assert fitted.conditions is not None and fitted.conditions.n_recordings_ == N_SPEAKERS * 3
    explicit = calibrate_scores_file(
        work / "raw" / "scores.csv",
        corpus / "cal.csv",
        CalibrationFit(out=tmp_path / "e.json", vectors_dir=corpus / "vectors"),
    )
    assert fitted.conditions.to_dict("x") == explicit.conditions.to_dict("x")
    scores = scored_with(corpus, "cal", fitted.path, scorer, tmp_path / "in_domain")
    # the calibration recordings themselves: none below its own speech range, none unlike
    # its population once a recording no longer matches itself
    assert scores.in_conditions.mean() >= 0.9


def test_groups_column(corpus, calibrated, tmp_path):
    work, _, _ = calibrated
    frame = pd.read_csv(work / "raw" / "scores.csv", sep="\t")
    frame["corpus"] = np.where(frame.index % 4 == 0, "a", "b")
    frame.to_csv(tmp_path / "scores.csv", sep="\t", index=False)
    (tmp_path / "metrics.json").write_text((work / "raw" / "metrics.json").read_text())
    fitted = calibrate_scores_file(
        tmp_path / "scores.csv",
        corpus / "cal.csv",
        CalibrationFit(method="logistic", vectors_dir=corpus / "vectors", group_column="corpus"),
    )
    assert fitted.calibrator.groups_ == ["a", "b"]
    assert "each 'corpus' group weighing equally" in fitted.calibrator.description


def test_the_scored_vectors_come_from_metrics_json(tmp_path):
    from balr.errors import ConfigError
    from balr.scoring.jobs import scored_vector_kind

    scores = tmp_path / "scores.csv"
    for kind in ("emb", "ba"):
        (tmp_path / "metrics.json").write_text(json.dumps({"vector_kind": kind}))
        assert scored_vector_kind(scores) == kind
    for unrecorded in ({"scorer": "maxllr"}, {"vector_kind": "bits"}, []):  # nothing inferred
        (tmp_path / "metrics.json").write_text(json.dumps(unrecorded))
        with pytest.raises(ConfigError, match="give --vectors ba or --vectors emb"):
            scored_vector_kind(scores)
    with pytest.raises(ConfigError, match="--vectors bits: expected ba or emb"):
        calibrate_scores_file(scores, tmp_path, CalibrationFit(vector_kind="bits"))


def test_conditions_percentile_sets_the_share_of_calibration_recordings_below_threshold(
    corpus, calibrated, tmp_path
):
    from balr.errors import ConfigError

    work, _, _ = calibrated
    thresholds = []
    for percentile in (0.0, 2.0, 20.0):
        fitted = calibrate_scores_file(
            work / "raw" / "scores.csv",
            corpus / "cal.csv",
            CalibrationFit(
                out=tmp_path / f"p{percentile}.json",
                vectors_dir=corpus / "vectors",
                conditions_percentile=percentile,
            ),
        )
        saved = json.loads((tmp_path / f"p{percentile}.json").read_text())["conditions"]
        assert saved["similarity_percentile"] == percentile
        thresholds.append(fitted.conditions.similarity_threshold_)
    assert thresholds[0] < thresholds[1] < thresholds[2]
    loaded = ConditionsDescription.load(tmp_path / "p20.0.json")
    assert loaded.similarity_threshold_ == thresholds[2]
    with pytest.raises(ConfigError, match=r"percentile 50.0: expected a value in \[0, 50\)"):
        calibrate_scores_file(
            work / "raw" / "scores.csv",
            corpus / "cal.csv",
            CalibrationFit(
                out=tmp_path / "bad.json",
                vectors_dir=corpus / "vectors",
                conditions_percentile=50.0,
            ),
        )


def test_describe_recordings_takes_side_totals_and_each_recording_s_corpus(corpus):
    """Cells of two recordings: the speech range is that of the cells' totals; each
    recording counts in the corpus of most of its trials."""
    from balr.conditions import describe_recordings, recording_groups
    from balr.data import Trials
    from balr.data.speech import read_speech_durations

    dataset = AudioDataset.from_path(corpus / "cal.csv", output_dir=corpus / "vectors")
    durations = read_speech_durations(corpus / "vectors" / "speech_durations.tsv")
    cells = [[f"spk{s}/rec0", f"spk{s}/rec1"] for s in range(N_SPEAKERS)]
    singles = [[f"spk{s}/rec2"] for s in range(N_SPEAKERS)]
    frame = pd.DataFrame({"enrollment": [",".join(c) for c in cells],
                          "test": [c[0] for c in singles]})  # fmt: skip
    trials = Trials(frame, cells, singles)
    groups = ["a"] * 4 + ["b"] * 8
    description = describe_recordings(dataset, trials, durations, "ba", groups=groups)
    totals = [durations[a] + durations[b] for a, b in cells] + [durations[c] for (c,) in singles]
    assert description.speech_range_s_ == [min(totals), max(totals)]
    assert description.n_recordings_ == 3 * N_SPEAKERS
    assert sorted(description.group_thresholds_) == ["a", "b"]
    items = [dataset.items[dataset.index_of(i)] for i in ("spk0/rec0", "spk5/rec2")]
    assert recording_groups(trials, groups, items) == ["a", "b"]
