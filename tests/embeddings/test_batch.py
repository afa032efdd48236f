"""Batched extraction: error report, resume, interruption, long recordings, torchrun shards."""

from __future__ import annotations

import copy
import csv
import shutil
import signal
import tracemalloc

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from balr.audio import load_audio
from balr.data import AudioDataset
from balr.data.writers import SidecarWriter
from balr.embeddings.batch import ExtractionOptions, extract_embeddings
from balr.errors import Interrupted
from tests.conftest import EXAMPLES, extraction_run

pytestmark = pytest.mark.slow  # end-to-end runs (models, CLI processes): not in `make test-fast`

SR = 16000
GOOD = ["a1", "a2", "b1", "b2"]
CLIPS = EXAMPLES / "audio"


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """4 real 3 s clips (2 speakers), a corrupt file, an empty file and a 0.2 s clip."""
    folder = tmp_path_factory.mktemp("clips")
    names = ["id01184/00123", "id01184/00133", "id07531/00023", "id07531/00142"]  # >= 3 s
    paths = [CLIPS / f"{name}.flac" for name in names]
    for name, path in zip(GOOD, paths, strict=True):
        sf.write(folder / f"{name}.wav", load_audio(path, SR, duration_s=3.0), SR)
    sf.write(folder / "short.wav", load_audio(paths[0], SR, duration_s=0.2), SR)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00not really a wave file")
    (folder / "empty.flac").write_bytes(b"")
    return folder


def read_errors(path) -> dict[str, str]:
    with open(path, newline="") as handle:
        return {row["id"]: row["reason"] for row in csv.DictReader(handle, delimiter="\t")}


class CountingModel(torch.nn.Module):
    """Wraps a model, counts embedded items and can interrupt after `stop_after` calls."""

    def __init__(self, model, stop_after: int | None = None):
        super().__init__()
        self.model, self.stop_after, self.calls, self.items = model, stop_after, 0, 0
        self.name, self.sample_rate = model.name, model.sample_rate
        self.normalized, self.min_samples = model.normalized, model.min_samples

    @property
    def device(self):
        return self.model.device

    def embed(self, waves, lengths):
        if self.stop_after is not None and self.calls >= self.stop_after:
            raise KeyboardInterrupt
        self.calls += 1
        self.items += len(waves)
        return self.model.embed(waves, lengths)


def test_bad_files_are_reported_and_the_rest_succeed(clips, ge2e, tmp_path):
    ds = AudioDataset.from_path(clips, output_dir=tmp_path)
    opts = ExtractionOptions(num_workers=2, batch_size=3)
    report = extract_embeddings(ds, ge2e, opts, tmp_path / "extract_errors.tsv", progress=False)
    assert report.succeeded == 4 and report.skipped == 0
    errors = read_errors(tmp_path / "extract_errors.tsv")
    # directory ids keep the extension (the reference's rule)
    assert set(errors) == {"corrupt.wav", "empty.flac", "short.wav"}
    assert "empty" in errors["empty.flac"] and "too short" in errors["short.wav"]
    assert "cannot read" in errors["corrupt.wav"]
    for name in GOOD:  # each saved vector is the model's embedding of that file alone
        wave = load_audio(clips / f"{name}.wav", SR)
        expected = ge2e.embed(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))[0]
        saved = np.loadtxt(tmp_path / f"{name}_emb.txt")
        assert saved.shape == (256,)
        assert np.allclose(saved, expected.numpy(), atol=1e-4)
    assert report.audio_seconds == pytest.approx(12.0, abs=0.01)  # 4 clips x 3 s


