"""Trials: the bundled example's trials.tsv, optional header, multi-id cells and errors."""

from __future__ import annotations

import pytest

from balr.data import AudioDataset, load_trials
from balr.errors import TrialsError
from tests.conftest import EXAMPLES

SPEAKERS = {"a1": "A", "a2": "A", "b1": "B", "b2": "B", "x1": None}


def test_example_trials_labels_from_metadata():
    trials = load_trials(EXAMPLES / "audio" / "trials.tsv")
    ds = AudioDataset.from_path(EXAMPLES / "audio" / "metadata.csv")
    assert trials.has_header and len(trials) == 28  # every pair of the 8 clips
    labels = trials.labels(ds)
    # in this corpus an id is SPEAKER/UTT: derive the truth from the ids themselves
    expected = [
        int(e[0].split("/")[0] == t[0].split("/")[0])
        for e, t in zip(trials.enrollment, trials.test, strict=True)
    ]
    assert labels.tolist() == expected
    assert sum(expected) == 4


def test_headerless_multi_id_cells(tmp_path):
    path = tmp_path / "trials.tsv"
    path.write_text("a1,a2\tb1\na1\ta2\nb2\tx1\n")
    trials = load_trials(path)
    assert not trials.has_header
    assert trials.enrollment == [["a1", "a2"], ["a1"], ["b2"]]
    assert trials.test == [["b1"], ["a2"], ["x1"]]
    assert trials.labels_from_speakers(SPEAKERS).tolist() == [0, 1, -1]
    # enrollment cells first, then test cells, each id once
    assert trials.unique_ids() == ["a1", "a2", "b2", "b1", "x1"]


def test_header_in_other_order_and_other_separator(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("test,enrollment,note\nb1,b2,x\n")
    trials = load_trials(path, sep=",")
    assert trials.enrollment == [["b2"]] and trials.test == [["b1"]]
    assert list(trials.frame.columns) == ["test", "enrollment", "note"]


def test_mixed_speaker_cell_is_an_error_naming_the_cell(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("enrollment\ttest\na1\tb1\na1,b2\ta2\n")
    with pytest.raises(
        TrialsError, match=r"enrollment cell 'a1,b2' of trial 2 mixes speakers \(A, B\)"
    ):
        load_trials(path).labels_from_speakers(SPEAKERS)


def test_unknown_id_is_an_error_naming_it(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("a1\tzz9\n")
    with pytest.raises(TrialsError, match=r"t\.tsv: unknown id 'zz9' in the test cell of trial 1"):
        load_trials(path).labels_from_speakers(SPEAKERS)


def test_bad_files(tmp_path):
    with pytest.raises(TrialsError, match="trials file not found"):
        load_trials(tmp_path / "none.tsv")
    (tmp_path / "one.tsv").write_text("a1\na2\n")
    with pytest.raises(TrialsError, match="expected 2 columns"):
        load_trials(tmp_path / "one.tsv")


@pytest.mark.difference("BA-trials-file")
def test_a_header_with_other_column_names_is_a_header_given_the_dataset_ids(tmp_path):
    """The reference library always reads line 1 as a header, whatever its names: with the
    dataset's ids known, a first line of unknown ids is taken as column names."""
    path = tmp_path / "trials.tsv"
    path.write_text("model\tsegment\na1,a2\tb1\nb2\ta1\n")
    trials = load_trials(path, known_ids=set(SPEAKERS))
    assert trials.has_header and list(trials.frame.columns) == ["model", "segment"]
    assert trials.enrollment == [["a1", "a2"], ["b2"]] and trials.test == [["b1"], ["a1"]]
    assert trials.labels_from_speakers(SPEAKERS).tolist() == [0, 0]
    # a header-less file of known ids keeps its first trial
    path.write_text("a1\tb1\nb2\ta1\n")
    assert len(load_trials(path, known_ids=set(SPEAKERS))) == 2
    # without the dataset's ids the names are read as a trial (and then fail as unknown ids)
    path.write_text("model\tsegment\na1\tb1\n")
    with pytest.raises(TrialsError, match="unknown id 'model'"):
        load_trials(path).labels_from_speakers(SPEAKERS)
