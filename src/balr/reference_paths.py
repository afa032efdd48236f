"""Reference file names that balr writes under other names, resolved to balr's files.

The reference writes `runs/scorer/train/scorer.pt` (`score train`) and `runs/train/best.pt`,
`last.pt`, `epoch{E}.pt` with E counted from 0 (`train`); balr writes `scorer.safetensors`
and `weights/best.safetensors`, `last`, `epoch{N}` with N counted from 1 in those folders.
A reference command line typed after a balr run names a file that is not there: when it is
missing and balr's file of the same role is, that file is used, with a logged note.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

logger = logging.getLogger(__name__)

_EPOCH = re.compile(r"epoch(\d+)\.pt")


def balr_scorer_file(path: Path) -> Path | None:
    """`DIR/scorer.safetensors` for the reference's `DIR/scorer.pt`."""
    return path.with_name("scorer.safetensors") if path.name == "scorer.pt" else None


def balr_encoder_file(path: Path) -> Path | None:
    """`DIR/weights/best.safetensors` for the reference's `DIR/best.pt` (also `last`), and
    `DIR/weights/epoch{E + 1}.safetensors` for its `DIR/epoch{E}.pt` (0-based epochs)."""
    if path.name in ("best.pt", "last.pt"):
        return path.parent / "weights" / f"{path.stem}.safetensors"
    epoch = _EPOCH.fullmatch(path.name)
    if epoch:
        return path.parent / "weights" / f"epoch{int(epoch.group(1)) + 1}.safetensors"
    return None


def resolve_reference_path(path: str | os.PathLike, role: str) -> Path:
    """`path`, or balr's file for it when `path` is a missing reference file name whose balr
    counterpart exists (`role`: `scorer` or `encoder`); the substitution is logged."""
    path = Path(path)
    if path.exists():
        return path
    counterpart = balr_scorer_file(path) if role == "scorer" else balr_encoder_file(path)
    if counterpart is None or not counterpart.is_file():
        return path
    logger.info(
        "%s: not found; reading %s, the file balr writes for it (see docs/differences.md)",
        path,
        counterpart,
    )
    return counterpart