def test_second_run_skips_existing_and_force_recomputes(clips, ge2e, tmp_path):
    opts = ExtractionOptions(num_workers=0)
    ds = AudioDataset.from_path(clips, output_dir=tmp_path)
    extract_embeddings(ds, ge2e, opts, progress=False)
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*_emb.txt")}
    counting = CountingModel(ge2e)
    again = extract_embeddings(ds, counting, opts, progress=False)
    assert (again.succeeded, again.skipped, counting.items) == (0, 4, 0)
    assert stamps == {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*_emb.txt")}
    forced = extract_embeddings(ds, counting, ExtractionOptions(num_workers=0, force=True))
    assert forced.succeeded == 4 and counting.items == 4


def test_saved_nan_embedding_is_extracted_again_not_skipped(clips, ge2e, tmp_path, caplog):
    opts = ExtractionOptions(num_workers=0)
    ds = AudioDataset.from_path(clips, output_dir=tmp_path)
    extract_embeddings(ds, ge2e, opts, progress=False)
    np.savetxt(tmp_path / "a2_emb.txt", np.full(256, np.nan))
    counting = CountingModel(ge2e)
    again = extract_embeddings(ds, counting, opts, progress=False)
    assert (again.succeeded, again.skipped, counting.items) == (1, 3, 1)
    assert "a2_emb.txt: 256 non-finite values (NaN/inf)" in caplog.text
    assert np.isfinite(np.loadtxt(tmp_path / "a2_emb.txt")).all()


def test_interrupted_run_resumes_without_recomputing(clips, ge2e, tmp_path):
    ds = AudioDataset.from_path(clips, output_dir=tmp_path)
    opts = ExtractionOptions(num_workers=0, batch_size=2, bucket_batches=1)
    with pytest.raises(KeyboardInterrupt):
        extract_embeddings(ds, CountingModel(ge2e, stop_after=1), opts, progress=False)
    assert len(list(tmp_path.glob("*_emb.txt"))) == 2  # the first batch was saved
    assert not list(tmp_path.glob(".*tmp"))  # and no half-written file is left
    counting = CountingModel(ge2e)
    report = extract_embeddings(ds, counting, opts, progress=False)
    assert (report.succeeded, report.skipped, counting.items) == (2, 2, 2)


def test_ctrl_c_just_after_a_vector_is_written_counts_it(clips, ge2e, tmp_path, monkeypatch):
    """Ctrl-C landing after the 2nd vector file is renamed into place, before it is counted:
    the message still names every vector on disk (it said 1 of 2 before)."""
    put, calls = SidecarWriter.put, []

    def put_then_ctrl_c(self, index, vector, made_from=None):
        put(self, index, vector, made_from)
        calls.append(index)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(SidecarWriter, "put", put_then_ctrl_c)
    ds = AudioDataset.from_path(clips, output_dir=tmp_path)
    opts = ExtractionOptions(num_workers=0, batch_size=1, bucket_batches=1)
    with pytest.raises(Interrupted) as stopped:
        extract_embeddings(ds, ge2e, opts, progress=False)
    saved = len(list(tmp_path.glob("*_emb.txt")))
    assert saved == len(calls) == 2
    assert f"interrupted: {saved} embeddings saved by this run" in str(stopped.value)


@pytest.mark.parametrize("vector_format", ["txt", "store"])
def test_no_lock_file_survives_a_run_or_an_interrupt(clips, ge2e, tmp_path, vector_format):
    ds = AudioDataset.from_path(clips, output_dir=tmp_path, vector_format=vector_format)
    opts = ExtractionOptions(num_workers=0, batch_size=2, bucket_batches=1)
    speech = tmp_path / "speech_durations.tsv"
    with pytest.raises(Interrupted):
        model = CountingModel(ge2e, stop_after=1)
        extract_embeddings(ds, model, opts, progress=False, speech_path=speech)
    assert sorted(p.name for p in tmp_path.glob("*.lock")) == []
    report = extract_embeddings(ds, ge2e, opts, progress=False, speech_path=speech)
    assert (report.succeeded, report.skipped) == (2, 2)
    assert sorted(p.name for p in tmp_path.rglob("*.lock")) == []


def test_long_recording_is_windowed_with_bounded_memory(ge2e, tmp_path):
    clip = load_audio(CLIPS / "id00906" / "00028.flac", SR, duration_s=6.0)
    wave = np.tile(clip, 15)  # 90 s of real speech
    sf.write(tmp_path / "long.wav", wave, SR, subtype="PCM_16")
    full_decode_bytes = wave.size * 4  # 5.76 MB as float32
    ds = AudioDataset.from_path(tmp_path / "long.wav", output_dir=tmp_path / "out")
    opts = ExtractionOptions(
        num_workers=0, max_duration_s=20, window_s=10, max_batch_seconds=10, bucket_batches=1
    )
    tracemalloc.start()
    report = extract_embeddings(ds, ge2e, opts, progress=False)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert report.succeeded == 1 and report.audio_seconds == pytest.approx(90, abs=0.1)
    print(f"peak traced memory {peak / 1e6:.2f} MB")
    # a 10 s window is 0.64 MB; at most two are alive (one decoding, one just embedded)
    assert peak < full_decode_bytes / 3
    saved = np.loadtxt(tmp_path / "out" / "long_emb.txt")
    stored = load_audio(tmp_path / "long.wav", SR)
    whole = ge2e.embed(torch.from_numpy(stored)[None], torch.tensor([len(stored)]))[0].numpy()
    assert np.linalg.norm(saved) == pytest.approx(1.0, abs=1e-5)
    assert float(saved @ whole) > 0.99


def test_cli_shards_under_torchrun_and_exits_nonzero_when_nothing_succeeds(
    clips, tmp_path, monkeypatch
):
    from balr.cli.main import app

    runner = CliRunner()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["extract", str(clips), "--save-dir", str(out), "embeddings.num_workers=0"]
    )
    assert result.exit_code == 0, result.output
    ds = AudioDataset.from_path(clips, output_dir=out)
    has = [ds.has_vector(i, "emb") for i in range(len(ds))]
    mine = [i for i in range(len(ds)) if i % 2 == 1]
    good = {i for i, item in enumerate(ds.items) if item.id.removesuffix(".wav") in GOOD}
    assert [i for i, h in enumerate(has) if h] == sorted(good & set(mine))
    assert (out / "extract_errors.rank1.tsv").is_file()

    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    bad_only = tmp_path / "bad"
    bad_only.mkdir()
    (bad_only / "x.wav").write_bytes(b"garbage")
    result = runner.invoke(app, ["extract", str(bad_only), "embeddings.num_workers=0"])
    assert result.exit_code == 1
    assert set(read_errors(bad_only / ".balr" / "extract_errors.tsv")) == {"x.wav"}


