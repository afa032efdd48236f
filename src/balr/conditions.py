"""The conditions a calibration was fitted in, and whether a trial lies inside them.

An LR is only as good as its calibration's relevance to the case (Morrison, "Tutorial on
logistic-regression calibration and fusion", Science & Justice 2013). `ConditionsDescription`
is fitted with a calibration on its calibration recordings and describes them by

(a) the range of their net speech seconds, the [0.5, 99.5] % percentiles;
(b) their similarity to the calibration population: for each recording, the mean cosine of
    its `neighbours` (10) nearest calibration recordings of other speakers; the threshold is
    the `similarity_percentile` (2 %) of these values (a k-nearest-neighbour novelty score,
    Breunig et al. / Ramaswamy et al., SIGMOD 2000).

A recording is in conditions iff it passes both; a trial iff all its recordings are. The
vectors are those the scorer scores (BA vectors for the BA-LR scorers, embeddings for the
cosine of embeddings): on BA vectors of the issue-13 research cache this flagged 4-9 % of
in-domain trials and 29-71 % of trials from a corpus left out of the calibration, against
3-13 % and 7-78 % on the GE2E embeddings (docs/scoring.md).

Files: the description is the `conditions` record of calibration.json (plain JSON), its
reference vectors a float16 safetensors file beside it (`<stem>.conditions.safetensors`);
`balr.calibration.CalibrationBundle` writes calibration.json with both of its parts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from safetensors.numpy import load_file, save_file

from balr.errors import ConfigError, DataError, ModelError, load_failure_reason
from balr.estimator import Estimator
from balr.fileio import atomic_path, atomic_write_text, read_json_object
from balr.records import (
    ANY,
    check_finite,
    check_positive,
    check_shape,
    fail,
    read_int,
    read_number,
    read_numbers,
    read_str,
)

if TYPE_CHECKING:
    from balr.data import AudioDataset, Trials

#: reason of a trial checked against no description (the calibration has none)
NO_DESCRIPTION = "no conditions description in this calibration"
#: reason of a recording whose net speech is not known
UNKNOWN_SPEECH = "speech duration unknown (no speech_durations.tsv)"
#: queries compared at once with the reference vectors (memory: CHUNK x references floats)
CHUNK = 1024
#: % of calibration recordings below the similarity threshold (see the module docstring)
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
)


def description_vectors(vectors: np.ndarray) -> np.ndarray:
    """The `(n, d)` rows a description compares: embeddings as they are, BA vectors `(n, m, 2)`
    of single recordings as their activation bits."""
    vectors = np.asarray(vectors, dtype=np.float64)
    from balr.data.vectors import counts_to_bits  # (balr.data imports torch: see _unit_rows)

    return counts_to_bits(vectors) if vectors.ndim == 3 else vectors


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """`scoring.pairs.unit_rows`, imported on use (`balr score --help` reads this module)."""
    from balr.scoring.pairs import unit_rows

    return unit_rows(vectors)


def sidecar_path(calibration_path: str | os.PathLike) -> Path:
    """Where the reference vectors of the description in `calibration_path` are kept."""
    path = Path(calibration_path)
    return path.with_name(f"{path.stem}.conditions.safetensors")


@dataclass(frozen=True)
class RecordingConditions:
    """Per recording: in conditions or not, and what is wrong (`problems[i]` phrases such as
    `speech 0.4 s below the calibrated 0.9-12.0 s`, empty when in conditions)."""

    in_conditions: np.ndarray
    problems: list[list[str]]


@dataclass(frozen=True)
class TrialConditions:
    """Per trial: in conditions or not, and the reason (empty when in conditions)."""

    in_conditions: np.ndarray
    reasons: list[str]

    @classmethod
    def unchecked(cls, n_trials: int, reason: str) -> TrialConditions:
        """Every trial out of conditions for one reason (e.g. no description)."""
        return cls(np.zeros(n_trials, bool), [reason] * n_trials)

    def counts(self) -> dict[str, int]:
        inside = int(np.count_nonzero(self.in_conditions))
        return {"in_conditions": inside, "out_of_conditions": len(self.reasons) - inside}


class ConditionsDescription(Estimator):
    """Net speech range and calibration-population similarity of calibration recordings.

    Fitted attributes: `speech_range_s_` (`[low, high]` seconds), `similarity_threshold_`,
    `reference_vectors_` (`(n, d)` unit rows, float16 on disk), `vector_kind_`,
    `n_recordings_`.
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
        self.reference_vectors_: np.ndarray | None = None
        self.vector_kind_: str | None = None
        self.n_recordings_: int | None = None

    def fit(
        self,
        vectors: np.ndarray,
        speech_s: np.ndarray,
        speakers: Sequence[str] | None = None,
        vector_kind: str = "ba",
    ) -> ConditionsDescription:
        """Describe the calibration recordings: `vectors` (the kind the scorer scores,
        `vector_kind`; see `description_vectors`), their net speech seconds `speech_s` (NaN:
        unknown, left out of the range) and `speakers` (their neighbours exclude their own
        speaker; None: only themselves)."""
        vectors = description_vectors(vectors)
        speech_s = np.asarray(speech_s, dtype=np.float64).ravel()
        if vectors.ndim != 2 or len(vectors) != len(speech_s):
            raise DataError(
                f"conditions: {len(speech_s)} speech durations for vectors of shape {vectors.shape}"
            )
        known = speech_s[np.isfinite(speech_s)]
        if not len(known):
            raise DataError("conditions: no calibration recording has a known speech duration")
        owners = np.arange(len(vectors)) if speakers is None else np.asarray(speakers, str)
        names, owners = np.unique(owners, return_inverse=True)  # integer codes compare fast
        if len(names) < 2:
            raise DataError("conditions: the calibration recordings need two speakers or more")
        self.reference_vectors_ = _unit_rows(vectors).astype(np.float16)
        self.speech_range_s_ = np.percentile(known, self.speech_percentiles).tolist()
        own = self.similarity(vectors, owners=owners)
        self.similarity_threshold_ = float(np.percentile(own, self.similarity_percentile))
        self.vector_kind_ = vector_kind
        self.n_recordings_ = len(vectors)
        return self

    def similarity(self, vectors: np.ndarray, owners: np.ndarray | None = None) -> np.ndarray:
        """Mean cosine of each vector's `neighbours` nearest reference vectors (all of them
        when there are fewer). `owners` (the reference vectors themselves as queries, one
        owner code per vector): the references of a query's own owner are skipped."""
        self.check_fitted()
        queries = _unit_rows(description_vectors(vectors))
        references = self.reference_vectors_.astype(np.float64)
        if queries.ndim != 2 or queries.shape[1] != references.shape[1]:
            raise DataError(
                f"conditions: vectors of shape {queries.shape} against a description of "
                f"{references.shape[1]}-dimensional {self.vector_kind_} vectors"
            )
        k = min(self.neighbours, len(references))
        means = np.empty(len(queries))
        for start in range(0, len(queries), CHUNK):
            cosines = queries[start : start + CHUNK] @ references.T
            if owners is not None:
                cosines[owners[start : start + CHUNK, None] == owners[None, :]] = -np.inf
            nearest = -np.partition(-cosines, k - 1, axis=1)[:, :k]
            finite = np.isfinite(nearest)  # fewer than k references of other owners
            total = np.where(finite, nearest, 0.0).sum(axis=1)
            means[start : start + CHUNK] = total / np.maximum(finite.sum(axis=1), 1)
        return means

    def check_recordings(self, vectors: np.ndarray, speech_s: np.ndarray) -> RecordingConditions:
        """Each recording against the description (NaN speech: out, duration unknown)."""
        speech_s = np.asarray(speech_s, dtype=np.float64).ravel()
        similarity = self.similarity(vectors)
        low, high = self.speech_range_s_
        problems: list[list[str]] = []
        for seconds, similar in zip(speech_s, similarity, strict=True):
            found = []
            if np.isnan(seconds):
                found.append(UNKNOWN_SPEECH)
            elif not low <= seconds <= high:
                where = "below" if seconds < low else "above"
                found.append(
                    f"speech {seconds:.1f} s {where} the calibrated {low:.1f}-{high:.1f} s"
                )
            if similar < self.similarity_threshold_:
                found.append(
                    "recording unlike the calibration population "
                    f"(similarity {similar:.2f} < {self.similarity_threshold_:.2f})"
                )
            problems.append(found)
        return RecordingConditions(np.array([not p for p in problems], bool), problems)

    def check(
        self,
        enrollment_vectors: np.ndarray,
        enrollment_speech_s: np.ndarray,
        test_vectors: np.ndarray,
        test_speech_s: np.ndarray,
    ) -> TrialConditions:
        """Trials of one recording per side (row i of each side is trial i)."""
        n = len(np.ravel(enrollment_speech_s))
        recordings = self.check_recordings(
            np.concatenate([enrollment_vectors, test_vectors]),
            np.concatenate([np.ravel(enrollment_speech_s), np.ravel(test_speech_s)]),
        )
        return trial_conditions(recordings, [[i] for i in range(n)], [[n + i] for i in range(n)])

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
        }

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


