"""`channel_profiles.tsv`: written crash-safe by `ChannelProfileLog` (the `RecordingLog` it
shares with `speech_durations.tsv`), read back with bad rows skipped, found with a torchrun
extraction's rank files; a long recording's windows averaged by samples; the per-trial channel
check of `score test` naming the flagged recordings as `compare` does."""

import numpy as np
import pytest

from balr.conditions.channel import PROFILE_SIZE, ChannelReference
from balr.conditions.jobs import check_trial_channels
from balr.data import AudioDataset, load_trials
from balr.data.channel_profiles import ChannelProfileLog, read_channel_profiles
from balr.embeddings.segments import WindowAverage

HEADER_CELLS = 2 + PROFILE_SIZE


def profile(value: float) -> np.ndarray:
    return np.full(PROFILE_SIZE, value, dtype=np.float32)


def test_profiles_survive_an_interrupted_row_and_resume(tmp_path):
    path = tmp_path / "channel_profiles.tsv"
    log = ChannelProfileLog(path)
    log.add("a", "/audio/a.wav", profile(1.23456))
    log.file.write("b\t/audio/b.wav\t2.0\t3.0")  # a crash in the middle of a row
    log.file.close()
    log.lock.release()  # the lock dies with a crashed process
    resumed = ChannelProfileLog(path)
    resumed.add("c", "/audio/c.wav", profile(-0.5))
    resumed.add("a", "/audio/a.wav", profile(2.0))  # recomputed (--force): the latest wins
    resumed.close()
    lines = path.read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["id", "a", "c"]
    assert lines[0].split("\t")[:3] == ["id", "path", "shape01"]
    assert lines[0].split("\t")[-1] == "floor32"
    assert lines[1] == "\t".join(["a", "/audio/a.wav"] + ["2.000"] * PROFILE_SIZE)
    assert all(len(line.split("\t")) == HEADER_CELLS for line in lines)
    rows = read_channel_profiles(tmp_path)
    assert sorted(rows) == ["a", "c"]
    assert rows["c"][0] == "/audio/c.wav"
    np.testing.assert_array_equal(rows["c"][1], profile(-0.5))


def row(item_id: str, values: list[str]) -> str:
    return "\t".join([item_id, f"{item_id}.wav", *values]) + "\n"


def test_rows_without_96_finite_values_are_skipped_and_rank_files_found(tmp_path):
    records = tmp_path / ".balr"
    records.mkdir()
    good = row("a", ["1.500"] * PROFILE_SIZE)
    (records / "channel_profiles.tsv").write_text(
        good
        + row("short", ["1.0"] * (PROFILE_SIZE - 1))
        + row("text", ["x"] * PROFILE_SIZE)
        + row("nan", ["nan"] * PROFILE_SIZE)
    )
    (records / "channel_profiles.rank1.tsv").write_text(row("b", ["1.500"] * PROFILE_SIZE))
    rows = read_channel_profiles(tmp_path)  # found in the records folder `.balr`
    assert sorted(rows) == ["a", "b"]
    np.testing.assert_array_equal(rows["b"][1], profile(1.5))
    assert read_channel_profiles(tmp_path / "none") is None


def test_window_profiles_are_averaged_by_samples():
    average = WindowAverage(3)
    average.add(np.ones(4), 3000.0, 1.0, profile(1.0))
    average.add(None, 0.0, 0.0, None)  # an unusable window: no weight
    average.add(np.ones(4), 1000.0, 0.5, profile(5.0))
    assert average.complete
    np.testing.assert_allclose(average.mean_profile(), profile((3 * 1.0 + 5.0) / 4))
    assert WindowAverage(1).mean_profile() is None


@pytest.fixture
def channel_reference() -> ChannelReference:
    """A reference fitted on profiles near zero: a profile of 10s is far beyond it."""
    rng = np.random.default_rng(0)
    return ChannelReference().fit(rng.normal(0, 1, (100, PROFILE_SIZE)), ["c"] * 100)


def test_trials_are_flagged_by_their_recordings_profiles(tmp_path, channel_reference):
    audio = {name: tmp_path / f"{name}.wav" for name in "abcde"}
    rows = "\n".join(f"{name},{path},s{name}" for name, path in audio.items())
    (tmp_path / "data.csv").write_text(f"id,audio,speaker\n{rows}\n")
    dataset = AudioDataset.from_path(tmp_path / "data.csv")
    (tmp_path / "trials.tsv").write_text("enrollment\ttest\na\tb\nb\ta\na,b\tc\nc\td\nd\te\na\te\n")
    trials = load_trials(tmp_path / "trials.tsv")
    profiles = {
        "a": (str(audio["a"]), profile(0.0)),
        "b": (str(audio["b"]), profile(10.0)),  # flagged
        "c": (str(audio["c"]), profile(0.0)),
        "d": (str(tmp_path / "moved" / "d.wav"), profile(10.0)),  # stale: not used
    }  # e: no profile
    valid = np.array([True, True, True, True, True, False])
    check = check_trial_channels(channel_reference, dataset, trials, valid, profiles)
    problem = channel_reference.problem(profile(10.0))
    assert problem.startswith("channel unlike the calibration recordings' (profile distance ")
    assert check.reasons == [
        f"test recording's {problem}",
        f"enrollment recording's {problem}",
        f"enrollment b: {problem}",
        "",
        "",
        "",  # not scored
    ]
    assert check.record() == {
        "recordings_checked": 3,
        "recordings_flagged": 1,
        "recordings_without_profile": 1,
        "stale_profiles": 1,
        "trials_flagged": 3,
        "threshold": round(channel_reference.threshold_, 4),
    }
