"""Recordings that share a file name in different folders (`spk1/00001.flac`,
`spk2/00001.flac`; VoxForge's `SESSION/wav/a0001.wav`) through `balr extract` -> `binarize`
-> `score test` on the bundled clips: each gets its own vectors, and every trial is scored
with its own recordings' vectors, exactly as in the bundled layout. balr 0.1 wrote one
`00001_emb.txt` for both and scored the wrong vector without a word."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from tests.conftest import EXAMPLES

pytestmark = pytest.mark.slow  # end-to-end runs (models, CLI processes): not in `make test-fast`

CLIPS = EXAMPLES / "audio"
#: new path -> bundled clip id (its speaker is the new path's first folder's speaker)
LAYOUT = {
    "spk1/00001.flac": "id00906/00014",
    "spk1/00002.flac": "id00906/00028",
    "spk2/00001.flac": "id07531/00023",
    "spk2/00002.flac": "id07531/00142",
    "anna-20100101-abc/wav/a0001.wav": "id01184/00123",
    "anna-20100102-def/wav/a0001.wav": "id01184/00133",
    "bob-20100101-ghi/wav/a0001.wav": "id03184/00022",
}


def balr(*args: str | Path) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "balr.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result


def copy_clip(clip_id: str, target: Path) -> None:
    """The bundled clip at `target`; a `.wav` target gets the same 16-bit samples."""
    target.parent.mkdir(parents=True, exist_ok=True)
    samples, rate = sf.read(CLIPS / f"{clip_id}.flac", dtype="int16")
    sf.write(target, samples, rate, subtype="PCM_16")


def write_trials(path: Path, ids: list[str]) -> None:
    rows = [f"{a}\t{b}" for a, b in itertools.combinations(ids, 2)]
    path.write_text("enrollment\ttest\n" + "\n".join(rows) + "\n")


def run_pipeline(dataset: Path, scored: Path, trials: Path, vectors: Path, out: Path) -> None:
    """extract + binarize `dataset` under `vectors`, score `trials` of `scored` into `out`."""
    for command in (("extract", dataset), ("binarize", dataset)):
        result = balr(*command, "--save-dir", vectors)
        assert result.returncode == 0, result.stderr[-2000:]
    result = balr("score", "test", scored, trials, "--vectors-dir", vectors, "--save-dir", out)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.difference("BA-extract-save-dir")
def test_same_file_names_in_other_folders_keep_their_own_vectors(tmp_path):
    data = tmp_path / "data"
    for name, clip_id in LAYOUT.items():
        copy_clip(clip_id, data / name)
    speakers = {clip_id: clip_id.split("/")[0] for clip_id in LAYOUT.values()}
    # without an id column the ids are the audio cells: the directory's ids
    rows = [f"{name},{speakers[clip_id]}" for name, clip_id in LAYOUT.items()]
    (data / "data.csv").write_text("audio,speaker\n" + "\n".join(rows) + "\n")
    write_trials(tmp_path / "trials.tsv", list(LAYOUT))
    write_trials(tmp_path / "bundled_trials.tsv", list(LAYOUT.values()))

    # the directory is extracted and binarized; its CSV is scored from the same vectors
    run_pipeline(data, data / "data.csv", tmp_path / "trials.tsv", tmp_path / "vec", tmp_path / "s")
    bundled = CLIPS / "metadata.csv"
    run_pipeline(
        bundled, bundled, tmp_path / "bundled_trials.tsv", tmp_path / "ref", tmp_path / "ref_s"
    )

    for name, clip_id in LAYOUT.items():
        stem = name.rsplit(".", 1)[0]
        for kind in ("emb", "ba"):
            ours = np.loadtxt(tmp_path / "vec" / f"{stem}_{kind}.txt")
            np.testing.assert_allclose(
                ours, np.loadtxt(tmp_path / "ref" / f"{clip_id}_{kind}.txt"), atol=1e-6
            )
    first, second = (np.loadtxt(tmp_path / "vec" / f"spk{i}/00001_emb.txt") for i in (1, 2))
    assert not np.allclose(first, second)
    assert not list(data.rglob("*_emb.txt"))  # --save-dir: nothing beside the audio

    scores = pd.read_csv(tmp_path / "s" / "scores.csv", sep="\t")
    reference = pd.read_csv(tmp_path / "ref_s" / "scores.csv", sep="\t")
    assert len(scores) == 21 and scores["enrollment"].iloc[0] == "spk1/00001.flac"
    np.testing.assert_allclose(scores["raw_score"], reference["raw_score"], rtol=1e-6)
    np.testing.assert_allclose(scores["scores"], reference["scores"], rtol=1e-6)
    # the two 00001.flac recordings are different speakers: scored as such
    pair = (scores["enrollment"] == "spk1/00001.flac") & (scores["test"] == "spk2/00001.flac")
    same = (scores["enrollment"] == "spk1/00001.flac") & (scores["test"] == "spk1/00002.flac")
    assert scores.loc[pair, "scores"].item() < 0 < scores.loc[same, "scores"].item()


def test_two_recordings_with_one_vector_file_are_refused_before_any_work(tmp_path):
    copy_clip("id00906/00014", tmp_path / "data" / "spk1" / "a0001.wav")
    copy_clip("id00906/00028", tmp_path / "data" / "spk1" / "a0001.flac")
    for command in ("extract", "binarize"):
        result = balr(command, tmp_path / "data", "--save-dir", tmp_path / "vec")
        assert result.returncode == 1
        lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert (
            "items 'spk1/a0001.flac' (" in lines[0]
            and "spk1/a0001.flac) and 'spk1/a0001.wav' (" in lines[0]
            # spk1/ holds every recording: the tree under --save-dir starts there
            and f"would share the vector file {tmp_path / 'vec' / 'a0001_emb.txt'}" in lines[0]
        ), lines[0]
    assert not (tmp_path / "vec").exists() or not list((tmp_path / "vec").rglob("*"))
