"""The `balr` entry point: help, one-line errors, and the vectors commands."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from balr.data import AudioDataset, VectorStore
from balr.data.kaldi import read_kaldi_vectors
from tests.conftest import EXAMPLES


def run_balr(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "balr.cli.main", *args], capture_output=True, text=True, timeout=120
    )


def test_help_lists_commands():
    result = run_balr("--help")
    assert result.returncode == 0
    assert "vectors" in result.stdout


@pytest.mark.difference("BA-root-command")
def test_root_command_has_the_reference_completion_options():
    """Typer's `--install-completion` / `--show-completion`, as the reference's `balr`."""
    assert "--install-completion" in run_balr("--help").stdout
    result = run_balr("--show-completion", "bash")
    assert result.returncode == 0 and "_balr_completion" in result.stdout


@pytest.mark.slow
def test_user_error_is_one_line_on_stderr(tmp_path):
    result = run_balr("vectors", "pack", str(tmp_path / "missing.csv"))
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "missing.csv: no such file or directory" in lines[0]


@pytest.mark.slow
def test_pack_and_export_kaldi(tmp_path):
    csv = str(EXAMPLES / "audio" / "metadata.csv")
    ds = AudioDataset.from_path(csv, output_dir=tmp_path)
    vectors = np.random.default_rng(3).normal(size=(len(ds), 10)).astype(np.float32)
    ds.save_vectors("emb", range(len(ds)), vectors)
    result = run_balr("vectors", "pack", csv, "--output-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert f"wrote 8 vectors to {tmp_path / 'embeddings'}.npy" in result.stdout
    store = VectorStore.open(tmp_path / "embeddings")
    np.testing.assert_allclose(store.gather(ds.ids), vectors, rtol=1e-7)
    ark = tmp_path / "kaldi" / "emb.ark"
    result = run_balr("vectors", "export-kaldi", csv, str(ark), "--output-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    loaded = read_kaldi_vectors(ark.with_suffix(".scp"))
    np.testing.assert_allclose(np.stack([loaded[i] for i in ds.ids]), vectors, rtol=1e-7)
