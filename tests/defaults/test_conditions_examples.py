"""Calibration conditions on the bundled examples: `score calibrate` describes the clips,
`score test` marks each trial in / out of conditions, `compare` warns outside them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from balr.conditions import LONGER_SPEECH, ConditionsDescription
from balr.data.speech import read_speech_durations
from tests.defaults.test_cli_defaults import (  # noqa: F401 (fixture)
    EXAMPLE_AUDIO,
    example_vectors,
    run,
    score_example,
)

pytestmark = pytest.mark.slow  # end-to-end runs (models, CLI processes): not in `make test-fast`

DATASET = EXAMPLE_AUDIO / "metadata.csv"


def _run(args, capsys):
    return run(args, capsys)


def test_score_test_marks_trials_against_a_calibration_of_the_examples(
    example_vectors,  # noqa: F811
    tmp_path,
    capsys,
):
    raw = tmp_path / "raw"
    _run(score_example(example_vectors, raw, "--no-calibration"), capsys)
    assert json.loads((raw / "metrics.json").read_text())["vector_kind"] == "ba"
    calibration = tmp_path / "calibration.json"
    out = _run(
        ["score", "calibrate", raw / "scores.csv", DATASET, "--vectors-dir", example_vectors,
         "--out", calibration],
        capsys,
    )  # fmt: skip
    assert "conditions: 8 recordings" in out
    description = ConditionsDescription.load(calibration)
    _run(score_example(example_vectors, tmp_path / "cal", "--calibration", calibration), capsys)
    scores = pd.read_csv(tmp_path / "cal" / "scores.csv", sep="\t", keep_default_na=False)
    # expected independently: every clip's speech inside the stored range (the [0.5, 99.5] %
    # order statistics of 8 values: the shortest and the longest clip) ...
    speech = read_speech_durations(example_vectors / "speech_durations.tsv")
    low, high = description.speech_range_s_
    assert [low, high] == [min(speech.values()), max(speech.values())]
    good_speech = {i: low <= s <= high for i, s in speech.items()}
    # ... and similarity: the clips are the calibration population itself (a clip's own
    # reference vector is skipped, as at the fit)
    own = description.similarity(description.reference_vectors_)
    assert (own >= description.similarity_threshold_).all()
    pairs = zip(scores.enrollment, scores.test, strict=True)
    expected = [good_speech[e] and good_speech[t] for e, t in pairs]
    assert (scores.in_conditions.astype(str) == "True").tolist() == expected
    metrics = json.loads((tmp_path / "cal" / "metrics.json").read_text())
    assert metrics["n_in_conditions"] == sum(expected)
    assert metrics["n_out_of_conditions"] == len(expected) - sum(expected)


def test_a_calibration_of_longer_recordings_puts_the_examples_out_and_compare_warns(
    example_vectors,  # noqa: F811
    tmp_path,
    capsys,
):
    calibration = _calibrated_with_speech(example_vectors, tmp_path, capsys, lambda i: 20 + i)
    speech = read_speech_durations(example_vectors / "speech_durations.tsv")
    low, high = ConditionsDescription.load(calibration).speech_range_s_
    assert (low, high) == (20, 27)
    _run(score_example(example_vectors, tmp_path / "out", "--calibration", calibration), capsys)
    scores = pd.read_csv(tmp_path / "out" / "scores.csv", sep="\t")
    assert not scores.in_conditions.any()
    first = scores.iloc[0]
    assert first.conditions_reason == (
        f"enrollment speech {speech[first.enrollment]:.1f} s below the calibrated "
        f"{low:.1f}-{high:.1f} s; test speech {speech[first.test]:.1f} s below the calibrated "
        f"{low:.1f}-{high:.1f} s"
    )
    report = tmp_path / "report.html"
    enrollment, test = (
        EXAMPLE_AUDIO / f"{first.enrollment}.flac",
        EXAMPLE_AUDIO / f"{first.test}.flac",
    )
    printed = _run(
        ["compare", enrollment, "--test", test, "--calibration", calibration, "--report", report],
        capsys,
    )
    reason = f"enrollment speech {speech[first.enrollment]:.1f} s below the calibrated"
    warning = next(line for line in printed.splitlines() if line.startswith("WARNING:"))
    assert "outside the conditions of the calibration" in warning and reason in warning
    assert "balr score calibrate" in warning
    assert printed.index("WARNING:") < printed.index("LR = ")
    html = report.read_text()
    assert html.count("outside the conditions of the calibration") == 1  # the warning, once
    assert "Outside the calibration conditions</b> (see the warning at the top)" in html
    assert html.index("Outside the calibration conditions") < html.index("<h2>Attribute")


def test_the_documented_calibrate_command_leaves_in_domain_trials_in_conditions(
    example_vectors,  # noqa: F811
    tmp_path,
    capsys,
):
    """docs/scoring.md: `score test --vectors-dir V`, then `score calibrate SCORES DATA --out`
    (no --vectors-dir), then `score test --calibration` on the same clips: the calibration
    finds the vectors and durations the scores came from, so it has a conditions description
    and the clips it was fitted on are in its conditions (it used to flag every trial)."""
    _run(score_example(example_vectors, tmp_path / "scores"), capsys)
    calibration = tmp_path / "scores" / "my_calibration.json"
    out = _run(
        ["score", "calibrate", tmp_path / "scores" / "scores.csv", DATASET, "--out", calibration],
        capsys,
    )
    assert "conditions: 8 recordings" in out and "no conditions description" not in out
    _run(score_example(example_vectors, tmp_path / "re", "--calibration", calibration), capsys)
    scores = pd.read_csv(tmp_path / "re" / "scores.csv", sep="\t", keep_default_na=False)
    assert len(scores) == 28 and scores.in_conditions.astype(str).eq("True").mean() >= 0.9


def test_speech_longer_than_calibrated_is_a_note_in_score_test_and_compare(
    example_vectors,  # noqa: F811
    tmp_path,
    capsys,
):
    """A calibration of 1.0-1.7 s recordings: the examples' 2.7-5.9 s are longer, so every
    trial stays in conditions (the clips are its own population) with a note saying so."""
    calibration = _calibrated_with_speech(example_vectors, tmp_path, capsys, lambda i: 1 + i / 10)
    speech = read_speech_durations(example_vectors / "speech_durations.tsv")
    assert ConditionsDescription.load(calibration).speech_range_s_ == [1.0, 1.7]
    _run(score_example(example_vectors, tmp_path / "out", "--calibration", calibration), capsys)
    scores = pd.read_csv(tmp_path / "out" / "scores.csv", sep="\t")
    assert scores.in_conditions.all()
    first = scores.iloc[0]
    assert first.conditions_reason == (
        f"enrollment speech {speech[first.enrollment]:.1f} s above the calibrated 1.0-1.7 s "
        f"({LONGER_SPEECH}); test speech {speech[first.test]:.1f} s above the calibrated "
        f"1.0-1.7 s ({LONGER_SPEECH})"
    )
    printed = _run(
        ["compare", EXAMPLE_AUDIO / f"{first.enrollment}.flac", "--test",
         EXAMPLE_AUDIO / f"{first.test}.flac", "--calibration", calibration],
        capsys,
    )  # fmt: skip
    assert "WARNING:" not in printed
    assert f"note: test speech {speech[first.test]:.1f} s above the calibrated 1.0-1.7 s" in printed


def _calibrated_with_speech(vectors, tmp_path, capsys, seconds) -> Path:
    """calibration.json fitted on the examples' raw scores with the k-th recording (in id
    order) given `seconds(k)` of net speech."""
    raw = tmp_path / "raw"
    _run(score_example(vectors, raw, "--no-calibration"), capsys)
    speech = read_speech_durations(vectors / "speech_durations.tsv")
    durations = tmp_path / "speech.tsv"
    rows = [f"{item}\t{item}.flac\t{seconds(i)}\n" for i, item in enumerate(sorted(speech))]
    durations.write_text("id\tpath\tspeech_s\n" + "".join(rows))
    calibration = tmp_path / "calibration.json"
    _run(
        ["score", "calibrate", raw / "scores.csv", DATASET, "--vectors-dir", vectors,
         "--speech-durations", durations, "--out", calibration],
        capsys,
    )  # fmt: skip
    return calibration
