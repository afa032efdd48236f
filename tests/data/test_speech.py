"""`speech_durations.tsv`: written crash-safe by `SpeechLog`, read back, found beside the
vectors (with a torchrun extraction's rank files), summed per trial side."""

import numpy as np
import pytest

from balr.data import load_trials
from balr.data.speech import (
    SpeechLog,
    find_speech_durations,
    load_speech_durations,
    side_seconds,
    trial_seconds,
)
from balr.errors import DataError


def test_speech_durations_survive_an_interrupted_row_and_resume(tmp_path):
    path = tmp_path / "speech_durations.tsv"
    log = SpeechLog(path)
    log.add("a", "a.wav", 1.25)
    log.file.write("b\tb.wav\t2.")  # a crash in the middle of a row: no newline
    log.file.close()
    log.lock.release()  # the lock dies with a crashed process
    resumed = SpeechLog(path)
    resumed.add("c", "c.wav", 3.0)
    resumed.add("a", "a.wav", 1.5)  # recomputed (--force): the latest row wins
    resumed.close()
    # the cut row "b ... 2." was never followed by a saved vector: it is dropped
    rows = path.read_text().splitlines()
    assert rows == ["id\tpath\tspeech_s", "a\ta.wav\t1.500", "c\tc.wav\t3.000"]


def test_rank_files_are_found_with_the_main_file(tmp_path):
    (tmp_path / "speech_durations.tsv").write_text("id\tpath\tspeech_s\na\ta.wav\t1.000\n")
    (tmp_path / "speech_durations.rank1.tsv").write_text("id\tpath\tspeech_s\nb\tb.wav\t2.5\n")
    assert find_speech_durations(tmp_path) == {"a": 1.0, "b": 2.5}
    assert find_speech_durations(tmp_path / "none") is None
    assert load_speech_durations(None, tmp_path) == {"a": 1.0, "b": 2.5}
    with pytest.raises(DataError, match=r"--speech-durations .*missing.tsv: no such file"):
        load_speech_durations(tmp_path / "missing.tsv", tmp_path)


def test_trial_sides_sum_their_recordings_and_an_unknown_one_is_nan(tmp_path):
    trials_path = tmp_path / "trials.tsv"
    trials_path.write_text("enrollment\ttest\na,b\tc\nc\td\n")
    trials = load_trials(trials_path)
    seconds = trial_seconds(trials, {"a": 1.5, "b": 2.0, "c": 4.0})
    np.testing.assert_array_equal(seconds[0], [3.5, 4.0])
    assert seconds[1, 0] == 4.0 and np.isnan(seconds[1, 1])
    assert np.isnan(side_seconds([["a"]], None)).all()
