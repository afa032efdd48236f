"""Optional voice activity detection before embedding: drop long non-speech stretches.

`energy`: 30 ms frames whose energy is within `energy_range_db` of the loudest frame (and above
an absolute floor) are speech. `webrtc`: the WebRTC GMM detector (module `webrtcvad`, from the
`webrtcvad-wheels` package) at aggressiveness 3. Both masks are then widened by
`keep_pause_s` on each side, so short pauses inside speech stay.
"""

from __future__ import annotations

import numpy as np

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


def webrtc_speech_frames(wave: np.ndarray, sample_rate: int, mode: int = 3) -> np.ndarray:
    """Boolean speech flag per 30 ms frame from the WebRTC detector."""
    import webrtcvad

    if sample_rate not in WEBRTC_RATES:
        raise ValueError(f"webrtc VAD needs a sample rate in {WEBRTC_RATES}, got {sample_rate}")
    detector = webrtcvad.Vad(mode)
    pcm = (np.clip(wave, -1, 1) * 32767).astype("<i2")
    frames = _frames(pcm, sample_rate)
    return np.array([detector.is_speech(f.tobytes(), sample_rate) for f in frames], dtype=bool)


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
