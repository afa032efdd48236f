"""GE2E speaker encoder (3-layer LSTM, 256-dim) with pretrained weights shipped inside balr.

Wan et al., "Generalized End-to-End Loss for Speaker Verification", ICASSP 2018. The default
embedding model (`balr.defaults.EMBEDDING_MODEL`): it needs no download and no other package.
Its weights are those of the Resemblyzer 0.1.4 wheel (Apache-2.0, Resemble AI), converted to
float16 safetensors by `recipes/convert_ge2e_weights.py` (`balr/resources/ge2e/`, with the
licence and notice); embeddings stay within cosine 0.99999 of the float32 originals. A
resemblyzer `pretrained.pt` can still be given as `embeddings.model.weights=FILE`: it holds
only tensors and numbers and is read with `torch.load(weights_only=True)`.

Utterance recipe (as resemblyzer's `embed_utterance`): volume raised to -30 dBFS if quieter,
40-band mel power spectrogram (`balr.features.ge2e_mel`), partial windows of
160 frames (1.6 s) every 1/1.3 s, the last one kept if it covers >= 75 %, LSTM -> last hidden
state -> Linear -> ReLU -> L2 norm per partial, mean of partials, L2 norm. Unlike resemblyzer,
the partials of a whole batch of utterances go through the LSTM together.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from balr import defaults, records
from balr.embeddings.base import EmbeddingModel, register_embedding_model
from balr.embeddings.ge2e_numpy import (
    HIDDEN,
    LAYERS,
    N_MELS,
    NAME,
    PARTIAL_FRAMES,
    TARGET_DBFS,
    GE2EConfig,
    frame_step,
    partial_counts,
)
from balr.errors import ModelError, load_failure_reason
from balr.features.ge2e_mel import HOP, SAMPLE_RATE, GE2EMel


class GE2EEncoder(EmbeddingModel):
    """GE2E LSTM encoder with its mel front-end and partial-window utterance averaging."""

    name = NAME
    sample_rate = SAMPLE_RATE
    embedding_dim = HIDDEN
    normalized = True

    def __init__(self, cfg: GE2EConfig | None = None):
        super().__init__()
        cfg = cfg or GE2EConfig()
        self.cfg = cfg
        self.min_duration_s = float(cfg.min_duration_s)
        self.lstm = torch.nn.LSTM(N_MELS, HIDDEN, LAYERS, batch_first=True)
        self.linear = torch.nn.Linear(HIDDEN, HIDDEN)
        self.mel = GE2EMel()
        self.frame_step = frame_step(cfg.partials_per_second)
        if not 0 < self.frame_step <= PARTIAL_FRAMES:
            raise ModelError(f"ge2e: partials_per_second={cfg.partials_per_second} out of range")

    @torch.no_grad()
    def embed(self, waves: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, samples) in [-1, 1] -> (B, 256) unit vectors."""
        waves, lengths = self._prepare(waves, lengths)
        item, start = self._partial_starts(lengths)
        needed = int((start.max().item() + PARTIAL_FRAMES) * HOP)
        if waves.shape[1] < needed:
            waves = torch.nn.functional.pad(waves, (0, needed - waves.shape[1]))
        mels = self.mel_spectrogram(waves)
        offsets = torch.arange(PARTIAL_FRAMES, device=mels.device)
        partial_embeds = torch.cat(
            [
                self.embed_partials(mels[item[s, None], start[s, None] + offsets])
                for s in _chunks(len(item), self.cfg.max_partials)
            ]
        )
        sums = torch.zeros(len(lengths), HIDDEN, device=partial_embeds.device)
        sums.index_add_(0, item, partial_embeds)
        return torch.nn.functional.normalize(sums, dim=1)

    @torch.no_grad()
    def embed_features(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, 160, 40) mel power frames, one partial window per item -> (B, 256)."""
        return self.embed_partials(feats.to(self.device, torch.float32))

    def embed_partials(self, mels: torch.Tensor) -> torch.Tensor:
        """(P, 160, 40) mel power frames -> (P, 256) unit vectors."""
        _, (hidden, _) = self.lstm(mels)
        return torch.nn.functional.normalize(torch.relu(self.linear(hidden[-1])), dim=1)

    def mel_spectrogram(self, waves: torch.Tensor) -> torch.Tensor:
        """(B, samples) -> (B, frames, 40) mel power spectrogram (the GE2E front-end)."""
        return self.mel(waves)

    def _prepare(self, waves: torch.Tensor, lengths: torch.Tensor):
        """Zero the padding and raise each quiet item to -30 dBFS (never lowered)."""
        waves = waves.to(self.device, torch.float32)
        lengths = lengths.to(self.device, torch.long).clamp(min=1, max=waves.shape[1])
        mask = torch.arange(waves.shape[1], device=waves.device)[None] < lengths[:, None]
        waves = waves * mask
        if self.cfg.normalize_volume:
            rms = torch.sqrt(waves.square().sum(dim=1) / lengths)
            gain = 10 ** (TARGET_DBFS / 20) / rms.clamp(min=1e-12)
            gain = torch.where((rms > 0) & (gain > 1), gain, torch.ones_like(gain))
            waves = waves * gain[:, None]
        return waves, lengths

    def _partial_starts(self, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(item index, first frame) of every partial window of every item, flattened."""
        counts = torch.from_numpy(
            partial_counts(lengths.cpu().numpy(), self.frame_step, self.cfg.min_coverage)
        ).to(lengths.device)
        item = torch.repeat_interleave(torch.arange(len(lengths), device=lengths.device), counts)
        first = torch.cumsum(counts, 0) - counts
        rank = torch.arange(len(item), device=lengths.device) - first[item]
        return item, rank * self.frame_step


def _chunks(total: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, total)) for i in range(0, total, max(1, size))]


def load_ge2e_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The LSTM + linear weights (float32) of a `.safetensors` file or of a resemblyzer
    `pretrained.pt` checkpoint; neither way runs code from the file."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: GE2E weights file not found")
    try:
        if path.suffix == ".safetensors":
            state = load_file(str(path))
        else:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
            state = checkpoint.get("model_state") if isinstance(checkpoint, dict) else None
    except Exception as exc:
        reason = load_failure_reason(exc)
        raise ModelError(f"{path}: cannot load GE2E weights safely ({reason})") from None
    if not isinstance(state, dict):
        raise ModelError(f"{path}: not a GE2E checkpoint (no model_state)")
    weights = {k: v for k, v in state.items() if str(k).startswith(("lstm.", "linear."))}
    for name, value in weights.items():
        if not isinstance(value, torch.Tensor):
            raise records.fail(path, name, f"must be a tensor, got {type(value).__name__}")
    return {k: v.float() for k, v in weights.items()}


@register_embedding_model(NAME, GE2EConfig)
def build(cfg: GE2EConfig) -> GE2EEncoder:
    """The GE2E encoder with its pretrained weights (names, shapes and finiteness checked:
    one line naming the file and the tensor), in eval mode."""
    model = GE2EEncoder(cfg)
    path = Path(cfg.weights or defaults.checked(defaults.GE2E_WEIGHTS, "GE2E weights"))
    state = load_ge2e_state(path)
    expected = {name: tuple(value.shape) for name, value in model.state_dict().items()}
    records.check_state_dict(path, state, expected)
    model.load_state_dict(state, strict=True)
    return model.eval()
