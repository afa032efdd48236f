"""The calibrator base: a score -> natural-log LR map, optionally clipped to ELUB bounds.

Each method is a subclass registered in `CALIBRATORS` under its `method` name. The base
owns what every method shares: the training-data checks, the per-trial groups, the class
counts, the ELUB bounds, the common fields of the calibration.json record and their checks
when loaded. A subclass owns its map: `_fit_map`, `_unbounded`, `_map_record`, `_read_map`.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from balr.calibration.elub import elub_bounds
from balr.calibration.fitting import (
    LN10,
    balanced_weights,
    check_groups,
    check_training_data,
)
from balr.errors import ConfigError, ModelError
from balr.estimator import Estimator
from balr.records import check_number, fail, read_int, read_list

#: method name -> calibrator class (filled as the method modules are imported)
CALIBRATORS: dict[str, type[Calibrator]] = {}
#: the map fields of the calibration.json format; a method writes the ones it does not use
#: with these neutral values (so every file has the same keys as before the methods split)
NEUTRAL_MAP_FIELDS: dict[str, Any] = {
    "slope": 0.0,
    "intercept": 0.0,
    "knots_x": [],
    "knots_llr": [],
}
#: the fields every record has besides the map fields (`groups` only when fitted with groups)
COMMON_FIELDS = (
    "method",
    "lower_bound",
    "upper_bound",
    "n_target",
    "n_nontarget",
    "groups",
    "description",
)


@dataclass(frozen=True)
class TrainingTrials:
    """Checked training data of a calibrator's map: scores, labels (1 target / 0 non-target),
    optional `(n, 2)` net speech seconds of both sides and per-trial group names."""

    scores: np.ndarray
    labels: np.ndarray
    durations: np.ndarray | None = None
    groups: np.ndarray | None = None


@dataclass(frozen=True)
class LLRParts:
    """A calibrated LLR split into exactly additive parts (natural logs, one value per trial):
    `llr = slope * score + offset + bounding` for `logistic` and `qmf` (`slope` None for `pav`,
    whose map is not linear: there `offset` is 0 and `llr = unbounded + bounding`).

    `offset` is the intercept, plus the duration terms for `qmf`; `bounding` is the change
    made by clipping to the ELUB bounds (0 inside them)."""

    llr: np.ndarray
    slope: float | None
    offset: np.ndarray
    bounding: np.ndarray


class Calibrator(Estimator):
    """A fitted score -> LLR map, clipped to the ELUB bounds of its training data when
    `bounded`. `description` is free text saved with it (what it was fitted on).

    Fitted attributes shared by every method: `lower_bound_`, `upper_bound_` (natural-log
    LRs; None when unbounded), `n_target_`, `n_nontarget_`, `groups_` (the group names fitted
    with, [] without groups); each method adds its own.
    """

    method: ClassVar[str] = ""
    #: whether `transform` needs the trials' speech durations
    uses_durations: ClassVar[bool] = False
    #: record fields of the method beyond `NEUTRAL_MAP_FIELDS` and `COMMON_FIELDS`
    extra_fields: ClassVar[tuple[str, ...]] = ()
    fitted_attributes: ClassVar[tuple[str, ...]] = ("n_target_", "n_nontarget_")
    estimator_label: ClassVar[str] = "the calibrator"
    saved_as: ClassVar[str] = "a calibration"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.method:
            CALIBRATORS[cls.method] = cls

    def __init__(self, bounded: bool = True, description: str = ""):
        self.bounded = bool(bounded)
        self.description = description
        self.lower_bound_: float | None = None
        self.upper_bound_: float | None = None
        self.n_target_: int | None = None
        self.n_nontarget_: int | None = None
        self.groups_: list[str] | None = None

    def fit(
        self,
        scores: np.ndarray,
        labels: np.ndarray,
        durations: np.ndarray | None = None,
        groups: np.ndarray | None = None,
    ) -> Calibrator:
        """Fit on labelled scores (labels 1 target / 0 non-target). `durations`: `(n, 2)` net
        speech seconds of the enrollment and test side of each trial (used by `qmf`; NaN not
        allowed here). `groups`: optional per-trial group names (each group weighs equally,
        classes balanced inside it)."""
        scores, labels = check_training_data(scores, labels)
        groups = check_groups(groups, len(labels))
        self.groups_ = [] if groups is None else sorted(set(groups.tolist()))
        self._fit_map(TrainingTrials(scores, labels, durations, groups))
        self.n_target_ = int(labels.sum())
        self.n_nontarget_ = int(len(labels) - labels.sum())
        self.lower_bound_ = self.upper_bound_ = None
        if self.bounded:  # on the trials as the fit weighs them: each group equally
            weights = None if groups is None else balanced_weights(labels, groups)
            llrs10 = self.transform(scores, durations) / LN10
            lower10, upper10 = elub_bounds(llrs10, labels, weights=weights)
            self.lower_bound_, self.upper_bound_ = lower10 * LN10, upper10 * LN10
        return self

    def transform(self, scores: np.ndarray, durations: np.ndarray | None = None) -> np.ndarray:
        """Calibrated natural-log LRs of `scores`, clipped to the ELUB bounds if fitted.
        `durations` (`(n, 2)` seconds) are used by the methods that `uses_durations`."""
        return self.parts(scores, durations).llr

    def parts(self, scores: np.ndarray, durations: np.ndarray | None = None) -> LLRParts:
        """The calibrated LLRs and their exactly additive parts (see `LLRParts`)."""
        self.check_fitted()
        scores = np.asarray(scores, dtype=np.float64)
        unbounded, slope, offset = self._unbounded(scores, durations)
        if self.population_offset:
            unbounded, offset = unbounded + self.population_offset, offset + self.population_offset
        lower = -np.inf if self.lower_bound_ is None else self.lower_bound_
        upper = np.inf if self.upper_bound_ is None else self.upper_bound_
        llrs = np.clip(unbounded, lower, upper)  # NaN scores stay NaN
        return LLRParts(llrs, slope, offset, llrs - unbounded)

    #: LLR offset added before the bounds for a relevant population's conditions (not
    #: fitted, not saved: `shifted`, `balr.population_decision.decide_adaptation`)
    population_offset: float = 0.0

    def shifted(self, offset: float) -> Calibrator:
        """A copy whose LLRs are `offset` higher before the ELUB bounds (the offset is one
        of the LLR's additive parts: explanations stay exact)."""
        moved = copy.copy(self)
        moved.population_offset = self.population_offset + float(offset)
        return moved

    def within(self, lower: float, upper: float) -> Calibrator:
        """A copy whose ELUB bounds are narrowed to `[lower, upper]` (natural-log LR; never
        widened: each bound moves only toward 0), e.g. to a relevant population's own
        (`balr.population_bounds`); the clipping stays the LLR's `bounding` part."""
        self.check_fitted()
        if self.lower_bound_ is None or self.upper_bound_ is None:
            raise ConfigError("an unbounded calibration cannot be narrowed to other bounds")
        if not lower <= 0 <= upper:
            raise ConfigError(f"ELUB bounds must satisfy lower <= 0 <= upper, got {lower}, {upper}")
        narrowed = copy.copy(self)
        narrowed.lower_bound_ = max(self.lower_bound_, float(lower))
        narrowed.upper_bound_ = min(self.upper_bound_, float(upper))
        return narrowed

    def duration_offsets(self, durations: np.ndarray | None, n_trials: int) -> np.ndarray:
        """The per-trial LLR offset from the speech durations (zeros: no duration terms)."""
        return np.zeros(n_trials)

    def duration_notes(self, durations: np.ndarray) -> list[str]:
        """Per trial of `(n, 2)` speech seconds, a note where the calibration uses another
        duration than the trial's (empty: none; `qmf` says where it clamps)."""
        return [""] * len(durations)

    # ------------------------------------------------------------------ method hooks
    def _fit_map(self, data: TrainingTrials) -> None:
        raise NotImplementedError

    def _unbounded(
        self, scores: np.ndarray, durations: np.ndarray | None
    ) -> tuple[np.ndarray, float | None, np.ndarray]:
        """`(unbounded LLRs, slope or None, offset)` of `scores`."""
        raise NotImplementedError

    def _map_record(self) -> dict[str, Any]:
        """The method's fields of the record (their place: after `method`)."""
        raise NotImplementedError

    def _read_map(self, record: Mapping[str, Any], source: str) -> None:
        """Set the method's fitted attributes from a record, checking each field."""
        raise NotImplementedError

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """The parameters as stored in calibration.json (natural-log LRs; durations as
        natural logs of seconds). `groups` appears only when used, so a file without groups
        keeps the format it had before them."""
        record = {"method": self.method} | NEUTRAL_MAP_FIELDS | self._map_record()
        record |= {
            "lower_bound": self.lower_bound_,
            "upper_bound": self.upper_bound_,
            "n_target": self.n_target_,
            "n_nontarget": self.n_nontarget_,
        }
        if self.groups_:
            record["groups"] = self.groups_
        return record | {"description": self.description}

    def save(self, path: str | os.PathLike) -> Path:
        """Write a calibration.json holding this calibrator only (no conditions description;
        `CalibrationBundle` saves both), atomically; the path written."""
        from balr.calibration.bundle import CalibrationBundle

        self.check_fitted()
        return CalibrationBundle(self).save(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Calibrator:
        """The calibrator of a calibration.json (plain JSON, every field checked)."""
        from balr.calibration.bundle import read_calibrator

        calibrator = read_calibrator(path)
        if not isinstance(calibrator, cls):
            raise ModelError(
                f"{path}: holds a '{calibrator.method}' calibrator, not a {cls.__name__}"
            )
        return calibrator

    @classmethod
    def from_dict(cls, record: Any, source: str | os.PathLike) -> Calibrator:
        """A fitted calibrator from its calibration.json record; `source` (the file) names
        it in the one-line `ModelError` raised for any malformed or inconsistent field."""
        source = str(source)
        if not isinstance(record, Mapping):
            raise fail(source, "calibrator", "must be a JSON object")
        method = record.get("method")
        if method not in CALIBRATORS:
            shown = method if isinstance(method, str) else repr(method)
            raise fail(source, "method", f"is '{shown}', expected one of {', '.join(CALIBRATORS)}")
        cls_of_method = CALIBRATORS[method]
        unknown = set(record) - {*COMMON_FIELDS, *NEUTRAL_MAP_FIELDS, *cls_of_method.extra_fields}
        if unknown:
            raise ModelError(
                f"{source}: not a balr calibration file (unexpected field(s) "
                f"{', '.join(sorted(unknown))})"
            )
        lower, upper = _read_bounds(record, source)
        description = record.get("description", "")
        if not isinstance(description, str):
            raise fail(source, "description", "must be a string")
        calibrator = cls_of_method(lower is not None, description)
        calibrator.lower_bound_, calibrator.upper_bound_ = lower, upper
        calibrator.n_target_ = read_int(record, "n_target", source, positive=True)
        calibrator.n_nontarget_ = read_int(record, "n_nontarget", source, positive=True)
        calibrator.groups_ = _read_groups(record, source)
        calibrator._read_map(record, source)
        return calibrator


def make_calibrator(
    method: str = "logistic", bounded: bool = True, description: str = ""
) -> Calibrator:
    """A new (unfitted) calibrator by method name (`CALIBRATORS`)."""
    if method not in CALIBRATORS:
        raise ConfigError(
            f"calibration method '{method}': expected one of {', '.join(CALIBRATORS)}"
        )
    return CALIBRATORS[method](bounded, description)


def check_neutral(record: Mapping[str, Any], keys: tuple[str, ...], source: str) -> None:
    """A method's unused map fields must hold their neutral values (`NEUTRAL_MAP_FIELDS`)."""
    for key in keys:
        if key not in record:
            raise fail(source, key, "is missing")
        if record[key] != NEUTRAL_MAP_FIELDS[key]:
            raise fail(
                source,
                key,
                f"must be {NEUTRAL_MAP_FIELDS[key]} for a '{record['method']}' calibration "
                f"(unused by that method), got {record[key]!r}"[:200],
            )


def _read_bounds(record: Mapping[str, Any], source: str) -> tuple[float | None, float | None]:
    """The ELUB bounds: both null (unbounded) or `lower_bound <= 0 <= upper_bound`."""
    for key in ("lower_bound", "upper_bound"):
        if key not in record:
            raise fail(source, key, "is missing")
    lower, upper = record["lower_bound"], record["upper_bound"]
    if lower is None and upper is None:
        return None, None
    lower = check_number(lower, source, "lower_bound")
    upper = check_number(upper, source, "upper_bound")
    if lower > upper:
        raise fail(
            source,
            "lower_bound",
            f"must not exceed upper_bound {upper:g} (ELUB bounds), got {lower:g}",
        )
    if lower > 0:
        raise fail(source, "lower_bound", f"must be <= 0 (an ELUB lower bound), got {lower:g}")
    if upper < 0:
        raise fail(source, "upper_bound", f"must be >= 0 (an ELUB upper bound), got {upper:g}")
    return lower, upper


def _read_groups(record: Mapping[str, Any], source: str) -> list[str]:
    if record.get("groups") is None:
        return []
    groups = read_list(record, "groups", source)
    if not all(isinstance(name, str) for name in groups):
        raise fail(source, "groups", "must be a list of group names (strings)")
    return groups
