"""Trials that compare a recording with itself (`balr score test`).

A trial is a same-recording trial when a recording of its enrollment cell is one of its
test cell: the same id, or, when the dataset gives the audio files, the same decoded samples
or a near-duplicate (`balr.audio_identity`; each recording decoded once). Such a trial is no
evidence about the speaker: scores.csv flags it (`same_recording`) and the metrics leave it
out unless asked to keep it (`--keep-same-recording`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from balr.audio_identity import AudioIdentity, identify, same_recording
from balr.errors import AudioError

logger = logging.getLogger(__name__)

COLUMN = "same_recording"
SAME_ID = "the same recording id"


@dataclass(frozen=True)
class SameRecordingTrials:
    """Per trial, whether it compares a recording with itself (`flags`) and why (`reasons`,
    empty when not); `audio_checked` of `n_recordings` were compared on decoded audio."""

    flags: np.ndarray
    reasons: tuple[str, ...]
    audio_checked: int
    n_recordings: int
    kept: bool = False  # whether the flagged trials stay in EER and Cllr

    @property
    def count(self) -> int:
        return int(self.flags.sum())

    def left_out(self) -> np.ndarray:
        """The trials to leave out of the metrics (none when `kept`)."""
        return np.zeros_like(self.flags) if self.kept else self.flags

    def metrics(self) -> dict:
        """metrics.json keys: the count, whether they are in the metrics, what was checked."""
        return {
            "n_same_recording": self.count,
            "same_recording_in_metrics": self.kept,
            "same_recording_audio_checked": self.audio_checked,
        }

    def summary(self) -> str:
        """`; N same-recording trials left out of EER and Cllr (...)`, empty when none."""
        if not self.count:
            return ""
        what = "kept in" if self.kept else "left out of"
        advice = "" if self.kept else ": --keep-same-recording keeps them"
        return f"; {self.count} same-recording trials {what} EER and Cllr{advice}"


def find_same_recording_trials(
    enrollment: Sequence[Sequence[str]],
    test: Sequence[Sequence[str]],
    audio_of: Mapping[str, str | os.PathLike | None],
    keep: bool = False,
) -> SameRecordingTrials:
    """Flag each trial (enrollment and test cells of ids) whose cells share a recording: the
    same id, or the same audio (identical decoded samples or a near-duplicate) for the ids
    whose file `audio_of` gives and can be read; the others are compared by id only."""
    used = sorted({i for cell in (*enrollment, *test) for i in cell})
    identities = _identities(used, audio_of)
    verdicts: dict[tuple[str, str], str] = {}
    reasons = []
    for enroll, tested in zip(enrollment, test, strict=True):
        reason = ""
        for a in enroll:
            for b in tested:
                reason = reason or _pair_reason(a, b, identities, verdicts)
        reasons.append(reason)
    flags = np.array([bool(r) for r in reasons], bool)
    for row in np.flatnonzero(flags)[:5]:
        logger.info("trial %d is a same-recording trial (%s)", row + 1, reasons[row])
    return SameRecordingTrials(flags, tuple(reasons), len(identities), len(used), keep)


def _pair_reason(
    a: str, b: str, identities: dict[str, AudioIdentity], verdicts: dict[tuple[str, str], str]
) -> str:
    """Why recordings `a` and `b` are one (empty when not), each pair compared once."""
    if a == b:
        return f"{SAME_ID} {a}"
    key = (a, b) if a < b else (b, a)
    if key not in verdicts:
        verdict = None
        if a in identities and b in identities:
            verdict = same_recording(identities[key[0]], identities[key[1]])
        verdicts[key] = f"{a} and {b}: {verdict.describe()}" if verdict else ""
    return verdicts[key]


def _identities(
    ids: Sequence[str], audio_of: Mapping[str, str | os.PathLike | None]
) -> dict[str, AudioIdentity]:
    """The identity of each id whose audio file exists; an unreadable one is reported and
    compared by id only."""
    identities, unreadable = {}, []
    for item_id in ids:
        path = audio_of.get(item_id)
        if path is None or not os.path.isfile(path):
            continue
        try:
            identities[item_id] = identify(path)
        except AudioError as exc:
            unreadable.append(str(exc))
    if unreadable:
        logger.warning(
            "%d recordings compared by id only, their audio is unreadable (first: %s)",
            len(unreadable),
            unreadable[0],
        )
    if len(identities) < len(ids):
        logger.info(
            "same-recording check: %d of %d recordings on decoded audio, the rest by id",
            len(identities),
            len(ids),
        )
    return identities
