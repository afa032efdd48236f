"""Ctrl-C: extract stops within seconds and says what was saved and how to resume; binarize
and the trainers stop with one line (status 130), never a traceback."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from balr.binary_attributes.binarize import binarize_dataset
from balr.cli.main import main
from balr.data import AudioDataset, VectorStore
from balr.data.writers import StoreWriter
from balr.errors import Interrupted
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.slow  # end-to-end runs (models, CLI processes): not in `make test-fast`

FILES = 400


def _write_clips(folder: Path) -> None:
    """Many 2 s tones with a little noise (enough to take several seconds to embed)."""
    rng = np.random.default_rng(0)
    t = np.arange(32000) / 16000
    folder.mkdir()
    for i in range(FILES):
        wave = 0.3 * np.sin(2 * np.pi * (100 + 2 * i) * t) + 0.01 * rng.normal(size=t.size)
        sf.write(folder / f"spk{i % 10}_{i:04d}.wav", wave.astype(np.float32), 16000)


def _saved(folder: Path) -> int:
    return len(list(folder.rglob("*_emb.txt")))


def test_ctrl_c_on_extract_is_prompt_says_what_was_saved_and_resumes(tmp_path):
    _write_clips(tmp_path / "wavs")
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "balr.cli.main", "extract", str(tmp_path / "wavs"),
        "--save-dir", str(out), "embeddings.num_workers=2",
        "embeddings.min_speech_s=0",  # tones are not speech: this test is about Ctrl-C
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # a new session: Ctrl-C in a terminal signals the whole process group (workers too)
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while _saved(out) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "extraction ended before it could be interrupted"
    sent = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    elapsed = time.monotonic() - sent
    assert process.returncode == 130, stderr[-2000:]
    assert elapsed < 5.0, f"took {elapsed:.1f} s to stop"
    saved = _saved(out)
    assert 0 < saved < FILES
    line = next(x for x in stderr.splitlines() if x.startswith("interrupted:"))
    reported = int(re.match(r"interrupted: (\d+) embeddings saved", line).group(1))
    assert reported == saved, f"the message says {reported}, {saved} vectors are on disk"
    assert f"{saved} embeddings saved by this run to files under {out}" in line
    assert "run the same command again to resume" in line and "--force" in line
    assert "Traceback" not in stderr

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"embedded {FILES - saved}, skipped {saved} existing" in rerun.stdout
    assert _saved(out) == FILES


class _StubEncoder:
    """Binarizes 4-d embeddings into (3, 2) counts."""

    input_dim = 4
    trained_on = None  # no recorded embedding model

    def state_dict(self) -> dict:  # no weights: the ledger records the digest of none
        return {}

    def binarize(self, embeddings, batch_size, device):
        bits = (embeddings[:, :3] > 0).astype(np.int64)
        return np.stack([bits, 1 - bits], axis=-1)


def test_ctrl_c_on_binarize_closes_the_store_and_says_how_to_resume(tmp_path, monkeypatch):
    csv = EXAMPLES / "audio" / "metadata.csv"
    ds = AudioDataset.from_path(csv, output_dir=tmp_path, vector_format="store")
    ds.save_vectors("emb", range(len(ds)), np.random.default_rng(1).normal(size=(len(ds), 4)))
    put = StoreWriter.put
    calls = []

    def put_then_interrupt(self, index, vector, made=None):
        calls.append(index)
        if len(calls) == 3:
            raise KeyboardInterrupt
        put(self, index, vector, made)

    monkeypatch.setattr(StoreWriter, "put", put_then_interrupt)
    with pytest.raises(Interrupted, match="interrupted: 2 _ba vectors saved by this run to the"):
        binarize_dataset(ds, _StubEncoder())
    monkeypatch.undo()
    assert len(VectorStore.open(tmp_path / "binary_attributes")) == 2  # merged, lock released
    again = AudioDataset.from_path(csv, output_dir=tmp_path, vector_format="store")
    report = binarize_dataset(again, _StubEncoder())
    assert (report.binarized, report.already_done) == (len(ds) - 2, 2)


def test_ctrl_c_just_after_a_ba_vector_is_written_counts_it(tmp_path, monkeypatch):
    csv = EXAMPLES / "audio" / "metadata.csv"
    ds = AudioDataset.from_path(csv, output_dir=tmp_path, vector_format="store")
    ds.save_vectors("emb", range(len(ds)), np.random.default_rng(1).normal(size=(len(ds), 4)))
    put, calls = StoreWriter.put, []

    def put_then_ctrl_c(self, index, vector, made=None):
        put(self, index, vector, made)
        calls.append(index)
        if len(calls) == 3:
            signal.raise_signal(signal.SIGINT)  # after the 3rd vector, before it is counted

    monkeypatch.setattr(StoreWriter, "put", put_then_ctrl_c)
    with pytest.raises(Interrupted, match="interrupted: 3 _ba vectors saved by this run"):
        binarize_dataset(ds, _StubEncoder())
    assert len(VectorStore.open(tmp_path / "binary_attributes")) == 3


def _run_main(args: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 130
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_ctrl_c_on_binarize_command_is_one_line(tmp_path, monkeypatch, capsys):
    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("balr.binary_attributes.binarize.binarize_path", interrupted)
    line = _run_main(["binarize", str(tmp_path)], capsys)
    assert line.startswith("interrupted")


def _interrupt(*_args, **_kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_on_balr_train_names_the_run_and_how_to_resume(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        "balr.binary_attributes.trainer.labelled_embeddings", lambda path, *reading: path
    )
    monkeypatch.setattr("balr.binary_attributes.trainer.BAETrainer.fit", _interrupt)
    run = tmp_path / "run"
    line = _run_main(["train", "a.csv", "b.csv", "--save-dir", str(run), "--device", "cpu"], capsys)
    assert f"training stopped; checkpoints and logs written so far are in {run}" in line
    assert f"--save-dir {run} trainer.resume=true" in line


def test_ctrl_c_on_extractor_train_names_the_run_and_how_to_resume(tmp_path, monkeypatch, capsys):
    data = SimpleNamespace(items=[1], num_speakers=1, labels=np.ones(1))
    monkeypatch.setattr("balr.doublemha.trainer.training_set", lambda config: data)
    monkeypatch.setattr("balr.doublemha.trainer.validation_pairs", lambda config: data)
    monkeypatch.setattr("balr.doublemha.trainer.DoubleMHATrainer.fit", _interrupt)
    run = tmp_path / "run"
    line = _run_main(["extractor", "train", f"out_dir={run}", "device=cpu"], capsys)
    assert f"checkpoints and logs written so far are in {run}" in line
    assert f"out_dir={run} requeue=true" in line
