"""The shape shared by every trainer in balr (binary-attribute encoder, DoubleMHA extractor).

    history = SomeTrainer(config, out_dir, device).fit(train, valid)

`config` holds every setting (defaults defined once, in the stage's config dataclass),
`out_dir` receives checkpoints, logs and TensorBoard files, `fit` returns the per-epoch or
per-validation history. A command that trains opens the torchrun process group with
`balr.distributed.session` (the one place that does); a trainer only asks whether it runs
distributed, wraps its module with `wrap`, and writes files on the main process only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from balr.distributed import is_active, is_main_process, resolve_device, wrap_ddp
from balr.errors import Interrupted


class Trainer(ABC):
    """Base class: stores config, output folder and device; subclasses implement `fit`."""

    def __init__(self, config: Any, out_dir: str | Path, device: torch.device | str | None = None):
        self.config = config
        self.out_dir = Path(out_dir)
        self.device = device if isinstance(device, torch.device) else resolve_device(device)

    @property
    def distributed(self) -> bool:
        """True inside a torchrun process group with more than one process."""
        return is_active()

    @property
    def main(self) -> bool:
        """True on the process that writes files (rank 0, or the only process)."""
        return is_main_process()

    def wrap(self, module: torch.nn.Module, **options) -> torch.nn.Module:
        """`module` in DistributedDataParallel when distributed, else unchanged."""
        return wrap_ddp(module, self.device, **options)

    def tensorboard(self, log_dir: str | Path | None = None):
        """A TensorBoard writer on the main process (None elsewhere)."""
        if not self.main:
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(log_dir=str(log_dir or self.out_dir))

    @abstractmethod
    def fit(self, train: Any, valid: Any = None) -> list[dict]:
        """Train on `train`, validate on `valid`; returns the history of records."""


@contextmanager
def stop_on_interrupt(out_dir: str | Path, resume_with: str) -> Iterator[None]:
    """Turn Ctrl-C during training into `Interrupted`, whose one line names the run folder
    (checkpoints are written atomically, so the ones there are whole) and how to resume."""
    try:
        yield
    except Interrupted:
        raise
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted: training stopped; checkpoints and logs written so far are in "
            f"{out_dir}; to continue, run the same command with {resume_with}"
        ) from None
