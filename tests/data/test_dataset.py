"""Datasets from the bundled example's CSV (8 VoxCeleb2 clips of 4 speakers), a directory,
one file and a Kaldi dir."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from balr.data import AudioDataset
from balr.data.kaldi import read_kaldi_vectors, write_kaldi_vectors
from balr.errors import DataError
from tests.conftest import EXAMPLES

EXAMPLE_AUDIO = EXAMPLES / "audio"


@pytest.mark.difference("BA-id-csv")
def test_metadata_csv_has_8_items_of_4_speakers():
    ds = AudioDataset.from_path(EXAMPLE_AUDIO / "metadata.csv")
    assert len(ds) == 8
    assert len(set(ds.speakers)) == 4
    assert ds.source == EXAMPLE_AUDIO / "metadata.csv" and ds.root == EXAMPLE_AUDIO
    # every id is SPEAKER/UTT and its audio is SPEAKER/UTT.flac relative to the CSV
    for item in ds:
        assert item.speaker == item.id.split("/")[0]
        assert item.audio == EXAMPLE_AUDIO / f"{item.id}.flac" and item.audio.is_file()
    assert ds.index_of("id00906/00028") == 1
    with pytest.raises(DataError, match="unknown id 'id00906/99999'"):
        ds.index_of("id00906/99999")


@pytest.mark.difference("BA-id-dir", "BA-item-order")
def test_directory_scan_finds_the_same_files():
    ds = AudioDataset.from_path(EXAMPLE_AUDIO)
    assert len(ds) == 8  # the CSV, trials and attribution beside the clips are not audio
    assert ds.ids == sorted(ds.ids)
    # ids keep the extension (the reference's rule): the CSV's ids are the same paths without
    csv_ids = AudioDataset.from_path(EXAMPLE_AUDIO / "metadata.csv").ids
    assert ds.ids == [f"{i}.flac" for i in csv_ids]
    assert ds.ids[0] == "id00906/00014.flac" and ds.items[0].audio == EXAMPLE_AUDIO / ds.ids[0]
    assert all(s is None for s in ds.speakers)
    with pytest.raises(DataError, match="no audio files with extension wav"):
        AudioDataset.from_path(EXAMPLE_AUDIO, audio_formats=["wav"])


@pytest.mark.difference("BA-id-file")
def test_single_file_dataset_and_lazy_audio():
    path = EXAMPLE_AUDIO / "id00906" / "00014.flac"
    ds = AudioDataset.from_path(path)
    assert ds.ids == ["00014"] and ds.items[0].audio == path
    assert ds.load_audio(0).shape[0] == 47488  # 2.968 s at 16 kHz


def test_csv_errors(tmp_path):
    (tmp_path / "a.csv").write_text("speaker\nx\n")
    with pytest.raises(DataError, match=r"a\.csv: an 'id' column is required"):
        AudioDataset.from_path(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text("id,speaker\nu1,x\nu1,y\n")
    with pytest.raises(DataError, match="duplicate id 'u1'"):
        AudioDataset.from_path(tmp_path / "b.csv")
    with pytest.raises(DataError, match="no such file or directory"):
        AudioDataset.from_path(tmp_path / "missing.csv")


def test_csv_with_explicit_vector_paths_and_no_audio(tmp_path):
    (tmp_path / "vecs").mkdir()
    np.savetxt(tmp_path / "vecs" / "u1.txt", [0.5, -1.5, 2.0])
    np.save(tmp_path / "vecs" / "u1_bits.npy", np.array([1, 0, 1]))
    (tmp_path / "d.csv").write_text(
        "id,embedding,binary_attributes,speaker\nu1,vecs/u1.txt,vecs/u1_bits.npy,s1\nu2,,,s2\n"
    )
    ds = AudioDataset.from_path(tmp_path / "d.csv")
    np.testing.assert_allclose(ds.get_vector(0, "emb"), [0.5, -1.5, 2.0])
    # a 1-D bit vector becomes (K, 2) counts [b, 1 - b]
    np.testing.assert_array_equal(ds.get_vector(0, "ba"), [[1, 0], [0, 1], [1, 0]])
    assert ds.get_vector(1, "emb") is None
    with pytest.raises(DataError, match="item 'u2' has no audio file"):
        ds.load_audio(1)


def test_kaldi_data_dir_and_ark_round_trip(tmp_path):
    wavs = sorted(EXAMPLE_AUDIO.glob("id0*/*.flac"))[:4]
    (tmp_path / "wav.scp").write_text("".join(f"utt{i} {p}\n" for i, p in enumerate(wavs)))
    (tmp_path / "utt2spk").write_text(
        "".join(f"utt{i} {p.parent.name}\n" for i, p in enumerate(wavs))
    )
    ds = AudioDataset.from_path(tmp_path)
    assert ds.ids == ["utt0", "utt1", "utt2", "utt3"]
    assert ds.speakers == [p.parent.name for p in wavs]
    vectors = np.random.default_rng(1).normal(size=(4, 16)).astype(np.float32)
    scp = write_kaldi_vectors(tmp_path / "emb.ark", ds.ids, vectors)
    loaded = read_kaldi_vectors(scp)
    assert list(loaded) == ds.ids
    np.testing.assert_array_equal(np.stack(list(loaded.values())), vectors)
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind
    (tmp_path / "wav.scp").write_text("utt0 sox a.wav -t wav - |\n")
    with pytest.raises(DataError, match=r"wav\.scp:1: piped command for 'utt0'"):
        AudioDataset.from_path(tmp_path)


def test_sidecars_beside_audio_are_found(tmp_path):
    for p in sorted(EXAMPLE_AUDIO.glob("id0*/*.flac"))[:3]:
        shutil.copy(p, tmp_path / p.name)
    ds = AudioDataset.from_path(tmp_path)
    ds.save_vectors("emb", [0, 1], [np.ones(4), np.zeros(4)])
    assert ds.ids[0] == "00014.flac"  # the id keeps the extension, the file name does not
    assert (tmp_path / "00014_emb.txt").is_file()
    again = AudioDataset.from_path(tmp_path)
    assert again.has_vector(0, "emb") and again.has_vector(1, "emb")
    assert not again.has_vector(2, "emb")
    indices, stacked = again.stack_vectors("emb")
    assert indices.tolist() == [0, 1]
    np.testing.assert_array_equal(stacked, [[1, 1, 1, 1], [0, 0, 0, 0]])
