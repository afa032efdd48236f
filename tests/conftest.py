"""Shared fixtures: paths to the real speech in ../shared/data (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
VOXCELEB2 = SHARED_DATA / "voxceleb" / "voxceleb2"
VOXCELEB1 = SHARED_DATA / "voxceleb" / "voxceleb1"
LIBRISPEECH = SHARED_DATA / "librispeech-train-clean-100-1utt"
EXAMPLES = REPO_ROOT / "examples"


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
