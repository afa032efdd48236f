"""Deterministic channel variants of 16 kHz speech (one strong shared
channel per variant), reusable by a benchmark.

`apply_channel(wave, name, item_id)` -> float32 16 kHz wave. Every recording of a variant
goes through the same room impulse response, the same background-noise recording (a seeded
20 s signal; each recording reads it from an offset derived from its id, so the environment
is shared but the samples are not identical) at a fixed SNR, and the same codec. Nothing
depends on global random state: the RIRs and noises are built from fixed seeds.

Variants:
  telephone  synthetic office room (RT60 0.35 s) -> pink + babble background noise at 12 dB
             SNR (speech level: active frames) -> 300-3400 Hz band-pass (Butterworth order
             6) -> 8 kHz -> AMR-NB 7.4 kbit/s (libopencore_amrnb through PyAV) -> 16 kHz
  phone      the milder telephone line: the telephone variant's room -> pink noise (+ a
             faint 50 Hz hum) at 20 dB SNR -> 300-3400 Hz band-pass -> 8 kHz -> AMR-NB
             12.2 kbit/s -> 16 kHz
  hall       strong single room (RT60 0.9 s, weak direct path) -> 50 Hz mains hum with
             harmonics + low pink noise at 15 dB SNR -> Opus 8 kbit/s (libopus, 16 kHz)

The babble is built from synthetic formant-like harmonic complexes (not from any corpus),
so no speaker of the data sets is mixed into the variants.

Usage: channel_variants.py IN.wav OUT.wav --variant telephone  (a listening check)
"""

from __future__ import annotations

import argparse
import hashlib
import io
from functools import cache

import av
import numpy as np
import soxr
from scipy import signal

SR = 16000
VARIANTS = ("telephone", "hall", "phone")


# --------------------------------------------------------------------------- building blocks
def synthetic_rir(rt60: float, direct_gain: float, seed: int, length_s: float = 1.2):
    """Exponentially decaying noise tail (decay 60 dB in `rt60`), a direct-path impulse and
    a few early reflections; unit energy."""
    rng = np.random.default_rng(seed)
    n = int(length_s * SR)
    t = np.arange(n) / SR
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)
    # a low-pass on the tail: high frequencies decay faster in real rooms
    tail = signal.sosfilt(signal.butter(2, 5000, fs=SR, output="sos"), tail)
    tail[: int(0.002 * SR)] = 0.0
    rir = tail / np.sqrt(np.sum(tail**2))
    rir[0] += direct_gain
    for delay_ms, gain in ((3.1, 0.45), (5.7, 0.33), (8.9, 0.27), (12.4, 0.2)):
        rir[int(delay_ms * SR / 1000)] += gain * direct_gain * rng.choice([-1, 1])
    return (rir / np.sqrt(np.sum(rir**2))).astype(np.float64)


def pink_noise(n: int, rng) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    spec[1:] /= np.sqrt(f[1:])
    spec[0] = 0
    x = np.fft.irfft(spec, n)
    return x / x.std()


def babble(n: int, rng, voices: int = 6) -> np.ndarray:
    """Speech-shaped babble: harmonic complexes with random gliding f0 and formant filters,
    syllable-rate amplitude modulation; no real speaker."""
    out = np.zeros(n)
    t = np.arange(n) / SR
    for _ in range(voices):
        f0 = rng.uniform(95, 230) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.2, 0.7) * t))
        phase = 2 * np.pi * np.cumsum(f0) / SR
        src = sum(np.cos(k * phase) / k for k in range(1, 30))
        voiced = np.zeros(n)
        for lo, hi in ((300, 900), (900, 2400), (2400, 3500)):
            fc = rng.uniform(lo, hi)
            sos = signal.butter(2, [fc * 0.8, fc * 1.2], btype="band", fs=SR, output="sos")
            voiced += signal.sosfilt(sos, src)
        env = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(3, 5) * t + rng.uniform(0, 6.3))
        out += voiced * env**2
    return out / out.std()


@cache
def noise_recording(name: str) -> np.ndarray:
    """The variant's fixed 20 s background recording (unit RMS)."""
    rng = np.random.default_rng({"telephone": 1801, "hall": 1802, "phone": 1803}[name])
    n = 20 * SR
    if name == "telephone":
        x = 0.6 * pink_noise(n, rng) + 0.8 * babble(n, rng)
    elif name == "phone":
        t = np.arange(n) / SR
        x = pink_noise(n, rng) + 0.2 * np.sin(2 * np.pi * 50 * t)
    else:
        t = np.arange(n) / SR
        hum = sum(a * np.sin(2 * np.pi * 50 * k * t + rng.uniform(0, 6.3))
                  for k, a in ((1, 1.0), (2, 0.5), (3, 0.7), (5, 0.3), (7, 0.2)))  # fmt: skip
        x = hum / hum.std() + 0.3 * pink_noise(n, rng)
    return (x / x.std()).astype(np.float64)


