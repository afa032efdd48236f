"""A dataset copied with new modification times keeps its embeddings (the ledger's sha256 of
each audio file decides); a changed byte is still refused; rows without a digest as before."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
import soundfile as sf

from balr.audio import load_audio
from balr.data import AudioDataset, ledger
from balr.data.ledger import LEDGER_FILE, read_ledger
from balr.embeddings.batch import ExtractionOptions, extract_embeddings
from balr.errors import DataError
from tests.conftest import EXAMPLES
from tests.embeddings.test_batch import CountingModel

CLIPS = {"c1": "id01184/00123", "c2": "id07531/00023", "c3": "id00906/00014"}
LATER = 1_700_000_000_123_456_789  # another modification time (ns), as `cp` without -p gives


@pytest.fixture
def extracted(ge2e, tmp_path):
    """Three bundled clips (as 16-bit wav, where a changed byte is a changed sample)
    extracted into tmp_path/emb: (audio folder, records folder, the vectors by id)."""
    folder, out = tmp_path / "audio", tmp_path / "emb"
    folder.mkdir()
    for name, clip in CLIPS.items():
        wave = load_audio(EXAMPLES / "audio" / f"{clip}.flac", 16000, duration_s=4.0)
        sf.write(folder / f"{name}.wav", wave, 16000, subtype="PCM_16")
    opts = ExtractionOptions(num_workers=0)
    report = extract_embeddings(
        AudioDataset.from_path(folder, output_dir=out), ge2e, opts, progress=False
    )
    assert report.succeeded == 3
    vectors = {f"{name}.wav": np.loadtxt(out / f"{name}_emb.txt") for name in CLIPS}
    return folder, out, vectors


def recopy(path, mtime_ns: int = LATER) -> None:
    """Write the file again with the same bytes and another modification time."""
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_the_ledger_records_size_time_and_sha256_of_each_clip(extracted):
    folder, out, _ = extracted
    rows = [line.split("\t") for line in (out / LEDGER_FILE).read_text().splitlines()[1:]]
    assert len(rows) == 3
    for row in rows:
        audio = folder / row[1]
        info = audio.stat()
        sha = hashlib.sha256(audio.read_bytes()).hexdigest()
        assert row[3] == str(audio) and row[4] == f"{info.st_size}:{info.st_mtime_ns}:{sha}"


def test_copied_audio_keeps_its_vectors_and_extract_skips_them(extracted, ge2e, monkeypatch):
    folder, out, vectors = extracted
    for name in CLIPS:
        recopy(folder / f"{name}.wav")
    reader = AudioDataset.from_path(folder, output_dir=out)
    bad = []
    found, stacked = reader.stack_vectors("emb", bad=bad)
    assert bad == [] and len(found) == 3
    for index, row in zip(found, stacked, strict=True):
        np.testing.assert_allclose(row, vectors[reader.ids[index]], rtol=1e-6)
    counting = CountingModel(ge2e)
    report = extract_embeddings(reader, counting, ExtractionOptions(num_workers=0), progress=False)
    assert (report.succeeded, report.skipped, counting.items) == (0, 3, 0)
    rows = read_ledger([out], "emb")  # extract recorded the new times: no hashing from now on
    assert {row.stamp.split(":")[1] for row in rows.values()} == {str(LATER)}
    hashed = []
    monkeypatch.setattr(ledger, "content_stamp", lambda path: hashed.append(path))
    assert len(AudioDataset.from_path(folder, output_dir=out).stack_vectors("emb")[0]) == 3
    assert hashed == []


def test_one_changed_byte_of_the_same_size_is_refused(extracted, ge2e):
    folder, out, _ = extracted
    for name in CLIPS:
        recopy(folder / f"{name}.wav")
    changed = folder / "c2.wav"
    data = bytearray(changed.read_bytes())
    data[len(data) // 2] ^= 0x01
    changed.write_bytes(bytes(data))
    os.utime(changed, ns=(LATER, LATER))
    reader = AudioDataset.from_path(folder, output_dir=out)
    with pytest.raises(DataError) as error:
        reader.get_vector(reader.index_of("c2.wav"), "emb")
    assert str(error.value) == (
        f"{out / 'c2_emb.txt'}: made from {changed}, which changed since "
        "(size/modification time); extract it again"
    )
    bad = []
    assert len(reader.stack_vectors("emb", bad=bad)[0]) == 2
    assert [b.item_id for b in bad] == ["c2.wav"]
    counting = CountingModel(ge2e)
    report = extract_embeddings(reader, counting, ExtractionOptions(num_workers=0), progress=False)
    assert (report.succeeded, report.skipped, counting.items) == (1, 2, 1)
    assert len(AudioDataset.from_path(folder, output_dir=out).stack_vectors("emb")[0]) == 3


def test_rows_without_a_digest_compare_size_and_time_only(extracted):
    """Rows of balr before the digest (`SIZE:MTIME_NS`): same size and time is fresh, a new
    time alone is stale, as before."""
    folder, out, _ = extracted
    ledger = out / LEDGER_FILE
    lines = ledger.read_text().splitlines(keepends=True)
    old = [lines[0]]
    for line in lines[1:]:
        cells = line.split("\t")
        cells[4] = cells[4].rsplit(":", 1)[0]
        old.append("\t".join(cells))
    ledger.write_text("".join(old))
    reader = AudioDataset.from_path(folder, output_dir=out)
    assert len(reader.stack_vectors("emb")[0]) == 3
    recopy(folder / "c3.wav")
    bad = []
    reader = AudioDataset.from_path(folder, output_dir=out)
    assert len(reader.stack_vectors("emb", bad=bad)[0]) == 2
    assert [b.item_id for b in bad] == ["c3.wav"] and "which changed since" in bad[0].problem
