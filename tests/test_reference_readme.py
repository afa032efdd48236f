"""The command lines of the reference READMEs, run verbatim (paths aside) through the `balr`
entry point on bundled data, with the outputs they document.

BA-LR reference README (inria-defense/balr, "Embedding extraction" and "Binarization of
embeddings"): vectors "saved as numpy arrays in `.txt` files matching the names of the audio
file" beside it. balr writes `<stem>_emb.txt` / `<stem>_ba.txt` there by default (the
reference code writes `_emb.pkl` / `_ba.pkl` despite its README; docs/differences.md).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from balr.data import AudioDataset
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.slow  # end-to-end runs (models, CLI processes): not in `make test-fast`

README_EXTRACT = "balr extract /path/to/dataset"
README_BINARIZE = "balr binarize /path/to/dataset"
#: what the `balr` console script runs (`[project.scripts] balr = "balr.cli.main:main"`)
ENTRY_POINT = "import sys; from balr.cli.main import main; sys.argv[0] = 'balr'; main()"


def run_readme_line(line: str, **paths: Path) -> subprocess.CompletedProcess:
    """Run a README command line with its placeholder paths replaced (`/path/to/dataset`
    -> `paths['dataset']`) through the `balr` entry point."""
    words = shlex.split(line)
    assert words[0] == "balr"
    args = [str(paths.get(w.removeprefix("/path/to/"), w)) for w in words[1:]]
    return subprocess.run(
        [sys.executable, "-c", ENTRY_POINT, *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def extracted_dataset(tmp_path_factory) -> Path:
    """A copy of the bundled clips (8 flac files of 4 speakers in SPEAKER/ folders) after
    the reference README's `balr extract /path/to/dataset`."""
    dataset = tmp_path_factory.mktemp("readme") / "dataset"
    shutil.copytree(EXAMPLES / "audio", dataset)
    result = run_readme_line(README_EXTRACT, dataset=dataset)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "embedded 8, skipped 0 existing, failed 0 of 8 items" in result.stdout
    return dataset


@pytest.mark.difference("BA-extract")
def test_reference_readme_extract_writes_embeddings_beside_the_audio(extracted_dataset):
    clips = sorted(extracted_dataset.rglob("*.flac"))
    assert len(clips) == 8
    for clip in clips:
        vector = np.loadtxt(clip.with_name(f"{clip.stem}_emb.txt"))  # numpy array in .txt
        assert vector.shape == (256,)  # the default model's (GE2E) dimension
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    assert sorted(extracted_dataset.rglob("*_emb.*")) == sorted(
        c.with_name(f"{c.stem}_emb.txt") for c in clips
    )
    # the vectors are the dataset's: read back by id (the path with its extension)
    ds = AudioDataset.from_path(extracted_dataset)
    assert ds.ids[0] == "id00906/00014.flac"
    indices, embeddings = ds.stack_vectors("emb")
    assert indices.tolist() == list(range(8)) and embeddings.shape == (8, 256)


@pytest.mark.difference("BA-binarize")
def test_reference_readme_binarize_writes_ba_vectors_beside_the_audio(extracted_dataset):
    result = run_readme_line(README_BINARIZE, dataset=extracted_dataset)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "binarized 8 items; 0 already had _ba vectors" in result.stdout
    for clip in sorted(extracted_dataset.rglob("*.flac")):
        counts = np.loadtxt(clip.with_name(f"{clip.stem}_ba.txt"))
        # one row [b, 1 - b] per attribute of the shipped encoder (512 attributes)
        assert counts.shape == (512, 2)
        assert set(np.unique(counts)) <= {0.0, 1.0}
        np.testing.assert_array_equal(counts.sum(axis=1), 1.0)
    ds = AudioDataset.from_path(extracted_dataset)
    indices, vectors = ds.stack_vectors("ba")
    assert indices.tolist() == list(range(8)) and vectors.shape == (8, 512, 2)
