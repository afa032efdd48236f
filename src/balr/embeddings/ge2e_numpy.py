"""The GE2E encoder's settings, front-end and inference in numpy: `balr compare` without torch.

One file of a comparison is embedded here as `balr.embeddings.ge2e` (torch) embeds it in a
batch: the same recipe (volume to -30 dBFS if quieter, 40-band mel power spectrogram,
partial windows of 160 frames every 1/1.3 s, the last kept if it covers >= 75 %, 3-layer
LSTM -> last hidden state -> Linear -> ReLU -> L2 norm per partial, mean, L2 norm) on the
same weights, in float32 (`tests/test_compare_numpy.py`: cosine >= 0.99999 with the
torch model on the bundled clips). The settings (`GE2EConfig`), the constants and the mel
filterbank are defined here once; the torch model imports them. Why two implementations:
`docs/architecture.md` ("Two GE2E implementations").
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from balr import defaults, records

NAME = "ge2e"
SAMPLE_RATE = 16000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
PARTIAL_FRAMES = 160  # 1.6 s
HIDDEN = 256
LAYERS = 3
TARGET_DBFS = -30.0


@dataclass
class GE2EConfig:
    """`embeddings.model=ge2e` settings."""

    name: str = NAME
    weights: str = ""  # .safetensors or resemblyzer pretrained.pt; empty: the weights balr ships
    partials_per_second: float = 1.3
    min_coverage: float = 0.75
    normalize_volume: bool = True
    max_partials: int = 128  # partials per LSTM call: as fast as 512 on CPU, 1/4 the memory
    min_duration_s: float = 0.3


def frame_step(partials_per_second: float) -> int:
    """Frames between two partial windows' starts."""
    return int(round(SAMPLE_RATE / partials_per_second / HOP))


def partial_counts(lengths: np.ndarray, step: int, min_coverage: float) -> np.ndarray:
    """Partial windows of each item of `lengths` samples (the last one dropped when it
    covers less than `min_coverage` of a window, unless it is the only one)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    n_frames = lengths // HOP + 1
    steps = np.maximum(n_frames - PARTIAL_FRAMES + step + 1, 1)
    counts = (steps + step - 1) // step
    last_start = (counts - 1) * step * HOP
    coverage = (lengths - last_start).astype(np.float32) / (PARTIAL_FRAMES * HOP)
    return counts - ((coverage < min_coverage) & (counts > 1)).astype(np.int64)


def slaney_mel_filterbank(
    sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS
) -> np.ndarray:
    """`(n_fft // 2 + 1, n_mels)` float32 Slaney-scale, area-normalised triangles from 0 to
    Nyquist (librosa's default filterbank)."""
    fft_freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=np.float64)
    mel_edges = np.linspace(_hz_to_slaney(0.0), _hz_to_slaney(sample_rate / 2), n_mels + 2)
    hz_edges = _slaney_to_hz(mel_edges)
    widths = np.diff(hz_edges)
    ramps = hz_edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(np.minimum(lower, upper), 0)
    weights *= (2.0 / (hz_edges[2:] - hz_edges[:-2]))[:, None]
    return np.ascontiguousarray(weights.T, dtype=np.float32)


def _hz_to_slaney(hz: float) -> float:
    """Slaney mel: linear (3 mel per 200 Hz) below 1 kHz, logarithmic above."""
    if hz < 1000:
        return 3.0 * hz / 200.0
    return 15.0 + math.log(hz / 1000.0) / (math.log(6.4) / 27.0)


