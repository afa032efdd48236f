"""Recordings without usable speech: measured, refused by `extract` and `compare`, and the net
speech duration of the others stored and shown."""

from __future__ import annotations

import csv
import hashlib
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from balr.audio import load_audio
from balr.compare import ComparisonPipeline, compare_files
from balr.data import AudioDataset
from balr.data.provenance import EmbeddingProvenance, dataset_provenance
from balr.data.speech import find_speech_durations, read_speech_durations
from balr.embeddings.extract import extract_dataset_embeddings
from balr.embeddings.vad import measure_speech
from balr.errors import AudioError
from tests.conftest import EXAMPLES, extraction_run

pytestmark = pytest.mark.slow  # end-to-end runs (models, CLI processes): not in `make test-fast`

SR = 16000
CLIPS = sorted((EXAMPLES / "audio").glob("*/*.flac"))
REAL = EXAMPLES / "audio" / "id01184" / "00133.flac"  # 5.3 s, about 4.6 s of speech


def non_speech() -> dict[str, np.ndarray]:
    """2 s of signals without speech and the word the refusal reason must contain."""
    t = np.arange(2 * SR) / SR
    noise = np.random.default_rng(0).standard_normal(2 * SR)
    return {
        "silence": np.zeros(2 * SR),
        "constant": np.full(2 * SR, 0.3),
        "steady": noise * 1e-3,  # low white noise, -60 dBFS
        "tone": 0.5 * np.sin(2 * np.pi * 440 * t),
        "clipping": np.sign(np.sin(2 * np.pi * 440 * t)),  # a clipped square wave
    }


@pytest.mark.parametrize("kind", list(non_speech()))
def test_non_speech_has_no_speech_and_a_reason(kind):
    measure = measure_speech(non_speech()[kind].astype(np.float32), SR)
    assert measure.speech_s == 0.0
    word = {"silence": "digital silence", "tone": "steady", "clipping": "clipping"}
    assert word.get(kind, kind) in measure.problem


def test_real_clips_have_plausible_speech_durations():
    for path in CLIPS:
        wave = load_audio(path, SR)
        measure = measure_speech(wave, SR)
        assert measure.problem is None, path
        # a VoxCeleb2 clip is mostly speech: at least 80% of it, never more than all of it
        assert 0.8 * len(wave) / SR <= measure.speech_s <= len(wave) / SR, path


@pytest.fixture
def folder(tmp_path):
    """A silent 2 s wav and a real clip."""
    audio = tmp_path / "audio"
    audio.mkdir()
    sf.write(audio / "silent.wav", np.zeros(2 * SR, np.float32), SR)
    sf.write(audio / "real.wav", load_audio(REAL, SR), SR)
    return audio


def read_tsv(path) -> dict[str, dict]:
    with open(path, newline="") as handle:
        return {row["id"]: row for row in csv.DictReader(handle, delimiter="\t")}


def test_extract_refuses_silence_and_stores_speech_durations(folder, tmp_path):
    out = tmp_path / "emb"
    report = extract_dataset_embeddings(folder, extraction_run(out))
    assert (report.succeeded, len(report.failures)) == (1, 1)
    assert "failed 1 of 2" in report.summary()
    errors = read_tsv(out / "extract_errors.tsv")  # ids of a directory keep the extension
    assert list(errors) == ["silent.wav"]
    assert errors["silent.wav"]["path"].endswith("silent.wav")
    assert "no usable speech: digital silence" in errors["silent.wav"]["reason"]
    assert not (out / "silent_emb.txt").exists() and (out / "real_emb.txt").exists()
    durations = read_tsv(out / "speech_durations.tsv")
    assert list(durations) == ["real.wav"]
    assert 3.5 < float(durations["real.wav"]["speech_s"]) <= 5.34
    assert report.speech_seconds == {"real.wav": float(durations["real.wav"]["speech_s"])}


def test_extract_honours_the_configured_threshold(folder, tmp_path):
    strict = extract_dataset_embeddings(
        folder, extraction_run(tmp_path / "strict", "embeddings.min_speech_s=8")
    )
    assert strict.succeeded == 0
    reason = read_tsv(tmp_path / "strict" / "extract_errors.tsv")["real.wav"]["reason"]
    assert re.search(r"too little speech \(4\.\d+ s of speech, minimum 8 s", reason)
    off = extract_dataset_embeddings(
        folder, extraction_run(tmp_path / "off", "embeddings.min_speech_s=0")
    )
    assert (off.succeeded, off.failures) == (2, [])
    assert off.speech_seconds["silent.wav"] == 0.0


