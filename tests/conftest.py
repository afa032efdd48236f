"""Shared fixtures: paths to the real speech in ../shared/data (skipped when absent)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
VOXCELEB2 = SHARED_DATA / "voxceleb" / "voxceleb2"
VOXCELEB1 = SHARED_DATA / "voxceleb" / "voxceleb1"
LIBRISPEECH = SHARED_DATA / "librispeech-train-clean-100-1utt"
EXAMPLES = REPO_ROOT / "examples"
#: the reference BA-LR library's git mirror, when a development machine has one (beside the
#: checkout, or one level up for a git worktree); tests that read it skip without it
REFERENCE_BALR_MIRROR = next(
    (
        root / ".mirror" / "inria-defense+balr" / "repo"
        for root in (REPO_ROOT.parent, REPO_ROOT.parents[1])
        if (root / ".mirror" / "inria-defense+balr" / "repo").is_dir()
    ),
    REPO_ROOT.parent / ".mirror" / "inria-defense+balr" / "repo",
)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tests run on 2 shared cores: one torch thread avoids OpenMP oversubscription."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


requires_shared_data = pytest.mark.skipif(
    not VOXCELEB2.is_dir(),
    reason="../shared/data (real speech corpus) is not present beside this checkout",
)


@pytest.fixture
def voxceleb2() -> Path:
    if not VOXCELEB2.is_dir():
        pytest.skip("../shared/data/voxceleb/voxceleb2 is not present beside this checkout")
    return VOXCELEB2


@pytest.fixture
def librispeech() -> Path:
    if not LIBRISPEECH.is_dir():
        pytest.skip("../shared/data/librispeech-train-clean-100-1utt is not present")
    return LIBRISPEECH


def run_torchrun(balr_args: list[str], cwd: Path, processes: int = 2) -> str:
    """Run `torchrun --standalone --nproc_per_node N -m balr.cli.main ARGS` on CPU (one
    OpenMP thread a process) in `cwd`; returns the combined log, asserting it succeeded."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc_per_node", str(processes), "-m", "balr.cli.main", *balr_args,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    return log


def extraction_run(save_dir: Path | None, *overrides: str, force: bool = False):
    """The `ExtractionRun` of `balr extract --save-dir SAVE_DIR embeddings.num_workers=0
    OVERRIDES` (in this process, no progress bar)."""
    from balr.embeddings.extract import ExtractionRun, extract_config

    config = extract_config(["embeddings.num_workers=0", *overrides])
    return ExtractionRun(config, save_dir, force, progress=False)


def model_error(call: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """The message of the ModelError that `call(*args, **kwargs)` raises, checked to be one
    line."""
    from balr.errors import ModelError

    with pytest.raises(ModelError) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert len(message.splitlines()) == 1, message
    return message
