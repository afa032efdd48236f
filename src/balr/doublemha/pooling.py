"""Attention poolings over time: Attention, MHA and DoubleMHA.

With frame vectors `h_t` (from the front-end):

- Attention: `w_t = softmax_t(h_t . u)`, vector `sum_t w_t h_t` (one learned query `u`).
- MHA (India et al., "Self Multi-Head Attention for Speaker Recognition", Interspeech
  2019): each `h_t` is cut into H heads `h_tj`; head j has its own query `u_j`,
  `w_tj = softmax_t(h_tj . u_j)` and context `c_j = sum_t w_tj h_tj`; the vector is the
  concatenation of the H contexts.
- DoubleMHA (India et al., "Double Multi-Head Attention for Speaker Verification", ICASSP
  2021, arXiv 2007.13199): a second attention over the head contexts,
  `v_j = softmax_j(c_j . u')`, vector `sum_j v_j c_j` (size d / H).

Each returns a `Pooled`: the utterance vector plus the alignments that explain it, the
time-by-head attention `(B, T, H)` and, for DoubleMHA, the head weights `(B, H)`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from balr.errors import ConfigError

POOLINGS = ("Attention", "MHA", "DoubleMHA")


class Pooled(NamedTuple):
    vector: torch.Tensor
    time_weights: torch.Tensor
    head_weights: torch.Tensor | None


def time_mask(lengths: torch.Tensor | None, frames: int) -> torch.Tensor | None:
    """`(B, T)` True on valid frames, or None when every row is full length."""
    if lengths is None:
        return None
    return torch.arange(frames, device=lengths.device)[None, :] < lengths[:, None]


def _masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None, dim: int) -> torch.Tensor:
    """Softmax along `dim` where entries with mask False get weight 0."""
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=dim)


def _learned_vector(size: int) -> nn.Parameter:
    return nn.Parameter(torch.randn(size) / math.sqrt(size))


class AttentionPooling(nn.Module):
    """One learned vector scores every frame; softmax over time; weighted sum of frames."""

    def __init__(self, input_dim: int):
        super().__init__()
        self.query = _learned_vector(input_dim)
        self.output_dim = input_dim

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> Pooled:
        mask = time_mask(lengths, x.shape[1])
        weights = _masked_softmax(x @ self.query, mask, dim=1)  # (B, T)
        vector = torch.einsum("bt,btd->bd", weights, x)
        return Pooled(vector, weights.unsqueeze(-1), None)


class MultiHeadAttentionPooling(nn.Module):
    """Frame vectors cut into H heads, each with its own query; per-head softmax over time."""

    def __init__(self, input_dim: int, heads: int):
        super().__init__()
        if input_dim % heads:
            raise ConfigError(f"heads_number {heads}: must divide the frame size {input_dim}")
        self.heads = heads
        self.head_dim = input_dim // heads
        self.queries = nn.Parameter(torch.randn(heads, self.head_dim) / math.sqrt(self.head_dim))
        self.output_dim = input_dim

    def head_contexts(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-head contexts `(B, H, d/H)` and time weights `(B, T, H)`."""
        batch, frames, _ = x.shape
        split = x.reshape(batch, frames, self.heads, self.head_dim)
        scores = torch.einsum("bthe,he->bth", split, self.queries)
        mask = time_mask(lengths, frames)
        weights = _masked_softmax(scores, None if mask is None else mask[:, :, None], dim=1)
        return torch.einsum("bth,bthe->bhe", weights, split), weights

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> Pooled:
        contexts, weights = self.head_contexts(x, lengths)
        return Pooled(contexts.reshape(x.shape[0], -1), weights, None)


class DoubleMHAPooling(nn.Module):
    """MHA, then a second attention over the H head contexts; output size d / H.

    In training mode each head is dropped with probability `mask_prob` before the softmax
    over heads (a row never loses all its heads); in eval mode no head is masked.
    """

    def __init__(self, input_dim: int, heads: int, mask_prob: float = 0.3):
        super().__init__()
        if not 0.0 <= mask_prob < 1.0:
            raise ConfigError(f"mask_prob {mask_prob}: must be in [0, 1)")
        self.mha = MultiHeadAttentionPooling(input_dim, heads)
        self.head_query = _learned_vector(self.mha.head_dim)
        self.mask_prob = mask_prob
        self.output_dim = self.mha.head_dim

    def head_mask(self, batch: int, device: torch.device) -> torch.Tensor | None:
        """`(B, H)` True for kept heads in training; None in eval mode or with mask_prob 0."""
        if not self.training or self.mask_prob == 0.0:
            return None
        keep = torch.rand(batch, self.mha.heads, device=device) >= self.mask_prob
        return keep | ~keep.any(dim=1, keepdim=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> Pooled:
        contexts, time_weights = self.mha.head_contexts(x, lengths)
        scores = contexts @ self.head_query  # (B, H)
        head_weights = _masked_softmax(scores, self.head_mask(x.shape[0], x.device), dim=1)
        vector = torch.einsum("bh,bhe->be", head_weights, contexts)
        return Pooled(vector, time_weights, head_weights)


def build_pooling(name: str, input_dim: int, heads: int, mask_prob: float) -> nn.Module:
    """A pooling layer by its `pooling_method` name (Attention, MHA or DoubleMHA)."""
    if name == "Attention":
        return AttentionPooling(input_dim)
    if name == "MHA":
        return MultiHeadAttentionPooling(input_dim, heads)
    if name == "DoubleMHA":
        return DoubleMHAPooling(input_dim, heads, mask_prob)
    raise ConfigError(f"pooling_method '{name}': expected one of {POOLINGS}")


def reference_query_init(pooling: nn.Module) -> None:
    """The reference's initial attention queries (`scripts/poolings.py` `new_parameter`):
    xavier-normal of its `(size, 1)` vectors and `(head size, H)` multi-head query, the latter
    divided by sqrt(H) into balr's unscaled scores (as `balr.doublemha.reference` converts)."""
    with torch.no_grad():
        for module in pooling.modules():
            if isinstance(module, MultiHeadAttentionPooling):
                query = nn.init.xavier_normal_(torch.empty(module.head_dim, module.heads))
                module.queries.copy_(query.t() / math.sqrt(module.heads))
            for name in ("query", "head_query"):
                vector = getattr(module, name, None)
                if isinstance(vector, nn.Parameter):
                    vector.copy_(nn.init.xavier_normal_(torch.empty(len(vector), 1))[:, 0])
