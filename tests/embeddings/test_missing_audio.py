"""An audio path listed in a CSV that is missing (or a folder) is reported with the item's id
and the path, not soundfile's "System error"."""

from __future__ import annotations

import shutil

import pytest

from balr.audio import audio_duration
from balr.data import AudioDataset
from balr.embeddings.batch import ExtractionOptions, extract_embeddings
from balr.errors import AudioError
from tests.conftest import EXAMPLES
from tests.embeddings.test_batch import read_errors

CLIP = EXAMPLES / "audio" / "id00906" / "00014.flac"


def test_missing_and_folder_paths_are_named(tmp_path):
    with pytest.raises(AudioError, match=r"gone\.wav: audio file not found"):
        audio_duration(tmp_path / "gone.wav")
    with pytest.raises(AudioError, match="is a directory, not an audio file"):
        audio_duration(tmp_path)


def test_extract_names_the_csv_id_and_the_missing_path(ge2e, tmp_path):
    shutil.copyfile(CLIP, tmp_path / "here.flac")
    (tmp_path / "folder.flac").mkdir()
    csv = tmp_path / "list.csv"
    csv.write_text("id,audio\nok,here.flac\nlost,gone/missing.flac\ndir,folder.flac\n")
    ds = AudioDataset.from_path(csv, output_dir=tmp_path / "vectors")
    errors_path = tmp_path / "extract_errors.tsv"
    report = extract_embeddings(ds, ge2e, ExtractionOptions(num_workers=0), errors_path, False)
    assert report.succeeded == 1 and len(report.failures) == 2
    errors = read_errors(errors_path)
    missing = tmp_path / "gone" / "missing.flac"
    assert errors["lost"] == f"id 'lost' of {csv}: audio file {missing} not found"
    assert (
        errors["dir"] == f"id 'dir' of {csv}: audio file {tmp_path / 'folder.flac'} is a directory"
    )
    assert not any("System error" in reason for reason in errors.values())
