"""Device strings and torchrun (DDP) set-up shared by every training/inference command.

Device strings: `cpu`, `cuda`, `cuda:1`, or `cuda:0,1` (a list of GPUs, one per torchrun
process, picked by LOCAL_RANK). Under torchrun, WORLD_SIZE/RANK/LOCAL_RANK are set and the
process group uses gloo on CPU and nccl on CUDA.

torch is imported by the functions that use it: ranks and world size are read without it
(a process group exists only once torch.distributed was imported), so the CLI starts fast.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from balr.errors import ConfigError
from balr.fileio import next_run_dir, run_dir

if TYPE_CHECKING:
    import torch


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def _process_group() -> ModuleType | None:
    """`torch.distributed` when a process group is initialized (never imports torch)."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist
    return None


def world_size() -> int:
    dist = _process_group()
    if dist is not None:
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    dist = _process_group()
    if dist is not None:
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    """True on rank 0 (or when not distributed): only this process writes files."""
    return rank() == 0


def launched_by_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def resolve_device(spec: str | None) -> torch.device:
    """Turn a device string into this process's torch.device.

    `cuda:0,1` (or the reference's `0,1`) gives process LOCAL_RANK the GPU at that position
    of the list; `cuda` gives it `cuda:LOCAL_RANK`. A CUDA request on a machine without
    CUDA is an error.
    """
    import torch

    spec = (spec or ("cuda" if torch.cuda.is_available() else "cpu")).strip().lower()
    if spec.replace(",", "").isdigit():  # the reference's bare GPU numbers: `0`, `0,1`
        spec = f"cuda:{spec}"
    if spec == "cpu":
        return torch.device("cpu")
    if not spec.startswith("cuda"):
        raise ConfigError(f"device '{spec}': expected cpu, cuda, cuda:N or cuda:N,M,...")
    if not torch.cuda.is_available():
        raise ConfigError(f"device '{spec}': CUDA is not available on this machine")
    if spec == "cuda":
        return torch.device("cuda", local_rank() % torch.cuda.device_count())
    ids = [int(x) for x in spec.split(":", 1)[1].split(",") if x.strip()]
    if not ids:
        raise ConfigError(f"device '{spec}': no GPU index given")
    return torch.device("cuda", ids[local_rank() % len(ids)])


def init_distributed(device: torch.device) -> bool:
    """Start the process group when launched by torchrun; returns True if distributed."""
    if not launched_by_torchrun():
        return False
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    return True


def cleanup_distributed(finished: bool = False) -> None:
    """Destroy the process group, freeing everything that holds it while Python is alive.

    A trainer (DDP module, optimiser) can sit in a reference cycle that only the garbage
    collector frees; left to interpreter shutdown, the gloo group's destructor then runs in
    a half-torn-down interpreter and aborts the process (SIGABRT, "terminate called without
    an active exception") after a run that succeeded. `finished`: every rank got here
    normally, so they first wait for each other (no rank tears down while a peer still
    writes); after an error there is no barrier, since a dead peer would never join it.
    """
    dist = _process_group()
    if dist is None:
        return
    if finished and dist.get_world_size() > 1:
        dist.barrier()
    gc.collect()
    dist.destroy_process_group()
    gc.collect()


def is_active() -> bool:
    """True inside a started process group (several torchrun processes)."""
    dist = _process_group()
    return dist is not None and dist.get_world_size() > 1


@contextmanager
def session(device: torch.device) -> Iterator[bool]:
    """The one place where a command starts and ends the process group.

    Yields whether the run is distributed (launched by torchrun with WORLD_SIZE > 1); the
    group is destroyed on exit, also after an error, so no process hangs on a dead peer.
    """
    finished = False
    try:
        yield init_distributed(device)
        finished = True
    finally:
        cleanup_distributed(finished)


def rank0_int(value: int) -> int:
    """Rank 0's `value` on every process (the value itself when not distributed)."""
    if not is_active():
        return int(value)
    import torch
    import torch.distributed as dist

    number = torch.tensor([value])
    if dist.get_backend() == "nccl":  # nccl broadcasts device tensors only
        number = number.to(torch.device("cuda", torch.cuda.current_device()))
    dist.broadcast(number, src=0)
    return int(number.item())


def shared_run_dir(base: str | os.PathLike, prefix: str) -> Path:
    """`base/prefixN`: the next free run folder, chosen by rank 0 and broadcast to every
    process so that all of them write (or skip writing) the same run."""
    number = rank0_int(int(next_run_dir(base, prefix).name[len(prefix) :]))
    return Path(base) / f"{prefix}{number}"


def shared_save_dir(save_dir: str | os.PathLike | None, default: str, exist_ok: bool) -> Path:
    """`balr.fileio.run_dir` as chosen by rank 0 and broadcast to every process (its numeric
    suffix: 0 = the folder as named), so that all of them write (or skip writing) one run."""
    named = Path(save_dir if save_dir is not None else default)
    chosen = run_dir(named, default, exist_ok)
    suffix = rank0_int(int(str(chosen)[len(str(named)) :] or 0))
    return Path(f"{named}{suffix}") if suffix else named


def wrap_ddp(module: torch.nn.Module, device: torch.device, **options) -> torch.nn.Module:
    """`module` wrapped in DistributedDataParallel inside a process group, else unchanged."""
    if not is_active():
        return module
    import torch

    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(module, device_ids=ids, **options)