@cache
def room(name: str) -> np.ndarray:
    if name in ("telephone", "phone"):
        return synthetic_rir(rt60=0.35, direct_gain=2.5, seed=1811)
    return synthetic_rir(rt60=0.9, direct_gain=0.6, seed=1812)


def active_power(x: np.ndarray) -> float:
    """Mean power of the 30 ms frames within 30 dB of the loudest (the active speech)."""
    frame = int(0.03 * SR)
    m = len(x) // frame
    if m == 0:
        return float(np.mean(x**2) + 1e-12)
    p = np.mean(x[: m * frame].reshape(m, frame) ** 2, axis=1)
    keep = p > p.max() * 1e-3
    return float(p[keep].mean() + 1e-12)


def offset_of(item_id: str, length: int) -> int:
    h = int(hashlib.sha256(item_id.encode()).hexdigest()[:8], 16)
    return h % length


def add_noise(x: np.ndarray, name: str, item_id: str, snr_db: float) -> np.ndarray:
    noise = noise_recording(name)
    start = offset_of(item_id, len(noise))
    reps = int(np.ceil((start + len(x)) / len(noise))) + 1
    seg = np.tile(noise, reps)[start : start + len(x)]
    gain = np.sqrt(active_power(x) / 10 ** (snr_db / 10))
    return x + gain * seg


def codec_roundtrip(x: np.ndarray, codec: str, rate: int, bit_rate: int, fmt: str) -> np.ndarray:
    """Encode a float wave at `rate` with a PyAV codec and decode it back (same rate)."""
    pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16)
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.bit_rate = bit_rate
        stream.layout = "mono"
        frame_size = stream.codec_context.frame_size or 160
        for start in range(0, len(pcm), frame_size):
            chunk = pcm[start : start + frame_size]
            if len(chunk) < frame_size:
                chunk = np.pad(chunk, (0, frame_size - len(chunk)))
            frame = av.AudioFrame.from_ndarray(chunk[None], format="s16", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    buf.seek(0)
    pieces = []
    with av.open(buf, "r") as inp:
        for frame in inp.decode(audio=0):
            a = frame.to_ndarray()
            if a.dtype == np.int16:
                a = a.astype(np.float32) / 32768.0
            pieces.append(a.reshape(-1) if a.shape[0] == 1 else a.mean(0))
        dec_rate = inp.streams.audio[0].rate
    y = np.concatenate(pieces).astype(np.float64)
    if dec_rate != rate:
        y = soxr.resample(y, dec_rate, rate, quality="HQ")
    # codec delay: align on the cross-correlation peak of the first seconds
    n = min(len(x), len(y), 2 * rate)
    lag = int(np.argmax(signal.correlate(y[: n + 2000], x[:n], mode="valid"))) if n > 0 else 0
    y = y[lag : lag + len(x)]
    return np.pad(y, (0, len(x) - len(y)))


# --------------------------------------------------------------------------- the variants
def apply_channel(wave: np.ndarray, name: str, item_id: str) -> np.ndarray:
    """The recording through variant `name` (deterministic given `item_id`), 16 kHz float32,
    scaled to the input's active level (peak-limited to 0.99)."""
    x = np.asarray(wave, np.float64)
    level = np.sqrt(active_power(x))
    y = signal.fftconvolve(x, room(name))[: len(x)]
    if name in ("telephone", "phone"):
        y = add_noise(y, name, item_id, snr_db=12.0 if name == "telephone" else 20.0)
        sos = signal.butter(6, [300, 3400], btype="band", fs=SR, output="sos")
        y = signal.sosfilt(sos, y)
        y = soxr.resample(y, SR, 8000, quality="HQ")
        y = y * (0.25 / (np.abs(y).max() + 1e-9))  # codec input level, no clipping
        rate = 7400 if name == "telephone" else 12200
        y = codec_roundtrip(y, "libopencore_amrnb", 8000, rate, "amr")
        y = soxr.resample(y, 8000, SR, quality="HQ")
    elif name == "hall":
        y = add_noise(y, name, item_id, snr_db=15.0)
        y = y * (0.25 / (np.abs(y).max() + 1e-9))
        y = codec_roundtrip(y, "libopus", SR, 8000, "ogg")
    else:
        raise ValueError(f"unknown channel variant {name!r} (one of {VARIANTS})")
    y = y[: len(x)]
    y = np.pad(y, (0, len(x) - len(y)))
    y = y * (level / np.sqrt(active_power(y)))
    peak = np.abs(y).max()
    if peak > 0.99:
        y = y * (0.99 / peak)
    return y.astype(np.float32)


def main():
    import soundfile as sf

    from balr.audio import load_audio

    ap = argparse.ArgumentParser()
    ap.add_argument("inp")
    ap.add_argument("out")
    ap.add_argument("--variant", choices=VARIANTS, default="telephone")
    args = ap.parse_args()
    wave = load_audio(args.inp, SR)
    sf.write(args.out, apply_channel(wave, args.variant, args.inp), SR)


if __name__ == "__main__":
    main()