def trial_conditions(
    recordings: RecordingConditions,
    enrollment_rows: Sequence[Sequence[int]],
    test_rows: Sequence[Sequence[int]],
    recording_names: Sequence[str] | None = None,
) -> TrialConditions:
    """Trials from their recordings' checks: trial i uses the recordings at rows
    `enrollment_rows[i]` and `test_rows[i]`; it is in conditions iff all of them are. The
    reason names the side (`enrollment speech 0.4 s below ...`), and the recording when a
    side has several (`test rec7: recording unlike ...`)."""
    inside = np.ones(len(enrollment_rows), bool)
    reasons = []
    for trial, sides in enumerate(zip(enrollment_rows, test_rows, strict=True)):
        found = []
        for side, rows in zip(("enrollment", "test"), sides, strict=True):
            for row in rows:
                label = side
                if len(rows) > 1 and recording_names is not None:
                    label = f"{side} {recording_names[row]}:"
                found += [f"{label} {problem}" for problem in recordings.problems[row]]
        inside[trial] = not found
        reasons.append("; ".join(found))
    return TrialConditions(inside, reasons)


def check_comparison(
    description: ConditionsDescription | None, vectors: np.ndarray, speech_s: Sequence[float],
    n_enrollment: int, names: Sequence[str],
) -> TrialConditions:  # fmt: skip
    """One trial of several recordings a side (rows before `n_enrollment` enrollment, the
    rest test) checked against `description`; out of conditions when there is none."""
    if description is None:
        return TrialConditions.unchecked(1, NO_DESCRIPTION)
    recordings = description.check_recordings(vectors, np.asarray(speech_s, dtype=np.float64))
    rows = list(range(len(names)))
    return trial_conditions(recordings, [rows[:n_enrollment]], [rows[n_enrollment:]], names)


