"""Optional voice activity detection before embedding: drop long non-speech stretches.

`energy`: 30 ms frames whose energy is within `energy_range_db` of the loudest frame (and above
an absolute floor) are speech. `webrtc`: the WebRTC GMM detector (module `webrtcvad`, from the
`webrtcvad-wheels` package) at aggressiveness 3. Both masks are then widened by
`keep_pause_s` on each side, so short pauses inside speech stay.

`measure_speech` gives a recording's net speech duration, and `check_speech` refuses one with
too little speech (an `AudioError` naming the file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from balr.errors import AudioError

VAD_METHODS = ("none", "energy", "webrtc")
FRAME_S = 0.03
WEBRTC_RATES = (8000, 16000, 32000, 48000)


def energy_speech_frames(
    wave: np.ndarray, sample_rate: int, energy_range_db: float = 40.0, floor_dbfs: float = -60.0
) -> np.ndarray:
    """Boolean speech flag per 30 ms frame from frame energy (vectorised)."""
    frames = _frames(wave, sample_rate)
    energy_db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    if energy_db.size == 0:
        return np.zeros(0, bool)
    return (energy_db > energy_db.max() - energy_range_db) & (energy_db > floor_dbfs)


def webrtc_speech_frames(
    wave: np.ndarray, sample_rate: int, mode: int = 3, gain: float = 1.0
) -> np.ndarray:
    """Boolean speech flag per 30 ms frame from the WebRTC detector (of `wave * gain`; frames
    are converted to 16-bit one at a time, so no copy of the wave is made)."""
    import webrtcvad

    if sample_rate not in WEBRTC_RATES:
        raise ValueError(f"webrtc VAD needs a sample rate in {WEBRTC_RATES}, got {sample_rate}")
    detector = webrtcvad.Vad(mode)
    return np.array(
        [
            detector.is_speech(_pcm16(frame, gain), sample_rate)
            for frame in _frames(wave, sample_rate)
        ],
        dtype=bool,
    )


def _pcm16(frame: np.ndarray, gain: float) -> bytes:
    return (np.clip(frame * gain, -1, 1) * 32767).astype("<i2").tobytes()


def speech_mask(
    wave: np.ndarray, sample_rate: int, method: str = "energy", keep_pause_s: float = 0.2
) -> np.ndarray:
    """Per-sample boolean mask of the speech to keep (all True for method 'none')."""
    if method == "none":
        return np.ones(len(wave), bool)
    if method == "energy":
        flags = energy_speech_frames(wave, sample_rate)
    elif method == "webrtc":
        flags = webrtc_speech_frames(wave, sample_rate)
    else:
        raise ValueError(f"unknown VAD method '{method}' (expected one of {VAD_METHODS})")
    width = 2 * int(round(keep_pause_s / FRAME_S)) + 1
    flags = np.convolve(flags.astype(np.int32), np.ones(width, np.int32), mode="same") > 0
    frame_len = int(sample_rate * FRAME_S)
    mask = np.zeros(len(wave), bool)
    mask[: len(flags) * frame_len] = np.repeat(flags, frame_len)
    if len(flags):
        mask[len(flags) * frame_len :] = flags[-1]
    return mask


def apply_vad(
    wave: np.ndarray, sample_rate: int, method: str = "none", keep_pause_s: float = 0.2
) -> np.ndarray:
    """The speech samples of `wave`; the wave unchanged when no speech is found or method 'none'."""
    if method == "none":
        return wave
    mask = speech_mask(wave, sample_rate, method, keep_pause_s)
    return wave[mask] if mask.any() else wave


def _frames(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    frame_len = int(sample_rate * FRAME_S)
    count = len(wave) // frame_len
    return wave[: count * frame_len].reshape(count, frame_len)


# ---------------------------------------------------------------- usable speech
SILENCE_PEAK = 1e-4  # -80 dBFS: below this the recording is digital silence
CLIPPED_SHARE = 0.5  # more samples than this at the peak magnitude: clipping or a square wave
STEADY_DB = 3.0  # no frequency band varying more than this (std over frames, dB): steady
STEADY_BANDS = 8  # equal-width frequency bands of the steadiness check
BLOCK_FRAMES = 64  # frames transformed at once
SPEECH_LEVEL_DBFS = -20.0  # loud frames are brought to this level before the WebRTC detector


@dataclass(frozen=True)
class SpeechMeasure:
    """Net speech of a recording: seconds of speech frames, and why it has none (or None)."""

    speech_s: float
    problem: str | None = None


def measure_speech(wave: np.ndarray, sample_rate: int) -> SpeechMeasure:
    """Net speech duration (30 ms speech frames of the WebRTC detector at aggressiveness 3,
    after bringing the loud frames to -20 dBFS so quiet recordings are measured like loud
    ones); 0 with a `problem` for digital silence, a constant, clipping-only or steady signal.
    Sample rates WebRTC cannot take use the energy detector."""
    wave = np.asarray(wave, dtype=np.float32)
    problem = signal_problem(wave, sample_rate)
    if problem is not None:
        return SpeechMeasure(0.0, problem)
    frame_db = _frame_db(wave, sample_rate)
    gain = 10 ** ((SPEECH_LEVEL_DBFS - float(np.percentile(frame_db, 95))) / 20)
    if sample_rate in WEBRTC_RATES:
        flags = webrtc_speech_frames(wave, sample_rate, mode=3, gain=gain)
    else:
        flags = energy_speech_frames(wave, sample_rate)
    return SpeechMeasure(round(float(flags.sum()) * FRAME_S, 3))


def signal_problem(wave: np.ndarray, sample_rate: int) -> str | None:
    """Why the signal cannot hold speech (digital silence, constant, clipping only, a steady
    tone or noise), or None."""
    if wave.size == 0:
        return "empty recording"
    peak = max(float(wave.max()), -float(wave.min()))
    if peak == 0:
        return "digital silence (all samples are zero)"
    if peak < SILENCE_PEAK:
        return f"digital silence (peak {_dbfs(peak):.0f} dBFS)"
    if float(np.ptp(wave)) < SILENCE_PEAK:
        return "a constant signal (no sound)"
    at_peak = np.count_nonzero(wave >= 0.99 * peak) + np.count_nonzero(wave <= -0.99 * peak)
    at_peak /= wave.size
    if at_peak > CLIPPED_SHARE:
        return f"clipping only ({at_peak:.0%} of the samples at full level)"
    spread = band_level_spread(wave, sample_rate)
    if spread < STEADY_DB:
        return f"a steady tone or noise (no frequency band varies by more than {spread:.1f} dB)"
    return None


def band_level_spread(wave: np.ndarray, sample_rate: int) -> float:
    """The largest standard deviation over 30 ms frames of the level (dB) of one of 8
    equal-width frequency bands. Tones and steady noise stay near 0-1.5 dB in every band;
    speech moves some band by 7 dB or more, even over a loud hum. Levels more than 60 dB below
    the mean frame energy count as that floor, so empty bands do not vary."""
    frames = _frames(wave, sample_rate)
    if len(frames) < 2:
        return 0.0
    window = np.hanning(frames.shape[1])
    edges = np.linspace(0, frames.shape[1] // 2 + 1, STEADY_BANDS + 1).astype(int)[:-1]
    bands = np.concatenate(  # blocks of frames: memory stays small for long windows
        [
            np.add.reduceat(np.abs(np.fft.rfft(block * window, axis=1)) ** 2, edges, axis=1)
            for block in np.array_split(frames, max(1, len(frames) // BLOCK_FRAMES))
        ]
    )
    floor = 1e-6 * float(bands.sum(axis=1).mean()) + 1e-20
    return float(np.max(np.std(10 * np.log10(bands + floor), axis=0)))


def _frame_db(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    frames = _frames(wave, sample_rate)
    energy = np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / max(frames.shape[1], 1)
    return 10 * np.log10(energy + 1e-12)


def _dbfs(value: float) -> float:
    return 20 * np.log10(max(value, 1e-12))


def check_speech(path: Path, wave: np.ndarray, sample_rate: int, min_speech_s: float) -> float:
    """The recording's net speech duration; AudioError naming the file and the reason when
    it has less than `min_speech_s` (0: no check)."""
    measure = measure_speech(wave, sample_rate)
    if min_speech_s > 0:
        require_speech(path, measure.speech_s, min_speech_s, measure.problem)
    return measure.speech_s


def require_speech(
    path: Path | str, speech_s: float, min_speech_s: float, problem: str | None = None
) -> None:
    """AudioError naming `path` when its signal has a `problem` or less than `min_speech_s`
    seconds of speech."""
    if problem is not None:
        raise AudioError(
            f"{path}: no usable speech: {problem}; give a recording with speech "
            "(embeddings.min_speech_s=0 turns this check off)"
        )
    if speech_s < min_speech_s:
        raise AudioError(
            f"{path}: too little speech ({speech_s:.2f} s of speech, minimum {min_speech_s:g} s; "
            "lower it with embeddings.min_speech_s=SECONDS)"
        )
