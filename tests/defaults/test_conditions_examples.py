"""Calibration conditions on the bundled examples: `score calibrate` describes the clips,
`score test` marks each trial in / out of conditions, `compare` warns outside them."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from balr.conditions import ConditionsDescription
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
    # expected independently: speech inside the stored range (the shortest and the longest
    # clip fall just outside the 0.5-99.5 % percentiles of 8 values) ...
    speech = read_speech_durations(example_vectors / "speech_durations.tsv")
    low, high = description.speech_range_s_
    good_speech = {i: low <= s <= high for i, s in speech.items()}
    assert sum(good_speech.values()) == 6
    # ... and similarity: the clips are the calibration population itself (at the fit their
    # neighbours were other speakers' clips only, now they find themselves too)
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
    raw = tmp_path / "raw"
    _run(score_example(example_vectors, raw, "--no-calibration"), capsys)
    speech = read_speech_durations(example_vectors / "speech_durations.tsv")
    long_speech = tmp_path / "long_speech.tsv"
    rows = [f"{item}\t{item}.flac\t{20 + i}\n" for i, item in enumerate(sorted(speech))]
    long_speech.write_text("id\tpath\tspeech_s\n" + "".join(rows))
    calibration = tmp_path / "calibration.json"
    _run(
        ["score", "calibrate", raw / "scores.csv", DATASET, "--vectors-dir", example_vectors,
         "--speech-durations", long_speech, "--out", calibration],
        capsys,
    )  # fmt: skip
    low, high = ConditionsDescription.load(calibration).speech_range_s_
    assert 20 < low < 20.1 and 26.9 < high < 27
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
