"""Same-recording detection on decoded audio.

Two recordings are the same recording when their decoded samples at the model rate are
identical (`AudioIdentity.sha256`: the same samples in another container, a copy), or when
they are near-duplicates: a trim, a gain change, a re-encode, a one-sample edit. A
near-duplicate is found with a compact spectral fingerprint per recording: every 10 ms, on
64 ms frames, the double difference of log band energies across adjacent bands and frames
(a gain change or a fixed channel filter cancels out; near-silent frames are left out).
Two fingerprints are compared over every alignment that overlaps by `MIN_OVERLAP_S` at
least: the largest normalised correlation of the overlapping frames is their `similarity`,
and `NEAR_DUPLICATE_THRESHOLD` or more is a near-duplicate. The rule and its measured
false-alarm and detection rates: docs/same_recording.md (`benchmarks/same_recording.py`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from balr.audio import load_audio
from balr.fileio import sha256_file

IDENTITY_RATE = 16000  # the models' sample rate
FRAME_S, HOP_S = 0.064, 0.010
BAND_EDGES_HZ = np.geomspace(150.0, 7000.0, 18)  # 17 bands -> 16 fingerprint values per frame
MIN_OVERLAP_S = 1.0
#: near-duplicate when the best aligned correlation reaches this (docs/same_recording.md)
NEAR_DUPLICATE_THRESHOLD = 0.5
_LOG_FLOOR = 1e-10  # power floor (digital silence)
#: frames this many dB below the recording's loud frames (95th percentile) are left out: the
#: near-silence of a lossy codec has a structure of its own, the same in any recording
SILENCE_BELOW_DB = 45.0


@dataclass(frozen=True)
class AudioIdentity:
    """What identifies one recording: the SHA-256 of its decoded float32 samples at `rate`,
    and its fingerprint (`(frames, 16)` float32)."""

    sha256: str
    fingerprint: np.ndarray
    rate: int = IDENTITY_RATE


@dataclass(frozen=True)
class SameRecording:
    """Why two recordings are one: `how` is `identical decoded audio` or `near-duplicate`."""

    how: str
    similarity: float
    offset_s: float = 0.0  # where the second starts in the first (negative: before)

    def describe(self) -> str:
        if self.how == IDENTICAL:
            return f"{IDENTICAL} at {IDENTITY_RATE // 1000} kHz"
        return (
            f"{NEAR_DUPLICATE}: fingerprint correlation {self.similarity:.2f} "
            f">= {NEAR_DUPLICATE_THRESHOLD} at offset {self.offset_s:+.2f} s"
        )


IDENTICAL, NEAR_DUPLICATE = "identical decoded audio", "near-duplicate"


def samples_sha256(wave: np.ndarray) -> str:
    """SHA-256 of a waveform's float32 samples (little-endian)."""
    return hashlib.sha256(np.ascontiguousarray(wave, dtype="<f4").tobytes()).hexdigest()


