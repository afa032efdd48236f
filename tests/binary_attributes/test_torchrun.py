"""`torchrun --standalone --nproc_per_node 2` trains with DDP on CPU (gloo)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_torchrun

from .conftest import clustered_embeddings, write_embedding_csv

pytestmark = pytest.mark.slow  # end-to-end runs (models, CLI processes): not in `make test-fast`


@pytest.mark.slow
def test_torchrun_two_processes_train_and_rank0_writes_one_checkpoint(tmp_path: Path):
    x, y = clustered_embeddings(16, 4, dim=32, seed=0)
    train = write_embedding_csv(tmp_path / "train", x, y)
    x, y = clustered_embeddings(4, 4, dim=32, seed=1)
    val = write_embedding_csv(tmp_path / "val", x, y, prefix="val")
    args = [
        "train", str(train), str(val), "--device", "cpu",
        "trainer.epochs=2", "trainer.progress=false", "data.N_classes_per_batch=4",
        "data.M_samples_per_class=4", "model.latent_dim=64",
    ]  # fmt: skip
    log = run_torchrun(args, cwd=tmp_path)
    assert "rank 0 of 2 on cpu" in log and "rank 1 of 2 on cpu" in log
    # both processes agreed on runs/train and only rank 0 wrote files
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["train"]
    checkpoints = sorted(p.name for p in tmp_path.rglob("last.safetensors"))
    assert checkpoints == ["last.safetensors"]
    assert len(list((tmp_path / "runs" / "train").glob("events.out.tfevents.*"))) == 1
    assert log.count("epoch 2: {") == 1  # the epoch summary is logged by rank 0 only
