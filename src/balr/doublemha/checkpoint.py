"""Checkpoint files without pickle: tensors and plain values (torch.save, read with
`weights_only=True`), so loading one never runs code.

A checkpoint holds the model weights, the optimiser state, the settings as a JSON string,
the epoch, the step and the trainer's early-stopping state. A training directory holds
`best.pt` (the best validation EER so far), `last.pt` (the latest state, what `requeue`
continues from) and `settings.json`. `SpeakerClassifier.save` / `.load` use these files.

The reference implementation's `{model_name}_{step}.chkpt` files load too: their settings
are an `argparse.Namespace`, the one class allowed besides torch's own, and
`balr.doublemha.reference` turns them into this format.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from balr import records
from balr.doublemha.config import ModelSettings
from balr.doublemha.reference import (
    from_reference_payload,
    is_reference_payload,
    newest_reference_checkpoint,
)
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
    """Read a checkpoint, balr's or the reference's (no code is executed); `settings` come
    back as a dict, weights under balr's module names."""
    path = resolve_checkpoint(path)
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            payload = torch.load(path, map_location=device, weights_only=True)
        if is_reference_payload(payload):
            payload = from_reference_payload(payload, path)
        else:
            payload["settings"] = _settings_json(records.require(payload, "settings", path), path)
    except ModelError:
        raise
    except Exception as exc:
        reason = load_failure_reason(exc)
        raise ModelError(f"{path}: not a readable extractor checkpoint ({reason})") from None
    check_settings(path, payload["settings"])
    check_weights(path, records.require(payload, "model", path))
    return payload


def _settings_json(settings: Any, path: Path) -> Any:
    """The settings JSON string of a balr checkpoint, parsed."""
    if not isinstance(settings, str):
        raise records.fail(
            path, "settings", f"must be a JSON string, got {type(settings).__name__}"
        )
    try:
        return json.loads(settings)
    except json.JSONDecodeError as exc:
        raise records.fail(path, "settings", f"is not JSON ({exc.msg})") from None


def check_settings(path: str | os.PathLike, settings: Any) -> None:
    """ModelError naming the field when an architecture setting has another type than its
    default (a whole number > 0 for sizes and counts, a finite number, a string, true/false)."""
    if not isinstance(settings, Mapping):
        raise records.fail(path, "settings", f"must be a mapping, got {type(settings).__name__}")
    for option in fields(ModelSettings):
        if option.name not in settings:
            continue
        default, field = option.default, f"settings.{option.name}"
        if isinstance(default, bool):
            records.read_bool(settings, option.name, path, field=field)
        elif isinstance(default, int):
            records.read_int(settings, option.name, path, field=field, positive=True)
        elif isinstance(default, float):
            records.read_number(settings, option.name, path, field=field)
        elif isinstance(default, str):
            records.read_str(settings, option.name, path, field=field)


def check_weights(path: str | os.PathLike, weights: Any) -> None:
    """ModelError unless `weights` is a mapping of finite tensors."""
    if not isinstance(weights, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in weights.values()
    ):
        raise records.fail(path, "model", "must be a state dict of tensors")
    records.check_finite_tensors(path, weights)


def restore_training(
    path: str | os.PathLike,
    payload: dict,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
) -> tuple[int, int, float, int]:
    """Put a balr checkpoint's weights and optimiser state into `model` and `optimizer`
    (requeue) and return its `(epoch, step, best EER, validations without improvement)`;
    each part is checked first: one line naming the file and the field when it does not fit."""
    expected = {name: tuple(value.shape) for name, value in model.state_dict().items()}
    records.check_state_dict(path, payload["model"], expected)
    optimizer_state = records.require(payload, "optimizer", path)
    records.check_optimizer_state(path, optimizer_state, "optimizer")
    epoch, step = (
        records.read_count(payload, "epoch", path),
        records.read_count(payload, "step", path),
    )
    state = records.require(payload, "state", path)
    if not isinstance(state, Mapping):
        raise records.fail(path, "state", f"must be a mapping, got {type(state).__name__}")
    best_eer = state.get("best_eer", math.inf)
    if best_eer != math.inf:
        records.check_number(best_eer, path, "state.best_eer", unit_interval=True)
    stopping = records.read_count(
        {"stopping": state.get("stopping", 0)}, "stopping", path, field="state.stopping"
    )
    model.load_state_dict(payload["model"])
    try:
        optimizer.load_state_dict(optimizer_state)
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"{path}: field 'optimizer' does not fit this model ({detail})") from None
    return epoch, step, float(best_eer), stopping


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a training directory: its best.pt, else last.pt, else (the
    reference's output directory) the `.chkpt` of the highest step."""
    path = Path(path)
    if path.is_dir():
        for name in (BEST_NAME, LAST_NAME):
            if (path / name).is_file():
                return path / name
        reference = newest_reference_checkpoint(path)
        if reference is not None:
            return reference
        raise ModelError(f"{path}: no {BEST_NAME}, {LAST_NAME} or .chkpt in this directory")
    if not path.is_file():
        raise ModelError(f"{path}: checkpoint not found")
    return path
