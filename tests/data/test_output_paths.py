"""Where vectors go (beside the audio, or under --save-dir mirroring the tree below the
deepest folder holding every item's audio), the refusal of two items sharing a vector file
or an id, and the reference library's id rule. Paths only: the files need not be audio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from balr.data import AudioDataset
from balr.data.trials import load_trials
from balr.errors import DataError, TrialsError
from tests.conftest import EXAMPLES

LAYOUT = ("spk1/00001.flac", "spk2/00001.flac", "anna-20100101-abc/wav/a0001.wav")


def make_files(root: Path, names: tuple[str, ...] | list[str]) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")


def test_directory_ids_keep_the_extension_and_are_sorted(tmp_path):
    make_files(tmp_path, [*LAYOUT, "b.WAV", "a.b.wav", "notes.txt"])
    ds = AudioDataset.from_path(tmp_path)
    # relative path with extension, `/`-separated; the extension matched in any case
    assert ds.ids == sorted(["a.b.wav", "anna-20100101-abc/wav/a0001.wav", "b.WAV", *LAYOUT[:2]])
    assert ds.items[ds.index_of("b.WAV")].audio == tmp_path / "b.WAV"
    assert AudioDataset.from_path(tmp_path / "spk1" / "00001.flac").ids == ["00001"]  # stem


def test_csv_ids_as_written_and_sorted(tmp_path):
    make_files(tmp_path, LAYOUT)
    (tmp_path / "with_id.csv").write_text("id,audio\n010,spk2/00001.flac\n007,spk1/00001.flac\n")
    assert AudioDataset.from_path(tmp_path / "with_id.csv").ids == ["007", "010"]  # not 7, 10
    (tmp_path / "no_id.csv").write_text("audio,speaker\nspk2/00001.flac,b\n ./spk1/00001.flac,a\n")
    ds = AudioDataset.from_path(tmp_path / "no_id.csv")
    # the audio cell as written (spaces around it dropped), before it is joined to the folder
    assert ds.ids == ["./spk1/00001.flac", "spk2/00001.flac"]
    assert ds.speakers == ["a", "b"] and ds.items[0].audio == tmp_path / "./spk1/00001.flac"


def test_vectors_beside_the_audio_or_mirrored_under_save_dir(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    make_files(data, LAYOUT)
    beside = AudioDataset.from_path(data)
    saved = AudioDataset.from_path(data, output_dir=out)
    for index, name in enumerate(sorted(LAYOUT)):
        stem = name.rsplit(".", 1)[0]
        assert beside.sidecar_path(index, "emb") == data / f"{stem}_emb.txt"
        assert saved.sidecar_path(index, "ba", "pkl") == out / f"{stem}_ba.pkl"


def test_save_dir_tree_starts_at_the_common_folder_of_all_items(tmp_path):
    # all audio in one subfolder of the dataset directory: the tree starts there (reference)
    make_files(tmp_path / "data", ["corpus/spk1/00001.flac", "corpus/spk2/00001.flac"])
    ds = AudioDataset.from_path(tmp_path / "data", output_dir=tmp_path / "out")
    assert ds.sidecar_path(0, "emb") == tmp_path / "out" / "spk1" / "00001_emb.txt"
    # a CSV in lists/ naming ../spk1/00001.wav and ../spk2/00001.wav (balr 0.1: one file)
    make_files(tmp_path / "set", ["spk1/00001.wav", "spk2/00001.wav"])
    (tmp_path / "set" / "lists").mkdir()
    csv = tmp_path / "set" / "lists" / "data.csv"
    csv.write_text("audio\n../spk1/00001.wav\n../spk2/00001.wav\n")
    ds = AudioDataset.from_path(csv, output_dir=tmp_path / "vec")
    assert [ds.sidecar_path(i, "emb") for i in range(2)] == [
        tmp_path / "vec" / "spk1" / "00001_emb.txt",
        tmp_path / "vec" / "spk2" / "00001_emb.txt",
    ]
    # one file: its folder (the reference writes `<save_dir>_emb.pkl` beside the save dir)
    one = AudioDataset.from_path(tmp_path / "set" / "spk1" / "00001.wav", output_dir=tmp_path / "o")
    assert one.sidecar_path(0, "emb") == tmp_path / "o" / "00001_emb.txt"


def test_a_subset_keeps_the_whole_datasets_tree(tmp_path):
    make_files(tmp_path / "data", LAYOUT)
    ds = AudioDataset.from_path(tmp_path / "data", output_dir=tmp_path / "out")
    part = ds.subset([2])  # spk2/00001.flac alone: its own common folder would be spk2/
    assert part.sidecar_path(0, "emb") == ds.sidecar_path(2, "emb")
    assert part.sidecar_path(0, "emb") == tmp_path / "out" / "spk2" / "00001_emb.txt"


@pytest.mark.parametrize("save_dir", [False, True])
def test_two_items_with_one_vector_file_are_refused_naming_both(tmp_path, save_dir):
    make_files(tmp_path / "data", ["spk1/a.wav", "spk1/a.flac", "spk2/a.wav"])
    ds = AudioDataset.from_path(
        tmp_path / "data", output_dir=tmp_path / "out" if save_dir else None
    )
    folder = tmp_path / ("out" if save_dir else "data")
    message = (
        r"items 'spk1/a\.flac' \(.*spk1/a\.flac\) and 'spk1/a\.wav' \(.*spk1/a\.wav\) "
        rf"would share the vector file {folder}/spk1/a_emb\.txt"
    )
    with pytest.raises(DataError, match=message):
        ds.save_vectors("emb", [2], [np.ones(3)])  # refused before anything is written
    with pytest.raises(DataError, match=message):
        ds.has_vector(2, "emb")  # and reading would give both the same vector
    assert not list(folder.rglob("*_emb.txt"))
    # a store keys vectors by id: `spk1/a.wav` and `spk1/a.flac` are two ids, both kept;
    # the sidecar file they would share is never read for either
    (tmp_path / "s" / "spk1").mkdir(parents=True)
    np.save(tmp_path / "s" / "spk1" / "a_emb.npy", np.full(3, 9.0, np.float32))
    store = AudioDataset.from_path(
        tmp_path / "data", output_dir=tmp_path / "s", vector_format="store"
    )
    assert [store.has_vector(i, "emb") for i in range(3)] == [False, False, False]
    store.save_vectors("emb", [0, 1, 2], [np.full(3, i, np.float32) for i in range(3)])
    np.testing.assert_array_equal(store.stack_vectors("emb")[1][:, 0], [0, 1, 2])


def test_one_explicit_vector_path_for_two_rows_is_refused(tmp_path):
    (tmp_path / "d.csv").write_text("id,embedding\nu1,v/x_emb.txt\nu2,v/../v/x_emb.txt\n")
    ds = AudioDataset.from_path(tmp_path / "d.csv")
    with pytest.raises(DataError, match=r"items 'u1' .* and 'u2' .* would share .*v/x_emb\.txt"):
        ds.save_vectors("emb", [0, 1], [np.ones(2), np.zeros(2)])


def test_duplicate_ids_name_both_items(tmp_path):
    (tmp_path / "d.csv").write_text("id,audio\nu1,a.wav\nu1,b.wav\n")
    with pytest.raises(DataError, match=r"d\.csv: duplicate id 'u1': .*a\.wav and .*b\.wav"):
        AudioDataset.from_path(tmp_path / "d.csv")


def test_trials_with_the_old_extensionless_ids_say_ids_keep_the_extension(tmp_path):
    make_files(tmp_path / "data", LAYOUT)
    ds = AudioDataset.from_path(tmp_path / "data")
    (tmp_path / "trials.tsv").write_text("enrollment\ttest\nspk1/00001\tspk2/00001\n")
    trials = load_trials(tmp_path / "trials.tsv", known_ids=ds.ids)
    with pytest.raises(
        TrialsError,
        match=r"unknown id 'spk1/00001' in the enrollment cell of trial 1; the dataset has "
        r"'spk1/00001\.flac': ids of audio files keep their extension",
    ):
        trials.labels(ds)
    (tmp_path / "other.tsv").write_text("enrollment\ttest\nspk9/00001\tspk2/00001.flac\n")
    with pytest.raises(
        TrialsError, match=r"unknown id 'spk9/00001' in the enrollment cell of trial 1$"
    ):
        load_trials(tmp_path / "other.tsv").labels(ds)


@pytest.mark.slow
def test_score_test_with_a_balr_0_1_trial_list_says_ids_keep_the_extension(tmp_path):
    """The bundled trials name the CSV's ids (`id00906/00014`); the directory's ids are
    `id00906/00014.flac`: `balr score test` stops with one line saying so."""
    audio = EXAMPLES / "audio"
    result = subprocess.run(
        [sys.executable, "-m", "balr.cli.main", "score", "test", str(audio)]
        + [str(audio / "trials.tsv"), "--save-dir", str(tmp_path / "scores")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {audio / 'trials.tsv'}: unknown id 'id00906/00014' in the enrollment cell of "
        "trial 1; the dataset has 'id00906/00014.flac': ids of audio files keep their extension "
        "(the reference library's rule; balr 0.1 dropped it), so write 'id00906/00014.flac' in "
        "the trials file"
    ]


def test_a_vectors_folder_keeps_the_tree_it_was_written_with(tmp_path):
    """`audio_root.txt` names the folder a --save-dir mirrors: a later dataset of some of the
    recordings (its own deepest common folder: spk1/) reads their vectors, not the files
    another recording wrote at the same place of its own tree."""
    data, out = tmp_path / "data", tmp_path / "out"
    make_files(data, ["a.wav", "spk1/a.wav", "spk2/b.wav"])
    full = AudioDataset.from_path(data, output_dir=out)
    full.save_vectors("emb", range(3), [np.full(2, i, np.float32) for i in range(3)])
    assert (out / "audio_root.txt").read_text() == f"{data}\n"
    assert (out / "a_emb.txt").is_file() and (out / "spk1" / "a_emb.txt").is_file()
    (data / "spk1.csv").write_text("audio\nspk1/a.wav\n")
    part = AudioDataset.from_path(data / "spk1.csv", output_dir=out)
    # without the record its tree would start at spk1/: out/a_emb.txt, the vector of a.wav
    np.testing.assert_array_equal(part.get_vector(0, "emb"), [1, 1])
    assert part.sidecar_path(0, "ba") == out / "spk1" / "a_ba.txt"
    # recordings outside the recorded folder: refused, not mixed into the same tree
    make_files(tmp_path / "other", ["a.wav"])
    other = AudioDataset.from_path(tmp_path / "other", output_dir=out)
    with pytest.raises(
        DataError, match=rf"{out}: its vectors mirror the folder {data} \(named in audio_root"
    ):
        other.has_vector(0, "emb")
