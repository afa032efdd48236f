"""`torchrun --standalone --nproc_per_node 2 ... extractor train` trains with DDP on CPU (gloo)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_torchrun

from .test_training import write_lists

pytestmark = pytest.mark.slow  # end-to-end runs (models, CLI processes): not in `make test-fast`


@pytest.mark.slow
def test_torchrun_two_processes_share_one_run_dir_and_rank0_writes(tmp_path: Path):
    write_lists(tmp_path)
    args = [
        "extractor", "train",
        "--train_labels_path", "train.ndx", "--valid_clients", "clients.ndx",
        "--valid_impostors", "impostors.ndx", "--front_end", "VGG3L", "--kernel_size", "8",
        "--heads_number", "2", "--embedding_size", "8", "--window_size", "0.5",
        "--batch_size", "4", "--gradientAccumulation", "1", "--num_workers", "0",
        "--validate_every", "2", "--print_every", "1", "--max_steps", "4", "--device", "cpu",
    ]  # fmt: skip
    log = run_torchrun(args, cwd=tmp_path)
    # both processes agreed on runs/extractor1 and only rank 0 wrote and validated
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["extractor1"]
    run = tmp_path / "runs" / "extractor1"
    assert {"best.pt", "last.pt", "settings.json", "config.yaml", "summary.json"} <= {
        p.name for p in run.iterdir()
    }
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 4 and [v["step"] for v in summary["validations"]] == [2, 4]
    assert log.count("finished: 4 steps") == 1
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1
