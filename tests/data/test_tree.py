"""One helper mirrors the audio tree (vectors under --save-dir, DoubleMHA features) and
finds two inputs that would share one output file."""

from pathlib import Path

import pytest

from balr.data.tree import common_folder, mirrored_path, shared_paths


def test_common_folder_is_the_deepest_holding_every_file(tmp_path):
    files = [tmp_path / "a" / "x" / "1.wav", tmp_path / "a" / "y" / "2.wav"]
    assert common_folder(files, "data.csv") == tmp_path / "a"
    assert common_folder(files, "data.csv", also=[tmp_path / "b"]) == tmp_path
    assert common_folder([tmp_path / "a" / ".." / "c" / "3.wav"], "data.csv") == tmp_path / "c"
    assert common_folder([], "data.csv") is None


def test_mirrored_path_keeps_the_tree_below_its_root(tmp_path):
    out = Path("/out")
    audio = tmp_path / "spk1" / "rec.flac"
    assert mirrored_path(audio, tmp_path, out) == out / "spk1" / "rec.flac"
    with pytest.raises(ValueError, match="is outside"):
        mirrored_path(audio, tmp_path / "spk2", out)


def test_shared_paths_names_the_first_owner_of_each_repeated_path():
    paths = ["/v/a_emb.txt", "/v/b_emb.txt", "/v/a_emb.txt", "/v/b_emb.txt", "/v/a_emb.txt"]
    assert list(shared_paths(paths)) == [
        (0, 2, "/v/a_emb.txt"),
        (1, 3, "/v/b_emb.txt"),
        (0, 4, "/v/a_emb.txt"),
    ]
