"""Audio decoding (soundfile; FFmpeg through PyAV for the formats libsndfile cannot read:
m4a, wma), resampling (soxr) and mono mixdown, without torchaudio."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from balr.errors import AudioError

AUDIO_EXTENSIONS = ("flac", "mp3", "m4a", "ogg", "opus", "wav", "wma")
#: decoded with FFmpeg (PyAV's wheels carry it): libsndfile has no AAC or WMA decoder
FFMPEG_EXTENSIONS = ("m4a", "wma")
INT16_SCALE = 32768.0


def audio_info(path: str | os.PathLike) -> tuple[int, int]:
    """Return `(frames, sample_rate)` of a file: from its header (m4a / wma, whose headers
    do not give an exact sample count, are decoded)."""
    check_audio_path(path)
    if _needs_ffmpeg(path):
        wave, rate = _decode_ffmpeg(Path(path), 0.0, None)
        return int(wave.shape[0]), rate
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises several types for unreadable files
        raise AudioError(f"{path}: cannot read audio ({_reason(exc)})") from None
    return int(info.frames), int(info.samplerate)


def check_audio_path(path: str | os.PathLike) -> None:
    """AudioError when `path` is missing or a directory (soundfile says only "System error")."""
    if Path(path).is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    if not Path(path).is_file():
        raise AudioError(f"{path}: audio file not found")


def audio_duration(path: str | os.PathLike) -> float:
    """Duration in seconds, read from the header."""
    frames, rate = audio_info(path)
    return frames / rate if rate else 0.0


def load_audio(
    path: str | os.PathLike,
    sample_rate: int | None = 16000,
    *,
    int16_scale: bool = False,
    offset_s: float = 0.0,
    duration_s: float | None = None,
    min_duration_s: float = 0.0,
) -> np.ndarray:
    """Decode `path` to a mono float32 waveform at `sample_rate` (None keeps the file's rate).

    Samples are in [-1, 1), or in the 16-bit integer range when `int16_scale` is set (as
    Kaldi front-ends expect). `offset_s`/`duration_s` read a part of the file only.
    Raises AudioError naming the file when it is unreadable, empty or shorter than
    `min_duration_s` seconds.
    """
    path = Path(path)
    wave, rate = _decode(path, offset_s, duration_s)
    if wave.size == 0:
        raise AudioError(f"{path}: audio is empty (0 samples)")
    if min_duration_s and wave.shape[0] / rate < min_duration_s:
        raise AudioError(
            f"{path}: audio is too short ({wave.shape[0] / rate:.2f} s < {min_duration_s} s)"
        )
    wave = to_mono(wave)
    if sample_rate is not None and rate != sample_rate:
        wave = resample(wave, rate, sample_rate)
    if int16_scale:
        wave = wave * INT16_SCALE
    return np.ascontiguousarray(wave, dtype=np.float32)


def load_audio_with_rate(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Decode `path` to a mono float32 waveform at its own sample rate."""
    wave, rate = _decode(Path(path), 0.0, None)
    if wave.size == 0:
        raise AudioError(f"{path}: audio is empty (0 samples)")
    return to_mono(wave), rate


def to_mono(wave: np.ndarray) -> np.ndarray:
    """Average the channels of a `(samples, channels)` array; 1-D input is returned as is."""
    return wave.mean(axis=1, dtype=np.float32) if wave.ndim == 2 else wave


def resample(wave: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Resample a 1-D waveform with soxr (high quality)."""
    if orig_rate == target_rate:
        return wave
    return soxr.resample(wave, orig_rate, target_rate, quality="HQ").astype(np.float32)


def _decode(path: Path, offset_s: float, duration_s: float | None) -> tuple[np.ndarray, int]:
    check_audio_path(path)
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: audio file is empty (0 bytes)")
    if _needs_ffmpeg(path):
        return _decode_ffmpeg(path, offset_s, duration_s)
    try:
        with sf.SoundFile(str(path)) as f:
            rate = f.samplerate
            start = int(round(offset_s * rate))
            if start:
                f.seek(min(start, f.frames))
            frames = -1 if duration_s is None else int(round(duration_s * rate))
            wave = f.read(frames=frames, dtype="float32", always_2d=False)
    except AudioError:
        raise
    except Exception as exc:
        raise AudioError(f"{path}: cannot read audio ({_reason(exc)})") from None
    return wave, rate


def _needs_ffmpeg(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower().lstrip(".") in FFMPEG_EXTENSIONS


def _decode_ffmpeg(path: Path, offset_s: float, duration_s: float | None):
    """`(samples, channels)` float32 and the rate of the first audio stream, by FFmpeg."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            rate = int(stream.rate)
            chunks = [frame.to_ndarray() for frame in container.decode(stream)]
    except (av.FFmpegError, IndexError, OSError) as exc:
        raise AudioError(f"{path}: cannot read audio ({_reason(exc)})") from None
    if not chunks:
        return np.zeros((0,), np.float32), rate
    wave = _interleaved(chunks, stream.layout.nb_channels)
    start = int(round(offset_s * rate))
    stop = None if duration_s is None else start + int(round(duration_s * rate))
    return wave[start:stop], rate


def _interleaved(chunks: list[np.ndarray], channels: int) -> np.ndarray:
    """Decoded frames (planar `(channels, n)` or packed `(1, n * channels)`) as one
    `(samples, channels)` float32 array in [-1, 1); 1-D for mono."""
    arrays = []
    for chunk in chunks:
        if np.issubdtype(chunk.dtype, np.integer):
            chunk = chunk.astype(np.float32) / np.iinfo(chunk.dtype).max
        rows = (
            chunk.reshape(channels, -1)
            if chunk.shape[0] == channels
            else chunk.reshape(-1, channels).T
        )
        arrays.append(rows.astype(np.float32, copy=False))
    wave = np.concatenate(arrays, axis=1).T
    return wave[:, 0].copy() if channels == 1 else wave


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
