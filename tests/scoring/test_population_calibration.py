"""`score calibrate --population`: a calibration fitted on population-adapted scores records
the population (source, sizes, sha256 of its vectors), refuses scores adapted to another or
to none, and `score test` warns in one line when such a calibration is applied without that
population."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from balr.calibration import CalibrationBundle
from balr.data import AudioDataset
from balr.errors import DataError, ModelError
from balr.population import read_population
from balr.scoring.config import ScoreSettings
from balr.scoring.jobs import CalibrationFit, TrialScoring, calibrate_scores_file, score_trials_file


def _score(root, checkpoint, out, population=None, calibration=None):
    options = TrialScoring(
        ScoreSettings.from_overrides([f"scorer.checkpoint_path={checkpoint}"]),
        save_dir=out, exist_ok=True, vectors_dir=root / "vectors", population=population,
        calibration=calibration, no_calibration=calibration is None,
    )  # fmt: skip
    return score_trials_file(root / "case.csv", root / "trials.tsv", options)


def _calibrate(root, scores_dir, population=None):
    fit = CalibrationFit(vectors_dir=root / "vectors", describe_conditions=False,
                         population=population)  # fmt: skip
    return calibrate_scores_file(scores_dir / "scores.csv", root / "case.csv", fit)


@pytest.fixture(scope="module")
def calibrated(channel_case, tmp_path_factory):
    """Scores adapted to pop.csv, and the calibration fitted on them with --population."""
    root, checkpoint = channel_case
    out = tmp_path_factory.mktemp("calibrated")
    _score(root, checkpoint, out / "adapted", root / "pop.csv")
    fitted = _calibrate(root, out / "adapted", root / "pop.csv")
    return root, checkpoint, out, fitted


def test_the_calibration_records_the_population_of_its_scores(calibrated):
    root, _, out, fitted = calibrated
    pop = read_population(
        AudioDataset.from_path(root / "pop.csv", output_dir=root / "vectors"), "pop"
    )
    expected = {"source": str(root / "pop.csv"), "n_recordings": 24, "n_speakers": 6,
                "sha256": pop.fingerprint()}  # fmt: skip
    assert json.loads(fitted.path.read_text())["population"] == expected
    assert CalibrationBundle.load(fitted.path).population == expected
    assert fitted.summary().endswith(
        f"; scores adapted to the population {root / 'pop.csv'} (24 recordings, 6 speakers)"
    )
    # without --population the record still comes from the scores' run
    assert _calibrate(root, out / "adapted").population == expected


def test_scores_adapted_to_another_population_or_none_are_refused(calibrated):
    root, checkpoint, out, _ = calibrated
    with pytest.raises(DataError, match="whose vectors differ from those of .*ref.csv; score"):
        _calibrate(root, out / "adapted", root / "ref.csv")
    _score(root, checkpoint, out / "plain")
    with pytest.raises(DataError) as error:
        _calibrate(root, out / "plain", root / "pop.csv")
    assert str(error.value) == (
        f"{out / 'plain' / 'scores.csv'}: scored without a population; score the trials with "
        f"`balr score test ... --population {root / 'pop.csv'}` first"
    )


def test_score_test_warns_once_without_the_calibrations_population(calibrated, caplog):
    root, checkpoint, out, fitted = calibrated
    caplog.set_level(logging.WARNING)
    _score(root, checkpoint, out / "same", root / "pop.csv", fitted.path)
    assert not [r for r in caplog.records if "fitted on scores adapted" in r.getMessage()]
    _score(root, checkpoint, out / "none", None, fitted.path)
    warned = [
        r.getMessage() for r in caplog.records if "fitted on scores adapted" in r.getMessage()
    ]
    assert len(warned) == 1 and "\n" not in warned[0]
    assert warned[0].startswith(
        f"the calibration was fitted on scores adapted to the population {root / 'pop.csv'} "
        "(24 recordings, 6 speakers, sha256 "
    )
    assert warned[0].endswith(", these scores to none: the LRs may mislead; give --population")
    caplog.clear()
    rows = pd.concat([pd.read_csv(root / "case.csv"), pd.read_csv(root / "pop.csv")])
    rows.to_csv(root / "other.csv", index=False)
    _score(root, checkpoint, out / "other", root / "other.csv", fitted.path)
    warned = [
        r.getMessage() for r in caplog.records if "fitted on scores adapted" in r.getMessage()
    ]
    assert len(warned) == 1 and f"another population ({root / 'other.csv'}, sha256" in warned[0]


def test_a_damaged_population_record_is_one_line(calibrated, tmp_path):
    _, _, _, fitted = calibrated
    record = json.loads(fitted.path.read_text())
    record["population"]["sha256"] = "abc"
    damaged = tmp_path / "calibration.json"
    damaged.write_text(json.dumps(record))
    with pytest.raises(ModelError) as error:
        CalibrationBundle.load(damaged)
    assert str(error.value) == f"{damaged}: field 'population.sha256' is missing or malformed"


def test_cli_score_calibrate_population(calibrated, tmp_path):
    from typer.testing import CliRunner

    from balr.cli.main import app

    root, _, out, _ = calibrated
    args = ["score", "calibrate", out / "adapted" / "scores.csv", root / "case.csv",
            "--vectors-dir", root / "vectors", "--population", root / "pop.csv",
            "--no-conditions", "--out", tmp_path / "cal.json"]  # fmt: skip
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "scores adapted to the population" in result.output.replace("\n", " ")
    assert json.loads((tmp_path / "cal.json").read_text())["population"]["n_recordings"] == 24
    args[-4] = root / "ref.csv"  # another population: the one-line DataError
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert isinstance(result.exception, DataError) and "whose vectors differ" in str(
        result.exception
    )
