"""The resume state of a BAE training run (`weights/last_state.pt`, `history.json`), read
with checks: a damaged or tampered file is one line naming the file and the field."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from balr import records
from balr.errors import ModelError, load_failure_reason


@dataclass(frozen=True)
class ResumeState:
    """Where a run stopped: epochs done, optimiser steps, best loss, optimiser and loss state."""

    epoch: int
    global_step: int
    best_loss: float
    optimizer: dict
    losses: dict[str, torch.Tensor]


def tensor_shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    """Name -> shape of each tensor of a module's state dict."""
    return {name: tuple(value.shape) for name, value in module.state_dict().items()}


def read_resume_state(
    path: str | os.PathLike, device: torch.device | str, loss_shapes: Mapping[str, tuple]
) -> ResumeState:
    """`last_state.pt` (weights-only load, no code run): counters whole and >= 0, the best
    loss a number (inf before any improvement), finite optimiser moments, and the loss
    state's tensors as `loss_shapes` says."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        reason = load_failure_reason(exc)
        raise ModelError(f"{path}: cannot read the resume state ({reason})") from None
    losses = records.require(state, "losses", path)
    if not isinstance(losses, Mapping):
        raise records.fail(path, "losses", "must be a state dict of tensors")
    records.check_state_dict(path, losses, loss_shapes)
    return ResumeState(
        epoch=records.read_count(state, "epoch", path),
        global_step=records.read_count(state, "global_step", path),
        best_loss=_best_loss(state, path),
        optimizer=records.check_optimizer_state(
            path, records.require(state, "optimizer", path), "optimizer"
        ),
        losses=dict(losses),
    )


def _best_loss(state: Any, path: str | os.PathLike) -> float:
    """The best loss so far: a number, inf before any improvement, never NaN."""
    value = records.require(state, "best_loss", path)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise records.fail(path, "best_loss", f"must be a number (inf before any), got {value!r}")
    return float(value)


def read_history(path: Path, epochs: int) -> list[dict]:
    """The first `epochs` records of a run's `history.json` (a list), [] when absent."""
    if not path.is_file():
        return []
    try:
        history = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: cannot read the training history ({exc})") from None
    if not isinstance(history, list):
        raise ModelError(f"{path}: the training history must be a list of epochs")
    return history[:epochs]
