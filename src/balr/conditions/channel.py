"""The recording channel a calibration saw, and whether a recording came through another one.

A speaker embedding is trained to ignore the channel (microphone, telephone line, room), so
the embedding similarity of `balr.conditions.ConditionsDescription` misses two recordings
that share a channel the calibration never saw; through a shared telephone line or hall
5-45 % of different-speaker trials then got LR > 100 (docs/population.md). The channel
profile (`channel_profile`) measures what the embedding ignores, in numpy (compare imports
no torch): 32 Slaney mel bands of 25 ms frames every 10 ms at 16 kHz, in dB; per band the
mean over the louder half of the frames minus their overall level (spectral shape), the
standard deviation over those frames, and the 10th percentile over all frames minus the
level (noise floor): 96 values.

`ChannelReference` keeps the calibration recordings' profiles (standardised per value) and
scores a recording by the mean Euclidean distance to its `neighbours` (10) nearest reference
profiles (a kNN novelty score, as `ConditionsDescription`'s). Its threshold is the highest
of the per-corpus `percentile` (98 %) values of the calibration recordings' own distances
(each scored against the references of other speakers, like a new speaker): no covered
corpus is flagged much more than 2 % of the time, whatever its spread, at the cost of a
looser bound for the tighter corpora (recipes/build_channel_reference.log for the measured
rates). On the issue-13 research cache this profile told channel-shifted recordings from the
calibration's with ROC AUC 0.97-0.998 (recipes/research/r07_domain_detectors.py, r08).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from balr.conditions.trials import apart
from balr.embeddings.ge2e_numpy import N_FFT, SAMPLE_RATE, mel_spectrogram, slaney_mel_filterbank
from balr.errors import DataError, ModelError, load_failure_reason
from balr.estimator import Estimator
from balr.fileio import atomic_path
from balr.records import check_finite, check_shape, fail

if TYPE_CHECKING:
    from balr.scoring.selection import CalibrationChoice

#: mel bands of the profile (values: 3 per band)
PROFILE_BANDS = 32
PROFILE_SIZE = 3 * PROFILE_BANDS
#: band power floor (-100 dB) so that digital silence stays finite
POWER_FLOOR = 1e-10
#: the noise floor's percentile over frames
FLOOR_PERCENTILE = 10.0


def channel_profile(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """`(96,)` float32: per mel band the loud frames' mean dB minus their level, their
    standard deviation, and the 10th-percentile dB minus the level (module docstring)."""
    wave = np.asarray(wave, dtype=np.float32).reshape(-1)
    if sample_rate != SAMPLE_RATE:
        from balr.audio import resample

        wave = resample(wave, sample_rate, SAMPLE_RATE)
    if len(wave) < N_FFT:
        raise DataError(f"channel profile: {len(wave)} samples, at least {N_FFT} needed")
    bands_db = 10 * np.log10(np.maximum(mel_spectrogram(wave, _filterbank()), POWER_FLOOR))
    energy = bands_db.mean(axis=1)
    loud = bands_db[energy >= np.median(energy)]
    level = loud.mean()
    floor = np.percentile(bands_db, FLOOR_PERCENTILE, axis=0) - level
    return np.concatenate([loud.mean(0) - level, loud.std(0), floor]).astype(np.float32)


_FILTERBANK: list[np.ndarray] = []


def _filterbank() -> np.ndarray:
    """The profile's 32-band Slaney filterbank (built once)."""
    if not _FILTERBANK:
        _FILTERBANK.append(slaney_mel_filterbank(SAMPLE_RATE, N_FFT, PROFILE_BANDS))
    return _FILTERBANK[0]


def knn_distance(
    queries: np.ndarray, references: np.ndarray, k: int, exclude: np.ndarray | None = None
) -> np.ndarray:
    """Per query row, the mean Euclidean distance to its `k` nearest reference rows
    (`exclude[i, j]` True: reference j is not a neighbour of query i)."""
    out = np.empty(len(queries))
    square = (references**2).sum(1)[None]
    for start in range(0, len(queries), 1024):
        rows = slice(start, start + 1024)
        q = queries[rows]
        distance = np.sqrt(np.clip((q**2).sum(1)[:, None] + square - 2 * q @ references.T, 0, None))
        if exclude is not None:
            distance[exclude[rows]] = np.inf
        out[rows] = np.partition(distance, k - 1, axis=1)[:, :k].mean(1)
    return out


