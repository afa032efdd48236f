"""The conditions description of a calibration: the `ConditionsDescription` estimator
(speech range and calibration-population similarity, fitted on the calibration recordings),
its `conditions` record in calibration.json and its reference-vector sidecar file."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from safetensors.numpy import load_file, save_file

from balr.conditions.trials import (
    RecordingConditions,
    TrialConditions,
    apart,
    speech_findings,
    trial_conditions,
)
from balr.errors import ConfigError, DataError, ModelError, load_failure_reason
from balr.estimator import Estimator
from balr.fileio import atomic_path, atomic_write_text, read_json_object
from balr.records import (
    ANY,
    check_finite,
    check_number,
    check_positive,
    check_shape,
    fail,
    read_int,
    read_number,
    read_numbers,
    read_str,
)

#: a reference vector this close to a query (cosine) is the query itself and is skipped
SELF_COSINE = 1 - 1e-6

#: queries compared at once with the reference vectors (memory: CHUNK x references floats)
CHUNK = 1024
#: % of calibration recordings below the similarity threshold (see `balr.conditions`)
DEFAULT_SIMILARITY_PERCENTILE = 2.0
#: the vectors a description may compare: BA vectors or embeddings
VECTOR_KINDS = ("ba", "emb")
#: the fields of the `conditions` record of calibration.json
RECORD_FIELDS = (
    "neighbours",
    "similarity_percentile",
    "speech_percentiles",
    "speech_range_s",
    "similarity_threshold",
    "vector_kind",
    "n_recordings",
    "reference_vectors",
    "group_thresholds",  # only when fitted with corpus labels: older records keep their format
)


def description_vectors(vectors: np.ndarray) -> np.ndarray:
    """The `(n, d)` rows a description compares: embeddings as they are, BA vectors `(n, m, 2)`
    of single recordings as their activation bits."""
    vectors = np.asarray(vectors, dtype=np.float64)
    from balr.data.vectors import counts_to_bits  # (balr.data imports torch: see _unit_rows)

    return counts_to_bits(vectors) if vectors.ndim == 3 else vectors


def speech_range(seconds: np.ndarray, percentiles: Sequence[float]) -> list[float]:
    """`[low, high]`: the `percentiles` of `seconds` as order statistics (the nearest value
    at or below the low one, at or above the high one), so that a small calibration set's
    shortest and longest recordings are inside its own range; on hundreds of recordings they
    differ from the interpolated percentiles by less than one neighbouring value."""
    low, high = percentiles
    return [
        float(np.percentile(seconds, low, method="lower")),
        float(np.percentile(seconds, high, method="higher")),
    ]


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """`scoring.pairs.unit_rows`, imported on use (`balr score --help` reads this module)."""
    from balr.scoring.pairs import unit_rows

    return unit_rows(vectors)


def sidecar_path(calibration_path: str | os.PathLike) -> Path:
    """Where the reference vectors of the description in `calibration_path` are kept."""
    path = Path(calibration_path)
    return path.with_name(f"{path.stem}.conditions.safetensors")


class ConditionsDescription(Estimator):
    """Net speech range and calibration-population similarity of calibration recordings.

    Fitted attributes: `speech_range_s_` (`[low, high]` seconds of the calibration trials'
    sides), `similarity_threshold_`, `group_thresholds_` (`{corpus: threshold}` when fitted
    with corpus labels, else None), `reference_vectors_` (`(n, d)` unit rows, float16 on
    disk), `vector_kind_`, `n_recordings_`.
    """

    #: set first by `fit` (its similarities use them), the other attributes after
    fitted_attributes: ClassVar[tuple[str, ...]] = ("reference_vectors_",)
    estimator_label: ClassVar[str] = "the conditions description"
    saved_as: ClassVar[str] = "a calibration with one"

    def __init__(
        self,
        neighbours: int = 10,
        similarity_percentile: float = DEFAULT_SIMILARITY_PERCENTILE,
        speech_percentiles: tuple[float, float] = (0.5, 99.5),
    ):
        if not 0 <= float(similarity_percentile) < 50:
            raise ConfigError(
                f"conditions similarity percentile {similarity_percentile}: expected a "
                "value in [0, 50) (% of calibration recordings below the threshold)"
            )
        self.neighbours = int(neighbours)
        self.similarity_percentile = float(similarity_percentile)
        self.speech_percentiles = (float(speech_percentiles[0]), float(speech_percentiles[1]))
        self.speech_range_s_: list[float] | None = None
        self.similarity_threshold_: float | None = None
        self.group_thresholds_: dict[str, float] | None = None
        self.reference_vectors_: np.ndarray | None = None
        self.vector_kind_: str | None = None
        self.n_recordings_: int | None = None

    def fit(
        self,
        vectors: np.ndarray,
        speech_s: np.ndarray,
        speakers: Sequence[str] | None = None,
        vector_kind: str = "ba",
        groups: Sequence[str] | None = None,
    ) -> ConditionsDescription:
        """Describe the calibration recordings: `vectors` (the kind the scorer scores,
        `vector_kind`; see `description_vectors`), `speech_s` the net speech seconds of the
        calibration trials' sides (each side's total, as the calibration uses them; one value
        per recording when every side is one recording; NaN: unknown, left out of the
        range), `speakers` (their neighbours exclude their own speaker; None: only
        themselves) and `groups` (each recording's corpus: the threshold is balanced over
        corpora, `similarity_threshold`; None: one pooled percentile)."""
        vectors = description_vectors(vectors)
        speech_s = np.asarray(speech_s, dtype=np.float64).ravel()
        if vectors.ndim != 2:
            raise DataError(f"conditions: expected (recordings, d) vectors, got {vectors.shape}")
        known = speech_s[np.isfinite(speech_s)]
        if not len(known):
            raise DataError("conditions: no calibration recording has a known speech duration")
        owners = np.arange(len(vectors)) if speakers is None else np.asarray(speakers, str)
        names, owners = np.unique(owners, return_inverse=True)  # integer codes compare fast
        if len(names) < 2:
            raise DataError("conditions: the calibration recordings need two speakers or more")
        if groups is not None and len(groups) != len(vectors):
            raise DataError(f"conditions: {len(groups)} corpus labels for {len(vectors)} vectors")
        self.reference_vectors_ = _unit_rows(vectors).astype(np.float16)
        self.speech_range_s_ = speech_range(known, self.speech_percentiles)
        own = self.similarity(vectors, owners=owners)
        self.similarity_threshold_, self.group_thresholds_ = self.similarity_threshold(own, groups)
        self.vector_kind_ = vector_kind
        self.n_recordings_ = len(vectors)
        return self

    def similarity_threshold(
        self, own: np.ndarray, groups: Sequence[str] | None = None
    ) -> tuple[float, dict[str, float] | None]:
        """`(threshold, {corpus: threshold} or None)` from the calibration recordings' own
        similarities `own`. Without `groups` (or with one corpus): the `similarity_percentile`
        of all of them. With corpus labels: that percentile within each corpus, and the
        lowest of these kept, so that no corpus has more than the percentile of its
        recordings below it. One pooled percentile is set by the largest corpora (on the
        shipped calibration it put 7.5 % of the LibriSpeech calibration recordings below it,
        against 0.8-1.4 % of the others); a percentile weighting the corpora equally would
        only bound their average share, still letting the corpus least like the others fall
        below far more often than the percentile."""
        if groups is None or len(set(groups)) < 2:
            return float(np.percentile(own, self.similarity_percentile)), None
        labels = np.asarray(groups, str)
        per_group = {
            str(name): float(np.percentile(own[labels == name], self.similarity_percentile))
            for name in np.unique(labels)
        }
        return min(per_group.values()), per_group

    def similarity(self, vectors: np.ndarray, owners: np.ndarray | None = None) -> np.ndarray:
        """Mean cosine of each vector's `neighbours` nearest reference vectors (all of them
        when there are fewer). A reference identical to the query (cosine >= `SELF_COSINE`:
        the query itself, e.g. a case recording that is also a calibration recording) is
        skipped. `owners` (the reference vectors themselves as queries, one owner code per
        vector): the references of a query's own owner are skipped too."""
        self.check_fitted()
        queries = _unit_rows(description_vectors(vectors))
        references = _unit_rows(self.reference_vectors_.astype(np.float64))
        if queries.ndim != 2 or queries.shape[1] != references.shape[1]:
            raise DataError(
                f"conditions: vectors of shape {queries.shape} against a description of "
                f"{references.shape[1]}-dimensional {self.vector_kind_} vectors"
            )
        k = min(self.neighbours, len(references))
        means = np.empty(len(queries))
        for start in range(0, len(queries), CHUNK):
            cosines = queries[start : start + CHUNK] @ references.T
            cosines[cosines >= SELF_COSINE] = -np.inf
            if owners is not None:
                cosines[owners[start : start + CHUNK, None] == owners[None, :]] = -np.inf
            nearest = -np.partition(-cosines, k - 1, axis=1)[:, :k]
            finite = np.isfinite(nearest)  # fewer than k references of other owners
            total = np.where(finite, nearest, 0.0).sum(axis=1)
            means[start : start + CHUNK] = total / np.maximum(finite.sum(axis=1), 1)
        return means

    def check_recordings(
        self, vectors: np.ndarray, speech_s: np.ndarray | None = None
    ) -> RecordingConditions:
        """Each recording against the description: its similarity and, when `speech_s` is
        given, its net speech as a side of its own (NaN: out, duration unknown; above the
        range: a note only). Trials check their sides' totals instead (`trial_conditions`)."""
        similarity = self.similarity(vectors)
        seconds = np.full(len(similarity), np.nan) if speech_s is None else np.ravel(speech_s)
        problems, notes = [], []
        for speech, similar in zip(seconds, similarity, strict=True):
            found, noted = [], []
            if speech_s is not None:
                found, noted = speech_findings(float(speech), self.speech_range_s_)
            if similar < self.similarity_threshold_:
                value, threshold = apart(similar, self.similarity_threshold_, decimals=2)
                found.append(
                    f"recording unlike the calibration population (similarity {value} < "
                    f"{threshold})"
                )
            problems.append(found)
            notes.append(noted)
        return RecordingConditions(np.array([not p for p in problems], bool), problems, notes)

    def check(
        self,
        enrollment_vectors: np.ndarray,
        enrollment_speech_s: np.ndarray,
        test_vectors: np.ndarray,
        test_speech_s: np.ndarray,
    ) -> TrialConditions:
        """Trials of one recording per side (row i of each side is trial i)."""
        n = len(np.ravel(enrollment_speech_s))
        recordings = self.check_recordings(np.concatenate([enrollment_vectors, test_vectors]))
        sides = np.column_stack([np.ravel(enrollment_speech_s), np.ravel(test_speech_s)])
        return trial_conditions(
            recordings, [[i] for i in range(n)], [[n + i] for i in range(n)], sides,
            self.speech_range_s_,
        )  # fmt: skip

    def to_dict(self, reference_file: str) -> dict[str, Any]:
        """The `conditions` record of calibration.json; `reference_file`: the name of the
        reference vectors' file beside it."""
        return {
            "neighbours": self.neighbours,
            "similarity_percentile": self.similarity_percentile,
            "speech_percentiles": list(self.speech_percentiles),
            "speech_range_s": self.speech_range_s_,
            "similarity_threshold": self.similarity_threshold_,
            "vector_kind": self.vector_kind_,
            "n_recordings": self.n_recordings_,
            "reference_vectors": reference_file,
        } | ({"group_thresholds": self.group_thresholds_} if self.group_thresholds_ else {})

    def write_vectors(self, sidecar: str | os.PathLike) -> Path:
        """Write the reference vectors (float16 safetensors) atomically; the path."""
        self.check_fitted()
        sidecar = Path(sidecar)
        with atomic_path(sidecar) as tmp:
            save_file({"reference_vectors": self.reference_vectors_}, str(tmp))
        return sidecar

    def save(self, path: str | os.PathLike) -> Path:
        """Write this description alone: `{"conditions": ...}` JSON at `path` and its reference
        vectors beside it. A calibration.json is written whole by `CalibrationBundle`
        (calibrator and description together); `path` holding a calibrator is refused, so
        that no calibrator is lost by saving in one order rather than the other."""
        self.check_fitted()
        path = Path(path)
        if path.is_file() and "calibrator" in read_json_object(path, "calibration file"):
            raise ModelError(
                f"{path}: holds a calibrator; save the calibrator and its conditions together "
                "with balr.calibration.CalibrationBundle"
            )
        sidecar = self.write_vectors(sidecar_path(path))
        atomic_write_text(path, json.dumps({"conditions": self.to_dict(sidecar.name)}, indent=2))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> ConditionsDescription | None:
        """The description saved in `path` (a calibration.json), None when it has none."""
        return cls.from_file_record(read_json_object(path, "calibration file"), path)

    @classmethod
    def from_file_record(
        cls, record: dict[str, Any], path: str | os.PathLike
    ) -> ConditionsDescription | None:
        """The description of the JSON object `record` read from `path` (None without a
        `conditions` record), every field and its reference vectors checked."""
        if record.get("conditions") is None:
            return None
        description = cls.from_dict(record["conditions"], path)
        sidecar = Path(path).with_name(Path(record["conditions"]["reference_vectors"]).name)
        description.reference_vectors_ = read_reference_vectors(
            sidecar, path, description.n_recordings_
        )
        return description

    @classmethod
    def from_dict(cls, record: Any, source: str | os.PathLike) -> ConditionsDescription:
        """A description from its `conditions` record, without its reference vectors; a
        malformed or inconsistent field is a one-line `ModelError` naming `source` and it."""
        if not isinstance(record, dict):
            raise fail(source, "conditions", "must be a JSON object")
        unknown = set(record) - set(RECORD_FIELDS)
        if unknown:
            raise fail(
                source, "conditions", f"has unexpected field(s) {', '.join(sorted(unknown))}"
            )
        percentiles = read_numbers(record, "speech_percentiles", source, length=2)
        if not 0 <= percentiles[0] <= percentiles[1] <= 100:
            raise fail(source, "speech_percentiles", "must be two ordered percentiles in [0, 100]")
        percentile = read_number(record, "similarity_percentile", source)
        if not 0 <= percentile < 50:
            raise fail(source, "similarity_percentile", f"must be in [0, 50), got {percentile:g}")
        description = cls(
            read_int(record, "neighbours", source, positive=True), percentile, tuple(percentiles)
        )
        speech_range = check_positive(
            source, "speech_range_s", read_numbers(record, "speech_range_s", source, length=2)
        )
        if speech_range[0] > speech_range[1]:
            raise fail(source, "speech_range_s", "must be [low, high] seconds with low <= high")
        description.speech_range_s_ = speech_range.tolist()
        threshold = read_number(record, "similarity_threshold", source)
        if not -1 <= threshold <= 1:
            raise fail(
                source, "similarity_threshold", f"must be a cosine in [-1, 1], got {threshold:g}"
            )
        description.similarity_threshold_ = threshold
        description.group_thresholds_ = _read_group_thresholds(record, source, threshold)
        description.vector_kind_ = read_str(record, "vector_kind", source, choices=VECTOR_KINDS)
        description.n_recordings_ = read_int(record, "n_recordings", source, positive=True)
        read_str(record, "reference_vectors", source)
        return description


