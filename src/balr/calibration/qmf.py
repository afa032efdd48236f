"""Quality-measure-function calibration (Brümmer et al., "Fusion of heterogeneous speaker
recognition systems in the STBU submission for the NIST SRE 2006", IEEE TASLP 2007;
Mandasari et al., "Quality measure functions for calibration of speaker recognition systems
in various duration conditions", IEEE TASLP 2013):
`llr = slope * s + intercept + c_min * dmin + c_max * dmax`, where dmin / dmax are the log
net speech seconds (floored at `MIN_SPEECH_S`) of the side with less / more speech, clamped
to the [0.5, 99.5] % range seen in calibration; balanced logistic regression."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from balr.calibration.base import TrainingTrials
from balr.calibration.fitting import (
    MIN_SPEECH_S,
    balanced_weights,
    fit_weighted_logistic,
    log_durations,
)
from balr.calibration.logistic import LogisticCalibrator
from balr.errors import DataError
from balr.records import fail, read_list, read_number, read_numbers

#: the keys a `qmf` calibration.json record adds (attributes of the same name + `_`)
QMF_KEYS = ("duration_coefs", "log_duration_ranges", "log_duration_medians", "min_speech_s")
#: percentiles of the calibration trials' log durations that bound the qmf duration terms
DURATION_PERCENTILES = (0.5, 99.5)


class QMFCalibrator(LogisticCalibrator):
    """Logistic plus duration terms `duration_coefs_ @ [dmin, dmax]`.

    Fitted attributes beyond the logistic ones: `duration_coefs_` (`[c_min, c_max]`),
    `log_duration_ranges_` (`[[dmin low, high], [dmax low, high]]`), `log_duration_medians_`
    (used for trials without durations), `min_speech_s_` (the floor of the speech seconds).
    """

    method: ClassVar[str] = "qmf"
    uses_durations: ClassVar[bool] = True
    extra_fields: ClassVar[tuple[str, ...]] = QMF_KEYS
    fitted_attributes: ClassVar[tuple[str, ...]] = (
        *LogisticCalibrator.fitted_attributes,
        *(f"{key}_" for key in QMF_KEYS),
    )

    def __init__(self, bounded: bool = True, description: str = ""):
        super().__init__(bounded, description)
        self.duration_coefs_: list[float] | None = None
        self.log_duration_ranges_: list[list[float]] | None = None
        self.log_duration_medians_: list[float] | None = None
        self.min_speech_s_: float | None = None

    def _fit_map(self, data: TrainingTrials) -> None:
        self.min_speech_s_ = MIN_SPEECH_S
        logs = self._fit_duration_ranges(data.durations, len(data.scores))
        features = np.column_stack([data.scores, self._clamped(logs)])
        coefs, self.intercept_ = fit_weighted_logistic(
            features, data.labels, balanced_weights(data.labels, data.groups)
        )
        self.slope_, self.duration_coefs_ = coefs[0], coefs[1:]

    def _unbounded(
        self, scores: np.ndarray, durations: np.ndarray | None
    ) -> tuple[np.ndarray, float | None, np.ndarray]:
        offset = np.full_like(scores, self.intercept_)
        offset = offset + self.duration_offsets(durations, len(scores))
        return self.slope_ * scores + offset, self.slope_, offset

    def duration_offsets(self, durations: np.ndarray | None, n_trials: int) -> np.ndarray:
        """`c_min * dmin + c_max * dmax` per trial, with the clamped log durations (`(n, 2)`
        seconds; a trial with NaN, or all trials when None, gets the calibration medians)."""
        if durations is None:
            logs = np.full((n_trials, 2), np.nan)
        else:
            logs = log_durations(durations, self.min_speech_s_)
            if len(logs) != n_trials:
                raise DataError(f"speech durations: {len(logs)} rows for {n_trials} trials")
        logs = np.where(np.isnan(logs), np.asarray(self.log_duration_medians_), logs)
        return self._clamped(logs) @ np.asarray(self.duration_coefs_)

    def duration_notes(self, durations: np.ndarray) -> list[str]:
        """Per trial, where the duration terms clamp its shorter or longer side's speech to
        the calibrated range (`the qmf duration terms count the longer side's 12.0 s of speech
        as 7.5 s, the calibrated 1.4-7.5 s`); empty where they do not or it is unknown."""
        from balr.conditions.trials import apart  # (balr.conditions imports balr.calibration)

        seconds = np.asarray(durations, dtype=np.float64).reshape(-1, 2)
        sides = np.stack([seconds.min(axis=1), seconds.max(axis=1)], axis=1)
        logs = log_durations(seconds, self.min_speech_s_)
        used, bounds = self._clamped(logs), np.exp(np.asarray(self.log_duration_ranges_))
        notes = []
        for trial_sides, trial_logs, trial_used in zip(sides, logs, used, strict=True):
            found = []
            for side, actual, log, kept, (low, high) in zip(
                ("shorter", "longer"), trial_sides, trial_logs, trial_used, bounds, strict=True
            ):
                if np.isfinite(log) and log != kept:
                    value, as_used, low_text, high_text = apart(actual, np.exp(kept), low, high)
                    found.append(
                        f"the qmf duration terms count the {side} side's {value} s of speech "
                        f"as {as_used} s, the calibrated {low_text}-{high_text} s"
                    )
            notes.append("; ".join(found))
        return notes

    def _fit_duration_ranges(self, durations: np.ndarray | None, n_trials: int) -> np.ndarray:
        if durations is None:
            raise DataError("qmf calibration needs the speech durations of the trials")
        logs = log_durations(durations, self.min_speech_s_)
        if len(logs) != n_trials:
            raise DataError(f"speech durations: {len(logs)} rows for {n_trials} trials")
        if not np.isfinite(logs).all():
            raise DataError("qmf calibration: every trial needs known speech durations")
        self.log_duration_ranges_ = np.percentile(logs, DURATION_PERCENTILES, axis=0).T.tolist()
        self.log_duration_medians_ = np.median(logs, axis=0).tolist()
        return logs

    def _clamped(self, logs: np.ndarray) -> np.ndarray:
        ranges = np.asarray(self.log_duration_ranges_)
        return np.clip(logs, ranges[:, 0], ranges[:, 1])

    def _map_record(self) -> dict[str, Any]:
        record = super()._map_record()
        return record | {key: getattr(self, f"{key}_") for key in QMF_KEYS}

    def _read_map(self, record: Mapping[str, Any], source: str) -> None:
        super()._read_map(record, source)
        self.duration_coefs_ = read_numbers(record, "duration_coefs", source, length=2).tolist()
        self.log_duration_ranges_ = _read_ranges(record, source)
        medians = read_numbers(record, "log_duration_medians", source, length=2)
        self.log_duration_medians_ = medians.tolist()
        self.min_speech_s_ = read_number(record, "min_speech_s", source, positive=True)


def _read_ranges(record: Mapping[str, Any], source: str) -> list[list[float]]:
    """`[[low, high], [low, high]]` log seconds of dmin and dmax, each `low <= high`."""
    ranges = read_list(record, "log_duration_ranges", source, length=2)
    checked = []
    for index, pair in enumerate(ranges):
        field = f"log_duration_ranges[{index}]"
        low, high = read_numbers({field: pair}, field, source, length=2)
        if low > high:
            raise fail(
                source, field, f"must be [low, high] with low <= high, got [{low:g}, {high:g}]"
            )
        checked.append([float(low), float(high)])
    return checked
