"""`balr score calibrate`: fit a calibrator (and the description of its conditions) on the
labelled trials of a `score test` scores.csv."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from balr.calibration import METHODS, CalibrationBundle, Calibrator, make_calibrator
from balr.conditions import (
    DEFAULT_SIMILARITY_PERCENTILE,
    ConditionsDescription,
    describe_recordings,
)
from balr.data import AudioDataset, Trials
from balr.data.speech import SPEECH_FILE, load_speech_durations, trial_seconds
from balr.errors import ConfigError, DataError
from balr.evaluation.metrics import cllr
from balr.evaluation.score_files import read_labelled_trials
from balr.population import describe_record
from balr.scoring.jobs.population import calibration_population
from balr.scoring.jobs.test import scored_vector_kind

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalibrationFit:
    """How `score calibrate` fits: the `method` (logistic, pav, qmf), where it saves
    (`out`, default calibration.json beside the scores), the scores' separator and score
    `column` (default `raw_score` if present, else `scores`), whether LLRs are `bounded`
    (ELUB), the `group_column` naming each trial's group (each group weighs equally), the
    speech durations file (default: the one in `vectors_dir`, else the dataset's folder;
    `qmf` needs them), and the conditions description: fitted when `describe_conditions`, on
    the `vector_kind` vectors (default: those scored, `scored_vector_kind`), with
    `conditions_percentile`, the share (%) of calibration recordings whose similarity to
    the others is taken as the lowest in conditions (lower: fewer warnings in domain, and
    fewer out of it; docs/scoring.md gives the measured trade-off). With `population` (a
    dataset) the scores must have been adapted to it (`score test --population`), and the
    calibration records it either way (`balr.scoring.jobs.population`)."""

    method: str = "logistic"
    out: Path | None = None
    sep: str = "\t"
    column: str | None = None
    bounded: bool = True
    group_column: str | None = None
    speech_durations: Path | None = None
    vectors_dir: Path | None = None
    vector_kind: str | None = None
    describe_conditions: bool = True
    conditions_percentile: float = DEFAULT_SIMILARITY_PERCENTILE
    population: Path | None = None

    def check(self) -> None:
        """ConfigError on a method or vector kind balr does not have."""
        if self.method not in METHODS:
            raise ConfigError(f"--method {self.method}: expected one of {', '.join(METHODS)}")
        if self.vector_kind not in (None, "ba", "emb"):
            raise ConfigError(f"--vectors {self.vector_kind}: expected ba or emb")


@dataclass(frozen=True)
class FittedCalibration:
    calibrator: Calibrator
    path: Path
    cllr_before: float  # on the training trials (optimistic)
    cllr_after: float
    conditions: ConditionsDescription | None = None
    conditions_note: str = ""  # why no conditions description was fitted
    population: dict | None = None  # the population the scores were adapted to

    def summary(self) -> str:
        c = self.calibrator
        text = (
            f"{c.method} calibrator on {c.n_target_} target and {c.n_nontarget_} non-target "
            f"trials: Cllr {self.cllr_before:.4f} -> {self.cllr_after:.4f} on these trials; "
            f"saved to {self.path}"
        )
        if self.conditions is not None:
            low, high = self.conditions.speech_range_s_
            text += (
                f"; conditions: {self.conditions.n_recordings_} recordings, speech "
                f"{low:.1f}-{high:.1f} s, similarity >= {self.conditions.similarity_threshold_:.2f}"
            )
        elif self.conditions_note:
            text += f"; no conditions description ({self.conditions_note})"
        if self.population is not None:
            text += f"; scores adapted to the {describe_record(self.population)}"
        return text


def calibrate_scores_file(
    scores_csv: Path, data: Path, fit: CalibrationFit | None = None
) -> FittedCalibration:
    """Fit a calibrator on the labelled trials of a `score test` scores.csv (labels from the
    speakers of dataset `data`) and save it, with the conditions description of the
    calibration recordings unless not `fit.describe_conditions` (it needs the speech
    durations: without them the calibration is saved without one, and the result says why).
    """
    fit = fit or CalibrationFit()
    fit.check()
    population = calibration_population(scores_csv, fit.population, fit.vectors_dir)
    dataset = AudioDataset.from_path(data, output_dir=fit.vectors_dir)
    labelled = read_labelled_trials(scores_csv, dataset, fit.sep, fit.column)
    groups = _trial_groups(labelled.trials, labelled.keep, fit.group_column, scores_csv)
    folder = fit.vectors_dir or dataset.root
    durations = load_speech_durations(fit.speech_durations, folder)
    kept = labelled.trials.subset(labelled.keep)
    seconds = trial_seconds(kept, durations) if durations is not None else None
    if fit.method == "qmf":
        _check_qmf_durations(seconds, kept, folder)
    description = f"{fit.method} fitted on '{labelled.column}' of {scores_csv}"
    if fit.group_column:
        description += f", each '{fit.group_column}' group weighing equally"
    calibrator = make_calibrator(fit.method, fit.bounded, description)
    calibrator.fit(labelled.scores, labelled.labels, seconds, groups)
    out = fit.out or scores_csv.parent / "calibration.json"
    conditions, note = None, "not asked for"
    if fit.describe_conditions and durations is None:
        note = f"no {SPEECH_FILE} in {folder}"
        logger.warning("calibration saved without a conditions description: %s", note)
    elif fit.describe_conditions:
        kind = fit.vector_kind or scored_vector_kind(scores_csv)
        conditions = describe_recordings(
            dataset, kept.unique_ids(), durations, kind, fit.conditions_percentile
        )
    CalibrationBundle(calibrator, conditions, population).save(out)
    before = cllr(labelled.scores, labelled.labels)
    after = cllr(calibrator.transform(labelled.scores, seconds), labelled.labels)
    return FittedCalibration(calibrator, out, before, after, conditions, note, population)


def _trial_groups(
    trials: Trials, keep: np.ndarray, column: str | None, path: Path
) -> np.ndarray | None:
    if not column:
        return None
    if column not in trials.frame.columns:
        raise DataError(f"{path}: no group column '{column}'")
    return trials.frame[column].astype(str).to_numpy()[keep]


def _check_qmf_durations(seconds: np.ndarray | None, trials: Trials, folder: Path) -> None:
    if seconds is None:
        raise DataError(
            f"--method qmf needs the recordings' speech durations: no {SPEECH_FILE} in "
            f"{folder} (written by `balr extract`; or give --speech-durations)"
        )
    unknown = np.flatnonzero(np.isnan(seconds).any(axis=1))
    if len(unknown):
        first = unknown[0]
        raise DataError(
            f"--method qmf: {len(unknown)} trials use a recording without a speech duration, "
            f"e.g. {','.join(trials.enrollment[first])} vs {','.join(trials.test[first])}"
        )