class ChannelReference(Estimator):
    """The channel profiles of a calibration's recordings and the distance beyond which a
    recording's channel is unlike theirs.

    Fitted attributes: `profiles_` (`(n, 96)` float16 reference profiles), `shift_` and
    `scale_` (per-value mean and standard deviation of the references, standardising them),
    `group_thresholds_` (`{corpus: percentile of its recordings' distances}`) and
    `threshold_` (the highest of them)."""

    fitted_attributes: ClassVar[tuple[str, ...]] = (
        "profiles_", "shift_", "scale_", "group_thresholds_", "threshold_",
    )  # fmt: skip
    estimator_label: ClassVar[str] = "the channel reference"
    saved_as: ClassVar[str] = "channel_reference.safetensors"

    def __init__(self, neighbours: int = 10, percentile: float = 98.0):
        self.neighbours = neighbours
        self.percentile = percentile

    def fit(
        self,
        profiles: np.ndarray,
        groups: Sequence[str],
        speakers: Sequence[str] | None = None,
        standardised_as: ChannelReference | None = None,
    ) -> ChannelReference:
        """Keep `profiles` (`(n, 96)`, one per calibration recording of corpus `groups[i]`);
        each is scored against the others (of other speakers when `speakers` is given) and
        the threshold is the highest per-corpus `percentile` of these distances. The profile
        values are standardised by their own mean and spread, or by those of
        `standardised_as` (a reference of many channels: a few recordings of one channel
        spread too little on some values to scale them)."""
        profiles = np.asarray(profiles, dtype=np.float64)
        groups = np.asarray(groups, dtype=str)
        if profiles.ndim != 2 or profiles.shape[1] != PROFILE_SIZE or len(groups) != len(profiles):
            raise DataError(
                f"channel reference: need (n, {PROFILE_SIZE}) profiles and one group each, "
                f"got {profiles.shape} and {len(groups)}"
            )
        if len(profiles) <= self.neighbours:
            raise DataError(
                f"channel reference: {len(profiles)} profiles, need > {self.neighbours}"
            )
        self.profiles_ = profiles.astype(np.float16)
        stored = self.profiles_.astype(np.float64)
        if standardised_as is not None:
            self.shift_, self.scale_ = standardised_as.shift_, standardised_as.scale_
        else:
            self.shift_ = stored.mean(0).astype(np.float32)
            self.scale_ = (stored.std(0) + 1e-6).astype(np.float32)
        owners = np.asarray(speakers if speakers is not None else np.arange(len(stored)))
        own = self._distances(stored, owners[:, None] == owners[None, :])
        self.group_thresholds_ = {
            str(g): float(np.percentile(own[groups == g], self.percentile))
            for g in np.unique(groups)
        }
        self.threshold_ = max(self.group_thresholds_.values())
        return self

    def distances(self, profiles: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
        """Mean distance of each profile (`(n, 96)`) to its nearest reference profiles."""
        self.check_fitted()
        return self._distances(profiles, exclude)

    def _distances(self, profiles: np.ndarray, exclude: np.ndarray | None) -> np.ndarray:
        references = (self.profiles_.astype(np.float64) - self.shift_) / self.scale_
        queries = np.asarray(profiles, dtype=np.float64).reshape(-1, PROFILE_SIZE) - self.shift_
        return knn_distance(queries / self.scale_, references, self.neighbours, exclude)

    def check(self, profile: np.ndarray) -> tuple[bool, float]:
        """`(within the threshold, distance)` of one recording's profile."""
        distance = float(self.distances(profile)[0])
        return distance <= self.threshold_, distance

    def problem(self, profile: np.ndarray) -> str:
        """The out-of-conditions reason of one recording ('' when its channel is covered)."""
        return self.problems(profile)[0]

    def problems(self, profiles: np.ndarray) -> list[str]:
        """Per profile (`(n, 96)`), its out-of-conditions reason ('' when covered)."""
        return [self._reason(distance) for distance in self.distances(profiles)]

    def _reason(self, distance: float) -> str:
        if distance <= self.threshold_:
            return ""
        value, bound = apart(float(distance), self.threshold_, decimals=2)
        return f"channel unlike the calibration recordings' (profile distance {value} > {bound})"

    def save(self, path: str | os.PathLike) -> Path:
        """Write the reference as one safetensors file (settings in its metadata)."""
        self.check_fitted()
        path = Path(path)
        names = sorted(self.group_thresholds_)
        metadata = {
            "neighbours": str(self.neighbours),
            "percentile": repr(float(self.percentile)),
            "groups": json.dumps(names),
        }
        tensors = {
            "profiles": self.profiles_,
            "shift": self.shift_,
            "scale": self.scale_,
            "group_thresholds": np.array([self.group_thresholds_[g] for g in names], np.float64),
        }
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> ChannelReference:
        """The reference saved at `path`; a missing or damaged file is a one-line ModelError."""
        tensors, metadata = _read(Path(path))
        try:
            reference = cls(int(metadata["neighbours"]), float(metadata["percentile"]))
            names = json.loads(metadata["groups"])
        except (KeyError, ValueError, TypeError):
            raise fail(path, "metadata", "must hold neighbours, percentile and groups") from None
        shapes = {"profiles": (None, PROFILE_SIZE), "shift": (PROFILE_SIZE,),
                  "scale": (PROFILE_SIZE,), "group_thresholds": (len(names),)}  # fmt: skip
        for name, shape in shapes.items():
            if name not in tensors:
                raise fail(path, name, "is missing")
            check_finite(path, name, check_shape(path, name, tensors[name], shape))
        if len(tensors["profiles"]) <= reference.neighbours or not names:
            raise fail(path, "profiles", f"must hold more than {reference.neighbours} rows")
        reference.profiles_ = tensors["profiles"].astype(np.float16)
        reference.shift_ = tensors["shift"].astype(np.float32)
        reference.scale_ = tensors["scale"].astype(np.float32)
        reference.group_thresholds_ = dict(
            zip(names, map(float, tensors["group_thresholds"]), strict=True)
        )
        reference.threshold_ = max(reference.group_thresholds_.values())
        return reference


def shipped_channel_reference(calibrated: CalibrationChoice) -> ChannelReference | None:
    """The shipped channel reference when the calibration is a shipped one (fitted on the
    same calibration recordings); None for a user calibration or none (no channel check):
    what `balr compare` and `balr score test` check recordings against."""
    from balr import defaults

    shipped = {defaults.CALIBRATION.resolve(), defaults.COSINE_CALIBRATION.resolve()}
    if calibrated.calibrator is None or Path(calibrated.source).resolve() not in shipped:
        return None
    return ChannelReference.load(defaults.require(defaults.CHANNEL_REFERENCE, "channel reference"))


def name_channel_problems(problems: Sequence[str], names: Sequence[str], n_enrollment: int) -> str:
    """The out-of-conditions reasons of one trial's recordings (`problems[i]` of recording
    `names[i]`, '' when its channel is covered; the first `n_enrollment` are the enrollment
    side's), named as `balr.conditions.trial_conditions` names a side's recordings
    (`test recording's channel ...`, `test b.wav: channel ...`), `; `-joined."""
    found = []
    for row, problem in enumerate(problems):
        if not problem:
            continue
        side, count = (
            ("enrollment", n_enrollment)
            if row < n_enrollment
            else ("test", len(problems) - n_enrollment)
        )
        found.append(
            f"{side} recording's {problem}" if count == 1 else f"{side} {names[row]}: {problem}"
        )
    return "; ".join(found)


def _read(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors and metadata of a safetensors file; ModelError naming it when unreadable."""
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), "np") as handle:
            metadata = handle.metadata() or {}
    except FileNotFoundError:
        raise ModelError(f"{path}: missing (the channel reference)") from None
    except Exception as exc:  # safetensors raises its own error types for a damaged file
        raise ModelError(
            f"{path}: cannot read the channel reference ({load_failure_reason(exc)})"
        ) from None
    return tensors, metadata