def _slaney_to_hz(mel: np.ndarray) -> np.ndarray:
    linear = 200.0 * mel / 3.0
    log = 1000.0 * np.exp((math.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log, linear)


def mel_spectrogram(wave: np.ndarray, mel_basis: np.ndarray) -> np.ndarray:
    """(samples,) float32 -> (frames, 40) mel power spectrogram: periodic Hann window,
    frames centred on the hop grid (zero-padded by n_fft / 2 on both sides)."""
    padded = np.pad(wave.astype(np.float32, copy=False), N_FFT // 2)
    frames = 1 + (len(padded) - N_FFT) // HOP
    index = np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)
    spectrum = np.fft.rfft(padded[index] * window, axis=1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    return power @ mel_basis


class NumpyGE2E:
    """The GE2E encoder on CPU in numpy: waveforms (16 kHz float32) -> 256-dim unit vectors.

    Has the attributes of `balr.embeddings.base.EmbeddingModel` that a comparison reads
    (`name`, `sample_rate`, `embedding_dim`, `min_samples`, `normalized`)."""

    name = NAME
    sample_rate = SAMPLE_RATE
    embedding_dim = HIDDEN
    normalized = True

    def __init__(self, weights: dict[str, np.ndarray], cfg: GE2EConfig | None = None):
        self.cfg = cfg or GE2EConfig()
        self.min_duration_s = float(self.cfg.min_duration_s)
        self.frame_step = frame_step(self.cfg.partials_per_second)
        self.weights = weights
        self.mel_basis = slaney_mel_filterbank()

    @property
    def min_samples(self) -> int:
        """Shortest input (in samples) the model accepts."""
        return max(1, int(round(self.min_duration_s * self.sample_rate)))

    @classmethod
    def load(cls, cfg: GE2EConfig) -> NumpyGE2E | None:
        """The model of `cfg` when its weights are a `.safetensors` file that passes every
        check; None otherwise (the torch loader then reads it, or says what is wrong)."""
        path = Path(cfg.weights or defaults.checked(defaults.GE2E_WEIGHTS, "GE2E weights"))
        if path.suffix != ".safetensors" or not path.is_file():
            return None
        if not 0 < frame_step(cfg.partials_per_second) <= PARTIAL_FRAMES:
            return None
        try:
            from safetensors.numpy import load_file

            state = {k: v.astype(np.float32) for k, v in load_file(str(path)).items()}
            state = {k: v for k, v in state.items() if k.startswith(("lstm.", "linear."))}
            records.check_state_dict(path, state, expected_shapes())
        except Exception:  # any problem: the torch loader gives the one-line error
            return None
        return cls(state, cfg)

    def embed(self, waves: list[np.ndarray]) -> np.ndarray:
        """Waveforms `(samples,)` float32 in [-1, 1] -> `(n, 256)` unit vectors; the partial
        windows of all of them go through the LSTM together. BLAS runs on one thread: its
        threads cost more than they give on these small products."""
        if not waves:
            return np.zeros((0, HIDDEN), np.float32)
        with _one_blas_thread():
            partials, owners = [], []
            for index, wave in enumerate(waves):
                windows = self._partials(self._prepare(wave))
                partials.append(windows)
                owners += [index] * len(windows)
            vectors = self.embed_partials(np.concatenate(partials))
        sums = np.zeros((len(waves), HIDDEN), np.float32)
        np.add.at(sums, np.asarray(owners), vectors)
        return sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)

    def _partials(self, wave: np.ndarray) -> np.ndarray:
        """(P, 160, 40) mel frames of the partial windows of one prepared waveform."""
        count = partial_counts(np.array([len(wave)]), self.frame_step, self.cfg.min_coverage)
        starts = np.arange(int(count[0])) * self.frame_step
        needed = int((starts[-1] + PARTIAL_FRAMES) * HOP)
        if len(wave) < needed:
            wave = np.pad(wave, (0, needed - len(wave)))
        mels = mel_spectrogram(wave, self.mel_basis)
        return mels[starts[:, None] + np.arange(PARTIAL_FRAMES)[None, :]]

    def embed_partials(self, mels: np.ndarray) -> np.ndarray:
        """(P, 160, 40) mel power frames -> (P, 256) unit vectors."""
        inputs = mels.astype(np.float32)
        for layer in range(LAYERS):
            inputs, hidden = self._lstm_layer(inputs, layer)
        w = self.weights
        out = np.maximum(hidden @ w["linear.weight"].T + w["linear.bias"], 0)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def _lstm_layer(self, inputs: np.ndarray, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """One LSTM layer (torch's gate order i, f, g, o) over (P, T, in) -> (P, T, 256)
        outputs and the last hidden state (P, 256)."""
        w = self.weights
        w_hh = np.ascontiguousarray(w[f"lstm.weight_hh_l{layer}"].T)
        projected = inputs @ w[f"lstm.weight_ih_l{layer}"].T
        projected += w[f"lstm.bias_ih_l{layer}"] + w[f"lstm.bias_hh_l{layer}"]
        batch, steps = inputs.shape[:2]
        h = np.zeros((batch, HIDDEN), np.float32)
        c = np.zeros((batch, HIDDEN), np.float32)
        outputs = np.empty((batch, steps, HIDDEN), np.float32)
        for t in range(steps):
            gates = projected[:, t] + h @ w_hh
            sig = _sigmoid(gates)  # the g gate's sigmoid is not used
            c = sig[:, HIDDEN : 2 * HIDDEN] * c
            c += sig[:, :HIDDEN] * np.tanh(gates[:, 2 * HIDDEN : 3 * HIDDEN])
            h = sig[:, 3 * HIDDEN :] * np.tanh(c)
            outputs[:, t] = h
        return outputs, h

    def _prepare(self, wave: np.ndarray) -> np.ndarray:
        """float32, raised to -30 dBFS when quieter (never lowered)."""
        wave = np.asarray(wave, dtype=np.float32)
        if self.cfg.normalize_volume and len(wave):
            rms = np.sqrt(np.square(wave).sum(dtype=np.float32) / np.float32(len(wave)))
            gain = np.float32(10 ** (TARGET_DBFS / 20)) / max(rms, np.float32(1e-12))
            if rms > 0 and gain > 1:
                wave = wave * gain
        return wave


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """Names and shapes of the GE2E weights (torch's `nn.LSTM` + `nn.Linear` state dict)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in range(LAYERS):
        size = N_MELS if layer == 0 else HIDDEN
        shapes[f"lstm.weight_ih_l{layer}"] = (4 * HIDDEN, size)
        shapes[f"lstm.weight_hh_l{layer}"] = (4 * HIDDEN, HIDDEN)
        shapes[f"lstm.bias_ih_l{layer}"] = (4 * HIDDEN,)
        shapes[f"lstm.bias_hh_l{layer}"] = (4 * HIDDEN,)
    shapes["linear.weight"] = (HIDDEN, HIDDEN)
    shapes["linear.bias"] = (HIDDEN,)
    return shapes


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _one_blas_thread():
    """A context limiting BLAS to one thread (threadpoolctl, a scikit-learn dependency)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")