# ---------------------------------------------------------------------- datasets and trials


def describe_recordings(
    dataset: AudioDataset,
    ids: Sequence[str],
    durations: dict[str, float],
    kind: str,
    similarity_percentile: float = DEFAULT_SIMILARITY_PERCENTILE,
) -> ConditionsDescription:
    """The conditions description of the recordings `ids` of `dataset` (`kind` vectors)."""
    from balr.data.speech import side_seconds  # balr.data imports torch: on use

    present, vectors = dataset.stack_vectors(kind, [dataset.index_of(i) for i in ids])
    items = [dataset.items[i] for i in present]
    speech = side_seconds([[item.id] for item in items], durations)
    speakers = [item.speaker for item in items]
    description = ConditionsDescription(similarity_percentile=similarity_percentile)
    return description.fit(vectors, speech, speakers, vector_kind=kind)


def check_trial_conditions(
    description: ConditionsDescription | None,
    dataset: AudioDataset,
    trials: Trials,
    valid: np.ndarray,
    durations: dict[str, float] | None,
) -> TrialConditions:
    """Whether each trial of calibrated scores lies in the conditions its calibration was
    fitted in (`description`, None when the calibration has none: every trial is out, with
    that reason); out, with the reason, when a recording has no valid vector."""
    from balr.data.speech import side_seconds

    if description is None:
        return TrialConditions.unchecked(len(trials), NO_DESCRIPTION)
    present, vectors = dataset.stack_vectors(
        description.vector_kind_, [dataset.index_of(i) for i in trials.unique_ids()], bad=[]
    )
    names = [dataset.items[i].id for i in present]
    row_of = {name: row for row, name in enumerate(names)}
    checkable = valid & _all_in(trials.enrollment, row_of) & _all_in(trials.test, row_of)
    result = TrialConditions.unchecked(len(trials), "not scored: a recording has no valid vector")
    for t in np.flatnonzero(valid & ~checkable):
        result.reasons[t] = f"a recording has no {description.vector_kind_} vector to check"
    keep = np.flatnonzero(checkable)
    if len(keep):  # then `names` holds every recording of these trials
        speech = side_seconds([[name] for name in names], durations)
        checked = trial_conditions(
            description.check_recordings(vectors, speech),
            [[row_of[i] for i in trials.enrollment[t]] for t in keep],
            [[row_of[i] for i in trials.test[t]] for t in keep],
            names,
        )
        result.in_conditions[keep] = checked.in_conditions
        for t, reason in zip(keep, checked.reasons, strict=True):
            result.reasons[t] = reason
    return result


def _all_in(cells: list[list[str]], rows: dict[str, int]) -> np.ndarray:
    return np.array([all(i in rows for i in cell) for cell in cells], bool)