def test_dataset_job_embeds_the_examples_with_the_default_model(tmp_path):
    from balr.defaults import EMBEDDING_MODEL
    from balr.embeddings.extract import extract_dataset_embeddings

    report = extract_dataset_embeddings(CLIPS / "metadata.csv", extraction_run(tmp_path))
    assert (report.model, report.total, report.succeeded, report.failures) == (
        EMBEDDING_MODEL,
        8,
        8,
        [],
    )
    assert report.errors_path == tmp_path / "extract_errors.tsv"
    assert not report.errors_path.exists()  # no failure, no report file
    assert len(list(tmp_path.glob("*/*_emb.txt"))) == 8
    again = extract_dataset_embeddings(CLIPS / "metadata.csv", extraction_run(tmp_path))
    assert (again.succeeded, again.skipped) == (0, 8)


@pytest.mark.difference("BA-extract-force", "BA-extract-save-output")
def test_cli_reference_options_force_save_output_root_dir(clips, tmp_path):
    """--no-force skips existing embeddings, --force redoes them, --no-save-output computes
    and writes nothing, --root-dir is where a CSV's relative audio paths start."""
    from balr.cli.main import app

    runner = CliRunner()
    csv = tmp_path / "lists" / "two.csv"
    csv.parent.mkdir()
    csv.write_text("id,audio\na1,a1.wav\nb1,b1.wav\n")
    out = tmp_path / "out"
    base = ["extract", str(csv), "--root-dir", str(clips), "--save-dir", str(out)]
    base.append("embeddings.num_workers=0")

    result = runner.invoke(app, [*base, "--no-save-output"])
    assert result.exit_code == 0, result.output
    assert "embedded 2, skipped 0 existing, failed 0 of 2" in result.output
    assert "nothing was written" in result.output and not out.exists()
    result = runner.invoke(app, [*base, "save_output=false"])  # the reference's key
    assert "embedded 2" in result.output and not out.exists()

    result = runner.invoke(app, base)
    assert "embedded 2, skipped 0 existing" in result.output
    assert sorted(p.name for p in out.rglob("*_emb.txt")) == ["a1_emb.txt", "b1_emb.txt"]
    assert "embedded 0, skipped 2 existing" in runner.invoke(app, [*base, "--no-force"]).output
    assert "embedded 2, skipped 0 existing" in runner.invoke(app, [*base, "--force"]).output

    result = runner.invoke(app, ["extract", str(csv), "embeddings.num_workers=0"])
    assert "failed 2 of 2" in result.output  # a1.wav is not beside the CSV


