"""Checkpoint files without pickle: tensors and plain values (torch.save, read with
`weights_only=True`), so loading one never runs code.

A checkpoint holds the model weights, the optimiser state, the settings as a JSON string,
the epoch, the step and the trainer's early-stopping state. A training directory holds
`best.pt` (the best validation EER so far), `last.pt` (the latest state, what `requeue`
continues from) and `settings.json`. `SpeakerClassifier.save` / `.load` use these files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from balr.errors import ModelError, load_failure_reason
from balr.fileio import atomic_path, atomic_write_text

BEST_NAME = "best.pt"
LAST_NAME = "last.pt"
SETTINGS_NAME = "settings.json"


def save_checkpoint(
    path: str | os.PathLike,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    settings: dict,
    epoch: int,
    step: int,
    **state: Any,
) -> None:
    """Write one checkpoint atomically (plus `settings.json` beside it)."""
    path = Path(path)
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else {},
        "settings": json.dumps(settings, sort_keys=True),
        "epoch": int(epoch),
        "step": int(step),
        "state": dict(state),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    atomic_write_text(path.parent / SETTINGS_NAME, json.dumps(settings, indent=2, sort_keys=True))


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict:
    """Read a checkpoint (no code is executed); `settings` comes back as a dict."""
    path = resolve_checkpoint(path)
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
        payload["settings"] = json.loads(payload["settings"])
    except Exception as exc:
        reason = load_failure_reason(exc)
        raise ModelError(f"{path}: not a readable extractor checkpoint ({reason})") from None
    return payload


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a training directory (its best.pt, else last.pt)."""
    path = Path(path)
    if path.is_dir():
        for name in (BEST_NAME, LAST_NAME):
            if (path / name).is_file():
                return path / name
        raise ModelError(f"{path}: no {BEST_NAME} or {LAST_NAME} in this directory")
    if not path.is_file():
        raise ModelError(f"{path}: checkpoint not found")
    return path
