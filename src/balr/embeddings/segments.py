"""What a model embeds of one recording: the decoded file, or its windows when it is long,
with its net speech; and the average of a long recording's window vectors. No torch: the batch
engine (`balr.embeddings.batch`) and `balr compare`'s numpy path (`balr.compare.embed`)
share it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from balr.audio import audio_info, load_audio
from balr.embeddings.vad import VAD_METHODS, apply_vad, check_speech, measure_speech
from balr.errors import AudioError, ConfigError


@dataclass
class ExtractionOptions:
    """How extraction batches, decodes, windows and filters recordings."""

    batch_size: int = 32
    num_workers: int = 2
    max_duration_s: float = 60.0  # longer recordings are averaged over windows
    window_s: float = 30.0
    min_duration_s: float = 0.5  # shorter recordings (after VAD) are reported, not embedded
    min_speech_s: float = 0.5  # less net speech: reported, not embedded (0: no speech check)
    vad: str = "none"  # none, energy or webrtc
    bucket_batches: int = 4  # batches' worth of items sorted by length together
    max_batch_seconds: float = 200.0  # audio seconds per model call (bounds memory)
    force: bool = False

    @classmethod
    def from_config(cls, embeddings: Mapping[str, Any]) -> ExtractionOptions:
        """The extraction settings of a composed `embeddings` config node (`balr extract`'s,
        `balr compare`'s)."""
        return cls(**{f.name: embeddings[f.name] for f in fields(cls)})

    def check(self) -> None:
        """Raise ConfigError on settings that cannot work."""
        if self.vad not in VAD_METHODS:
            raise ConfigError(f"vad '{self.vad}': expected one of {', '.join(VAD_METHODS)}")
        if self.batch_size < 1 or self.num_workers < 0:
            raise ConfigError("batch_size must be >= 1 and num_workers >= 0")
        if self.min_speech_s < 0:
            raise ConfigError("min_speech_s must be >= 0 (0 turns the speech check off)")
        if not 0 < self.window_s <= self.max_duration_s:
            raise ConfigError("window_s must be > 0 and <= max_duration_s")


@dataclass
class Segment:
    """A decoded recording or window of one (wave None: unusable window), or a failure."""

    index: int
    part: int = 0
    parts: int = 1
    wave: np.ndarray | None = None
    error: str | None = None
    speech_s: float = 0.0  # net speech duration of this recording or window
    stamp: str = ""  # the file's `SIZE:MTIME_NS:SHA256` (`balr.data.ledger.content_stamp`)


def decode_segments(
    index: int, path: Path, sample_rate: int, opts: ExtractionOptions, min_samples: int
) -> Iterator[Segment]:
    """Decode one item: the whole file, or its windows when longer than `max_duration_s`."""
    if path.is_file() and path.stat().st_size == 0:
        raise AudioError(f"{path}: audio file is empty (0 bytes)")
    frames, rate = audio_info(path)
    duration = frames / rate if rate else 0.0
    if duration <= opts.max_duration_s:
        raw = load_audio(path, sample_rate)
        wave = apply_vad(raw, sample_rate, opts.vad)
        if len(wave) < min_samples:
            raise AudioError(
                f"{path}: too short ({len(wave) / sample_rate:.2f} s of audio, "
                f"minimum {min_samples / sample_rate:.2f} s)"
            )
        speech_s = check_speech(path, raw, sample_rate, opts.min_speech_s)
        yield Segment(index, wave=wave, speech_s=speech_s)
        return
    parts = math.ceil(duration / opts.window_s)
    step = duration / parts
    for part in range(parts):
        raw = load_audio(path, sample_rate, offset_s=part * step, duration_s=step)
        speech_s = measure_speech(raw, sample_rate).speech_s
        wave = apply_vad(raw, sample_rate, opts.vad)
        usable = wave if len(wave) >= min_samples and speech_s > 0 else None
        yield Segment(index, part, parts, usable, speech_s=speech_s)


class WindowAverage:
    """Weighted sum of window embeddings of one long recording."""

    def __init__(self, parts: int):
        self.parts, self.seen, self.weight, self.total = parts, 0, 0.0, None
        self.speech_s = 0.0

    def add(self, vector: np.ndarray | None, weight: float, speech_s: float) -> None:
        self.seen += 1
        self.speech_s += speech_s
        if vector is not None and weight > 0:
            scaled = vector.astype(np.float64) * weight
            self.total = scaled if self.total is None else self.total + scaled
            self.weight += weight

    @property
    def complete(self) -> bool:
        return self.seen >= self.parts

    def mean(self, normalized: bool) -> np.ndarray:
        """The weighted mean vector (float32), renormalised for a model of unit vectors."""
        mean = (self.total / self.weight).astype(np.float32)
        if normalized:
            mean /= max(float(np.linalg.norm(mean)), 1e-12)
        return mean