def test_extract_resumes_and_keeps_the_speech_durations(folder, tmp_path):
    out = tmp_path / "emb"
    extract_dataset_embeddings(folder / "real.wav", extraction_run(out))
    sf.write(folder / "real2.wav", load_audio(REAL, SR)[: 3 * SR], SR)
    again = extract_dataset_embeddings(folder, extraction_run(out))
    assert (again.succeeded, again.skipped) == (1, 1)
    durations = read_speech_durations(out / "speech_durations.tsv")
    # a single file's id is its stem, a directory's keeps the extension (the reference's rule)
    assert set(durations) == {"real", "real2.wav"} and durations["real2.wav"] < durations["real"]


@pytest.fixture(scope="module")
def shipped(ge2e):
    return ComparisonPipeline.from_files(ge2e)


def test_compare_refuses_a_side_without_speech(folder, shipped):
    silent = folder / "silent.wav"
    with pytest.raises(AudioError, match=r"silent\.wav: no usable speech: digital silence"):
        shipped.compare([silent], [silent])
    with pytest.raises(AudioError, match=r"silent\.wav: no usable speech"):
        shipped.compare([folder / "real.wav"], [silent])


def test_compare_shows_net_speech_in_terminal_and_report(folder, tmp_path, capsys):
    from balr.cli.compare import print_result

    comparison = compare_files([REAL], [EXAMPLES / "audio" / "id01184" / "00123.flac"])
    enroll, test = comparison.result.enrollment[0], comparison.result.test[0]
    assert 3.5 < enroll.speech_s <= enroll.duration_s
    assert 2.0 < test.speech_s <= test.duration_s
    print_result(comparison.result, 3)
    printed = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert f"00133.flac (5.3 s, {enroll.speech_s:.1f} s net speech)" in printed
    page = comparison.write_report(tmp_path / "r.html", 3).read_text()
    assert "<th>net speech</th>" in page and f"<td>{enroll.speech_s:.2f} s</td>" in page


def test_a_second_extraction_into_the_same_folder_is_refused(folder, tmp_path):
    """Two extractions writing one folder would overwrite each other's speech_durations.tsv
    and extract_errors.tsv: the second is refused while the first holds the folder."""
    from balr.errors import DataError

    out = tmp_path / "emb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_SPEECH_LOG, str(out / "speech_durations.tsv")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(DataError, match=f"{out}: another balr process \\(pid {holder.pid}\\)"):
            extract_dataset_embeddings(folder, extraction_run(out))
    finally:
        holder.kill()
        holder.wait()
    report = extract_dataset_embeddings(folder, extraction_run(out))
    assert report.succeeded == 1


HOLD_SPEECH_LOG = """
import sys, time
from pathlib import Path
from balr.data.speech import SpeechLog
log = SpeechLog(Path(sys.argv[1]))
print("holding", flush=True)
time.sleep(60)
"""


def test_without_save_dir_only_vectors_go_beside_the_audio(folder):
    """Issue 20: `extract` without --save-dir wrote `embedding_model.json`,
    `speech_durations.tsv` (and its `.lock`) beside the user's audio. The reference writes
    only the vectors there; balr's run records go to one hidden `.balr/` folder, where
    `binarize` and `score` find them."""
    report = extract_dataset_embeddings(folder, extraction_run(None))
    assert report.succeeded == 1
    assert sorted(p.name for p in folder.iterdir()) == [
        ".balr",
        "real.wav",
        "real_emb.txt",
        "silent.wav",
    ]
    records = folder / ".balr"
    assert sorted(p.name for p in records.iterdir()) == [
        "channel_profiles.tsv",
        "embedding_model.json",
        "extract_errors.tsv",
        "speech_durations.tsv",
        "vectors_ledger.tsv",
    ]
    assert report.speech_path == records / "speech_durations.tsv"
    ds = AudioDataset.from_path(folder)
    assert dataset_provenance(ds) == (EmbeddingProvenance("ge2e", 256), records)
    durations = find_speech_durations(folder)
    assert list(durations) == ["real.wav"] and 4.0 < durations["real.wav"] < 5.3
    ledger = (records / "vectors_ledger.tsv").read_text().splitlines()
    assert ledger[0].split("\t") == [
        "kind",
        "id",
        "vector",
        "source",
        "stamp",
        "model",
        "digest",
        "written",
    ]
    row = ledger[1].split("\t")
    assert row[:4] == ["emb", "real.wav", str(folder / "real_emb.txt"), str(folder / "real.wav")]
    info = (folder / "real.wav").stat()
    sha = hashlib.sha256((folder / "real.wav").read_bytes()).hexdigest()
    assert row[4] == f"{info.st_size}:{info.st_mtime_ns}:{sha}" and row[5].startswith("ge2e:")
