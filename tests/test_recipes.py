"""The recipes say in one line which data they need, and exit 1, when it is absent (a clone
without ../shared), before any work or traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_recipe(script: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(script)],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_default_models_without_shared_data(tmp_path):
    clone = tmp_path / "clone"  # no tmp_path/shared beside it
    (clone / "recipes").mkdir(parents=True)
    script = shutil.copy(REPO / "recipes" / "default_models.sh", clone / "recipes")
    result = run_recipe(Path(script), tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("default_models.sh needs LibriSpeech, speechocean762,")
    assert f"{tmp_path}/shared/data" in result.stderr
    assert "missing: librispeech-train-clean-100-1utt" in result.stderr
    assert not (clone / "recipes" / "logs").exists()


def test_train_dmha_small_without_librispeech(tmp_path):
    empty = tmp_path / "librispeech"
    empty.mkdir()
    result = run_recipe(REPO / "recipes" / "train_dmha_small.sh", tmp_path, LIBRI=str(empty))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (
        f"train_dmha_small.sh needs LibriSpeech utterances (*.flac) in {empty}: set LIBRI=DIR "
        "(default ../shared/data/librispeech-train-clean-100-1utt)\n"
    )
    assert list(tmp_path.iterdir()) == [empty]  # no runs/, no log