def fingerprint(wave: np.ndarray, rate: int = IDENTITY_RATE) -> np.ndarray:
    """`(frames, bands - 1)` float32: per frame (64 ms, hop 10 ms), the change from the
    previous frame of the log-energy difference between adjacent bands (150 Hz - 7 kHz).
    Recordings shorter than two frames give an empty fingerprint."""
    frame, hop = int(round(FRAME_S * rate)), int(round(HOP_S * rate))
    wave = np.asarray(wave, dtype=np.float32)
    if wave.shape[0] < frame + hop:
        return np.zeros((0, len(BAND_EDGES_HZ) - 2), np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(wave, frame)[::hop]
    spectrum = np.fft.rfft(frames * np.hanning(frame).astype(np.float32), axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    energies = (power @ _band_matrix(frame, rate)).astype(np.float64)
    log_energy = np.log(energies + _LOG_FLOOR)
    changes = np.diff(np.diff(log_energy, axis=1), axis=0)
    level_db = 10 * np.log10(energies.sum(axis=1) + _LOG_FLOOR)
    quiet = level_db < np.percentile(level_db, 95) - SILENCE_BELOW_DB
    changes[quiet[1:] | quiet[:-1]] = 0.0
    return changes.astype(np.float32)


@lru_cache(maxsize=8)
def _band_matrix(frame: int, rate: int) -> np.ndarray:
    """`(frame // 2 + 1, bands)` 0/1: which band each FFT bin adds to."""
    band = np.searchsorted(BAND_EDGES_HZ, np.fft.rfftfreq(frame, 1.0 / rate), side="right") - 1
    return (band[:, None] == np.arange(len(BAND_EDGES_HZ) - 1)[None, :]).astype(np.float32)


def identify_wave(wave: np.ndarray, rate: int = IDENTITY_RATE) -> AudioIdentity:
    """The identity of a decoded mono waveform at `rate`."""
    return AudioIdentity(samples_sha256(wave), fingerprint(wave, rate), rate)


def identify(path: str | os.PathLike, rate: int = IDENTITY_RATE) -> AudioIdentity:
    """Decode `path` at `rate` (balr.audio: mono, soxr resampling) and identify it;
    AudioError naming the file when it cannot be read."""
    return identify_wave(load_audio(path, rate), rate)


def best_alignment(a: np.ndarray, b: np.ndarray, min_overlap: int) -> tuple[float, int]:
    """`(largest normalised correlation, frame offset)` of fingerprints `a` and `b` over the
    alignments where they overlap by `min_overlap` frames at least (by all of the shorter
    one when it is shorter); offset k aligns `b[j]` with `a[j + k]`. (0, 0) when empty."""
    n, m = a.shape[0], b.shape[0]
    need = min(min_overlap, n, m)
    if need == 0:
        return 0.0, 0
    size = 1 << int(np.ceil(np.log2(n + m - 1)))
    # in float64: the correlation of equal fingerprints must not round above 1
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    spectrum = np.fft.rfft(a64, size, axis=0) * np.conj(np.fft.rfft(b64, size, axis=0))
    cross = np.fft.irfft(spectrum.sum(axis=1), size)
    offsets = np.arange(-(m - 1), n)
    dots = cross[offsets % size]
    a_energy = np.concatenate([[0.0], np.cumsum(np.einsum("ij,ij->i", a, a, dtype=np.float64))])
    b_energy = np.concatenate([[0.0], np.cumsum(np.einsum("ij,ij->i", b, b, dtype=np.float64))])
    start_a, stop_a = np.maximum(offsets, 0), np.minimum(n, offsets + m)
    start_b, stop_b = start_a - offsets, stop_a - offsets
    energy = (a_energy[stop_a] - a_energy[start_a]) * (b_energy[stop_b] - b_energy[start_b])
    usable = (stop_a - start_a >= need) & (energy > 0)
    if not usable.any():
        return 0.0, 0
    corr = np.where(usable, dots / np.sqrt(np.where(usable, energy, 1.0)), -np.inf)
    best = int(np.argmax(corr))
    return min(float(corr[best]), 1.0), int(offsets[best])  # 1.0: equal fingerprints


def similarity(a: AudioIdentity, b: AudioIdentity) -> float:
    """The best aligned fingerprint correlation of two recordings (1.0: identical samples)."""
    if a.sha256 == b.sha256:
        return 1.0
    return best_alignment(a.fingerprint, b.fingerprint, _min_overlap_frames(a.rate))[0]


def same_recording(a: AudioIdentity, b: AudioIdentity) -> SameRecording | None:
    """Whether `a` and `b` are one recording (identical decoded samples, or a near-duplicate
    by the measured rule), and how; None when they are different recordings."""
    if a.sha256 == b.sha256:
        return SameRecording(IDENTICAL, 1.0)
    value, offset = best_alignment(a.fingerprint, b.fingerprint, _min_overlap_frames(a.rate))
    if value >= NEAR_DUPLICATE_THRESHOLD:
        return SameRecording(NEAR_DUPLICATE, value, offset * HOP_S)
    return None


def identify_all(
    paths: Iterable[str | os.PathLike], rate: int = IDENTITY_RATE
) -> dict[str, AudioIdentity]:
    """`{str(path): identity}`, each distinct path decoded once."""
    identities: dict[str, AudioIdentity] = {}
    for path in paths:
        if str(path) not in identities:
            identities[str(path)] = identify(path, rate)
    return identities


@dataclass(frozen=True)
class SameFiles:
    """A test file that is an enrollment file too, and how (`describe()`)."""

    enrollment: str | os.PathLike
    test: str | os.PathLike
    how: str


def same_recording_files(
    enrollment: Sequence[str | os.PathLike],
    test: Sequence[str | os.PathLike],
    rate: int = IDENTITY_RATE,
) -> list[SameFiles]:
    """Each test file that is one recording with an enrollment file: the same resolved path
    (`the same file`), byte-identical (`identical audio content`), identical decoded samples
    at `rate`, or a near-duplicate (`same_recording`). Each file is decoded once."""
    by_key: dict = {}
    for path in enrollment:
        by_key.setdefault(Path(path).resolve(), path)
        by_key.setdefault(sha256_file(path), path)
    found, identities = [], {}
    for path in test:
        twin, how = by_key.get(Path(path).resolve()), "the same file"
        if twin is None:
            twin, how = by_key.get(sha256_file(path)), "identical audio content"
        if twin is None:
            if not identities:
                identities = identify_all(enrollment, rate)
            twin, how = _decoded_twin(identify(path, rate), identities)
        if twin is not None:
            found.append(SameFiles(twin, path, how))
    return found


def _decoded_twin(
    probe: AudioIdentity, identities: dict[str, AudioIdentity]
) -> tuple[str | None, str]:
    """The first of `identities` that is one recording with `probe`, and how."""
    for path, identity in identities.items():
        verdict = same_recording(identity, probe)
        if verdict is not None:
            return path, verdict.describe()
    return None, ""


def _min_overlap_frames(rate: int) -> int:
    del rate  # frames are HOP_S long at any rate
    return int(round(MIN_OVERLAP_S / HOP_S))