def test_changed_audio_is_refused_then_embedded_again_and_force_removes_unusable(
    clips, ge2e, tmp_path
):
    """Each embedding records its audio's size and modification time and the model's weights
    (`vectors_ledger.tsv`): a replaced recording's old embedding is refused, then made again;
    `--force` over a recording that no longer decodes removes its old embedding."""
    folder, out = tmp_path / "audio", tmp_path / "emb"
    folder.mkdir()
    for name in ("a1", "a2", "b1"):
        shutil.copy(clips / f"{name}.wav", folder)
    opts = ExtractionOptions(num_workers=0)
    extract_embeddings(AudioDataset.from_path(folder, output_dir=out), ge2e, opts, progress=False)
    before = np.loadtxt(out / "a1_emb.txt")
    shutil.copy(clips / "b2.wav", folder / "a1.wav")  # the recording is replaced
    reader = AudioDataset.from_path(folder, output_dir=out)
    bad = []
    assert len(reader.stack_vectors("emb", bad=bad)[0]) == 2
    assert [b.item_id for b in bad] == ["a1.wav"]
    assert f"made from {folder / 'a1.wav'}, which changed since" in bad[0].problem
    counting = CountingModel(ge2e)
    again = extract_embeddings(reader, counting, opts, progress=False)
    assert (again.succeeded, again.skipped, counting.items) == (1, 2, 1)
    assert not np.allclose(np.loadtxt(out / "a1_emb.txt"), before)
    assert len(AudioDataset.from_path(folder, output_dir=out).stack_vectors("emb")[0]) == 3
    (folder / "b1.wav").write_bytes(b"RIFF\x00\x00no longer a wave file")
    forced = ExtractionOptions(num_workers=0, force=True)
    report = extract_embeddings(
        AudioDataset.from_path(folder, output_dir=out), ge2e, forced, progress=False
    )
    assert [f[0] for f in report.failures] == ["b1.wav"]
    assert not (out / "b1_emb.txt").exists() and (out / "a2_emb.txt").exists()


def test_embeddings_of_other_weights_are_made_again(clips, ge2e, tmp_path, caplog):
    folder = tmp_path / "audio"
    folder.mkdir()
    shutil.copy(clips / "a1.wav", folder)
    opts = ExtractionOptions(num_workers=0)
    ds = AudioDataset.from_path(folder, output_dir=tmp_path / "emb")
    extract_embeddings(ds, ge2e, opts, progress=False)
    other = copy.deepcopy(ge2e)
    with torch.no_grad():
        next(other.parameters()).add_(0.01)
    counting = CountingModel(other)
    assert extract_embeddings(ds, counting, opts, progress=False).succeeded == 1
    assert "extracting again 1 embeddings made by another model than ge2e:" in caplog.text