def read_reference_vectors(sidecar: Path, calibration: str | os.PathLike, rows: int) -> np.ndarray:
    """The `(rows, d)` finite reference vectors of a description, from its sidecar file."""
    try:
        vectors = load_file(str(sidecar))
    except FileNotFoundError:
        raise ModelError(f"{sidecar}: missing (the reference vectors of {calibration})") from None
    except Exception as exc:  # safetensors raises its own error types for a damaged file
        raise ModelError(
            f"{sidecar}: cannot read the reference vectors of {calibration} "
            f"({load_failure_reason(exc)})"
        ) from None
    if "reference_vectors" not in vectors:
        raise fail(sidecar, "reference_vectors", "is missing")
    check_shape(sidecar, "reference_vectors", vectors["reference_vectors"], (rows, ANY))
    return check_finite(sidecar, "reference_vectors", vectors["reference_vectors"])


def _read_group_thresholds(
    record: dict[str, Any], source: str | os.PathLike, threshold: float
) -> dict[str, float] | None:
    """The per-corpus thresholds (absent in records of one pooled threshold), cosines whose
    lowest is `threshold`."""
    if record.get("group_thresholds") is None:
        return None
    thresholds = record["group_thresholds"]
    if not isinstance(thresholds, dict) or not thresholds:
        raise fail(source, "group_thresholds", "must be a JSON object of corpus: threshold")
    values = {str(name): check_number(value, source, f"group_thresholds[{name}]")
              for name, value in thresholds.items()}  # fmt: skip
    if min(values.values()) != threshold:
        raise fail(source, "group_thresholds", "must have similarity_threshold as their lowest")
    return values
