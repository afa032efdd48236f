"""Unreadable or malicious model files: one line naming the file, never torch's advice to
retry with `weights_only=False` (that would run the code in the file)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from balr.binary_attributes.model import BinaryAttributeEncoder
from balr.calibration import Calibrator
from balr.doublemha.checkpoint import load_checkpoint
from balr.embeddings.ge2e import load_ge2e_state
from balr.errors import ModelError
from balr.scoring import Scorer
from tests.cli.test_main import run_balr
from tests.conftest import EXAMPLES


class _RunsCode:
    """Unpickling this would run `touch MARKER`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def malicious_checkpoint(folder: Path) -> tuple[Path, Path]:
    """A scorer-shaped `.pt` whose pickle calls os.system, and the file it would create."""
    marker = folder / "code-was-run"
    path = folder / "scorer.pt"
    torch.save({"scorer": "beta", "params": {}, "hook": _RunsCode(marker)}, path)
    return path, marker


def garbage(folder: Path, suffix: str) -> Path:
    path = folder / f"garbage{suffix}"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}" + bytes(range(256)))
    return path


LOADERS: dict[str, Callable[[Path], object]] = {
    "scorer": Scorer.load,
    "encoder": BinaryAttributeEncoder.load,
    "calibrator": Calibrator.load,
    "doublemha": load_checkpoint,
    "ge2e": load_ge2e_state,
}


def assert_one_safe_line(message: str, path: Path) -> None:
    assert str(path) in message
    assert len(message.splitlines()) == 1, message
    assert "weights_only" not in message and "trusted source" not in message


@pytest.mark.parametrize("loader", LOADERS)
def test_malicious_pt_is_refused_in_one_line(tmp_path, loader):
    path, marker = malicious_checkpoint(tmp_path)
    with pytest.raises(ModelError) as caught:
        LOADERS[loader](path)
    assert_one_safe_line(str(caught.value), path)
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
@pytest.mark.parametrize("loader", LOADERS)
def test_garbage_file_is_one_line(tmp_path, loader, suffix):
    path = garbage(tmp_path, suffix)
    with pytest.raises(ModelError) as caught:
        LOADERS[loader](path)
    assert_one_safe_line(str(caught.value), path)


@pytest.mark.slow
def test_malicious_pt_is_refused_by_score_test(tmp_path):
    path, marker = malicious_checkpoint(tmp_path)
    audio = EXAMPLES / "audio"
    result = run_balr(
        "score", "test", str(audio / "metadata.csv"), str(audio / "trials.tsv"),
        "--save-dir", str(tmp_path / "out"), f"scorer.checkpoint_path={path}",
    )  # fmt: skip
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert_one_safe_line(lines[0], path)
    assert "refused" in lines[0]
    assert not marker.exists()


def test_calibration_path_that_is_a_directory_is_one_line(tmp_path):
    with pytest.raises(ModelError, match="cannot read calibration file"):
        Calibrator.load(tmp_path)
