"""The BA-LR reference README's `balr train` command lines, run as written (paths aside).

Each line is the README's text with only `/path/to/train_dataset` and
`/path/to/validation_dataset` replaced. The datasets are generated speaker-clustered
embeddings (16 training and 8 validation speakers, 8 recordings each): `balr train` fits on
embeddings, and the 8 bundled clips (4 speakers) cannot fill the default batch of
N x M = 8 x 8, so the defaults (64 epochs, validation every 10) run as they are, in seconds.
The torchrun line gets `--standalone` (a free rendezvous port, as tests run side by side)
and, on CPU, `--device cpu` and `trainer.epochs=2` (two processes on two shared cores).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import REPO_ROOT

from .conftest import clustered_embeddings, write_embedding_csv

pytestmark = pytest.mark.slow  # end-to-end runs (models, CLI processes): not in `make test-fast`

PLAIN = "balr train /path/to/train_dataset /path/to/validation_dataset"
TWO_OVERRIDES = (
    "balr train /path/to/train_dataset /path/to/validation_dataset "
    "trainer.epochs=50 trainer.learning_rate=0.002"
)
TORCHRUN = (
    "torchrun --nproc_per_node 2 balr/cli/main.py train /path/to/train_dataset "
    "/path/to/validation_dataset --device cuda:0,1"
)
#: the reference's `balr/cli/main.py` is, in this repository, `src/balr/cli/main.py`
MAIN_SCRIPT = REPO_ROOT / "src" / "balr" / "cli" / "main.py"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("readme")
    x, y = clustered_embeddings(16, 8, seed=0)  # two processes: 8 speakers a batch each
    train = write_embedding_csv(folder / "train", x, y)
    x, y = clustered_embeddings(8, 8, seed=1)
    val = write_embedding_csv(folder / "val", x, y, prefix="val")
    return {"/path/to/train_dataset": train, "/path/to/validation_dataset": val}


def readme_argv(line: str, datasets: dict[str, Path]) -> list[str]:
    """The README line split as a shell would, with the two dataset paths replaced."""
    for placeholder, path in datasets.items():
        line = line.replace(placeholder, str(path))
    return shlex.split(line)


def run(argv: list[str], cwd: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    """Run with the test's Python environment first on PATH (its `balr` and `torchrun`),
    one OpenMP thread a process."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.difference("BA-train")
def test_readme_train_line_runs_with_the_defaults(datasets, tmp_path):
    result = run(readme_argv(PLAIN, datasets), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "runs" / "train"
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history) == 64  # the reference's default epochs
    assert [r["epoch"] for r in history if "val" in r] == [10, 20, 30, 40, 50, 60, 64]
    assert set(history[0]["train"]) == {"total", "mse", "triplet"}
    assert (run_dir / "weights" / "best.safetensors").is_file()
    assert result.stdout.strip().startswith("epoch 64: loss ")


def test_readme_train_line_with_two_overrides(datasets, tmp_path):
    result = run(readme_argv(TWO_OVERRIDES, datasets), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "runs" / "train"
    cfg = OmegaConf.load(run_dir / "config.yaml")
    assert (cfg.trainer.epochs, cfg.trainer.learning_rate) == (50, 0.002)
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history) == 50 and history[-1]["epoch"] == 50


@pytest.mark.skipif(torch.cuda.device_count() >= 2, reason="two GPUs: the line would train")
def test_readme_torchrun_line_without_two_gpus_says_so(datasets, tmp_path):
    argv = readme_argv(TORCHRUN, datasets)
    argv[argv.index("balr/cli/main.py")] = str(MAIN_SCRIPT)
    result = run([*argv[:1], "--standalone", *argv[1:]], tmp_path)
    assert result.returncode != 0
    assert "error: device 'cuda:0,1': CUDA is not available on this machine" in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_readme_torchrun_line_on_cpu(datasets, tmp_path):
    """The same line with `--device cpu`: two DDP processes (gloo), the script path form."""
    argv = readme_argv(TORCHRUN, datasets)
    argv[argv.index("balr/cli/main.py")] = str(MAIN_SCRIPT)
    argv[argv.index("cuda:0,1")] = "cpu"
    result = run([*argv[:1], "--standalone", *argv[1:], "trainer.epochs=2"], tmp_path)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert "rank 0 of 2 on cpu" in log and "rank 1 of 2 on cpu" in log
    assert len(json.loads((tmp_path / "runs" / "train" / "history.json").read_text())) == 2
