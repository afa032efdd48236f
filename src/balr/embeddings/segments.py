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
    profile: np.ndarray | None = None  # channel profile of `wave` (`balr.conditions.channel`)


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
    """Weighted sums of the window embeddings of one long recording, and of their channel
    profiles: the weighted mean of the window profiles approximates the whole file's (the
    profile's percentiles and loud-frame statistics are not additive over windows)."""

    def __init__(self, parts: int):
        self.parts, self.seen, self.weight, self.total = parts, 0, 0.0, None
        self.speech_s = 0.0
        self.profile_weight, self.profile_total = 0.0, None

    def add(
        self,
        vector: np.ndarray | None,
        weight: float,
        speech_s: float,
        profile: np.ndarray | None = None,
    ) -> None:
        """Add one window: its vector and channel profile (None: none), weighted by `weight`
        (its samples), and its net speech."""
        self.seen += 1
        self.speech_s += speech_s
        if vector is not None and weight > 0:
            scaled = vector.astype(np.float64) * weight
            self.total = scaled if self.total is None else self.total + scaled
            self.weight += weight
        if profile is not None and weight > 0:
            scaled = profile.astype(np.float64) * weight
            self.profile_total = (
                scaled if self.profile_total is None else self.profile_total + scaled
            )
            self.profile_weight += weight

    @property
    def complete(self) -> bool:
        return self.seen >= self.parts

    def mean(self, normalized: bool) -> np.ndarray:
        """The weighted mean vector (float32), renormalised for a model of unit vectors."""
        mean = (self.total / self.weight).astype(np.float32)
        if normalized:
            mean /= max(float(np.linalg.norm(mean)), 1e-12)
        return mean

    def mean_profile(self) -> np.ndarray | None:
        """The windows' channel profiles averaged by samples (float32; None: no window had
        one): an approximation of the whole file's profile."""
        if self.profile_total is None:
            return None
        return (self.profile_total / self.profile_weight).astype(np.float32)
