"""Conditions description: duration range, population similarity, reasons, files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from balr.conditions import (
    LONGER_SPEECH,
    NO_DESCRIPTION,
    UNKNOWN_SPEECH,
    ConditionsDescription,
    RecordingConditions,
    TrialConditions,
    apart,
    check_comparison,
    sidecar_path,
    trial_conditions,
)
from balr.errors import DataError, ModelError


def population(n_speakers: int = 40, per_speaker: int = 5, dim: int = 16, seed: int = 0):
    """Vectors near the first axis (a 'domain'), speakers as small offsets; 1-10 s of speech."""
    rng = np.random.default_rng(seed)
    centres = np.repeat(rng.normal(0, 0.3, (n_speakers, dim)), per_speaker, axis=0)
    vectors = centres + rng.normal(0, 0.1, centres.shape)
    vectors[:, 0] += 3.0
    speakers = np.repeat([f"s{i}" for i in range(n_speakers)], per_speaker)
    speech_s = rng.uniform(1.0, 10.0, len(vectors))
    return vectors, speech_s, speakers


def fitted() -> ConditionsDescription:
    vectors, speech_s, speakers = population()
    return ConditionsDescription().fit(vectors, speech_s, speakers)


def test_fit_learns_the_speech_range_and_the_2nd_percentile_threshold():
    vectors, speech_s, speakers = population()
    description = ConditionsDescription().fit(vectors, speech_s, speakers)
    # order statistics at the [0.5, 99.5] % percentiles: 200 values, the 1st and the 200th
    assert description.speech_range_s_ == [speech_s.min(), speech_s.max()]
    # independently: mean cosine of the 10 nearest recordings of other speakers
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosines = unit @ unit.T
    cosines[speakers[:, None] == speakers[None, :]] = -np.inf
    own = np.sort(cosines, axis=1)[:, -10:].mean(axis=1)
    reference16 = unit.astype(np.float16).astype(np.float64)  # stored as float16
    assert description.similarity_threshold_ == pytest.approx(np.percentile(own, 2.0), abs=2e-3)
    assert description.reference_vectors_.dtype == np.float16
    assert np.abs(description.reference_vectors_ - reference16).max() == 0
    # 2 % of the calibration recordings fall below their own threshold
    below = own < description.similarity_threshold_
    assert 0.01 <= below.mean() <= 0.03


def test_check_flags_short_speech_and_unlike_recordings_and_notes_long_speech():
    description = fitted()
    low, high = description.speech_range_s_
    vectors, speech_s, _ = population(n_speakers=3, per_speaker=2, seed=1)
    unlike = np.zeros(16)
    unlike[1] = 1.0  # orthogonal to the calibration population's direction
    trials = description.check(
        vectors[:5],
        np.array([5.0, 0.4, 5.0, np.nan, 5.0]),
        np.stack([vectors[4], vectors[5], unlike, vectors[4], vectors[5]]),
        np.array([5.0, 5.0, 5.0, 30.0, 30.0]),
    )
    assert trials.in_conditions.tolist() == [True, False, False, False, True]
    assert trials.reasons[0] == "" and trials.notes[0] == ""
    assert (
        trials.reasons[1] == f"enrollment speech 0.4 s below the calibrated {low:.1f}-{high:.1f} s"
    )
    similarity = description.similarity(unlike[None])[0]
    assert similarity < 0.3 < description.similarity_threshold_
    assert trials.reasons[2] == (
        f"test recording unlike the calibration population (similarity {similarity:.2f} < "
        f"{description.similarity_threshold_:.2f})"
    )
    # longer speech than calibrated: a note, never out of conditions by itself
    long_note = f"test speech 30.0 s above the calibrated {low:.1f}-{high:.1f} s ({LONGER_SPEECH})"
    assert trials.reasons[3] == f"enrollment {UNKNOWN_SPEECH}" and trials.notes[3] == long_note
    assert trials.reasons[4] == "" and trials.notes[4] == long_note
    assert trials.reasons_and_notes()[3] == f"enrollment {UNKNOWN_SPEECH}; {long_note}"
    assert trials.counts() == {"in_conditions": 2, "out_of_conditions": 3}


def test_messages_print_enough_decimals_for_their_numbers_to_differ():
    assert apart(2.68, 2.7, 5.9) == ["2.68", "2.70", "5.90"]
    assert apart(2.0, 2.7, 5.9) == ["2.0", "2.7", "5.9"]
    assert apart(0.51994, 0.52013, decimals=2) == ["0.5199", "0.5201"]
    assert apart(3.0, 3.0) == ["3.0", "3.0"]  # equal numbers: nothing to tell apart
    description = fitted()
    description.speech_range_s_ = [2.7, 5.9]
    description.similarity_threshold_ = 0.52
    speech_problem = description.check(
        np.zeros((1, 16)) + 1.0, np.array([2.68]), np.zeros((1, 16)) + 1.0, np.array([3.0])
    ).reasons[0]
    assert speech_problem.startswith("enrollment speech 2.68 s below the calibrated 2.70-5.90 s")
    odd = np.zeros(16)
    odd[0], odd[1] = 1.0, 1.0  # similarity just below 0.52 once the threshold is set to it
    description.similarity_threshold_ = description.similarity(odd[None])[0] + 4e-5
    problem = description.check_recordings(odd[None]).problems[0][0]
    value, threshold = problem.split("similarity ")[1].rstrip(")").split(" < ")
    assert value != threshold and float(value) < float(threshold)
    assert len(value) == len(threshold) >= 6  # e.g. 0.7071 < 0.7072


def test_durations_are_checked_per_side_not_per_recording():
    """Two recordings of 0.5 s under a 0.8 s floor make a side of 1.0 s: in conditions (the
    calibration counts sides); one of 0.5 s alone is out; 2 x 6 s above a 9 s top: a note."""
    description = fitted()
    description.speech_range_s_ = [0.8, 9.0]
    vectors, _, _ = population(n_speakers=2, per_speaker=2, seed=3)
    names = ["a", "b", "c", "d"]
    pair = check_comparison(description, vectors, [0.5, 0.5, 6.0, 6.0], 2, names)
    assert pair.in_conditions.tolist() == [True] and pair.reasons == [""]
    assert pair.notes == [f"test speech 12.0 s above the calibrated 0.8-9.0 s ({LONGER_SPEECH})"]
    single = check_comparison(description, vectors, [0.5, 0.5, 6.0, 6.0], 1, names)
    assert single.reasons == ["enrollment speech 0.5 s below the calibrated 0.8-9.0 s"]
    unknown = check_comparison(description, vectors, [0.5, np.nan, 6.0, 6.0], 2, names)
    assert unknown.reasons == [f"enrollment {UNKNOWN_SPEECH}"]


def test_a_calibration_recording_does_not_match_itself():
    vectors, speech_s, speakers = population()
    description = ConditionsDescription().fit(vectors, speech_s, speakers)
    unit = description.reference_vectors_.astype(np.float64)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)  # float16 rows, renormalised
    query = vectors[7] / np.linalg.norm(vectors[7])
    cosines = np.delete(unit, 7, axis=0) @ query  # every reference but itself
    expected = np.sort(cosines)[-10:].mean()
    for same in (vectors[7], 3.0 * vectors[7]):  # itself, at any scale: cosine 1
        assert description.similarity(same[None])[0] == pytest.approx(expected, abs=1e-9)
    assert expected < 0.999


def test_the_threshold_is_balanced_over_corpora():
    """A large tight corpus and a small loose one: the pooled 2 % threshold puts far more
    than 2 % of the small corpus's recordings below it; per corpus, the lowest kept, none
    of the two has more than 2 % below."""
    big, big_speech, big_speakers = population(n_speakers=40, per_speaker=5, seed=4)
    small, small_speech, small_speakers = population(n_speakers=10, per_speaker=5, seed=5)
    small = small + np.random.default_rng(6).normal(0, 0.6, small.shape)  # looser
    vectors = np.concatenate([big, small])
    speakers = np.concatenate([big_speakers, np.char.add("x", small_speakers)])
    speech_s = np.concatenate([big_speech, small_speech])
    groups = ["big"] * len(big) + ["small"] * len(small)
    pooled = ConditionsDescription().fit(vectors, speech_s, speakers)
    balanced = ConditionsDescription().fit(vectors, speech_s, speakers, groups=groups)
    owners = np.unique(speakers, return_inverse=True)[1]
    own = balanced.similarity(vectors, owners=owners)
    in_small = np.arange(len(vectors)) >= len(big)
    per_group = {
        "big": np.percentile(own[~in_small], 2.0),
        "small": np.percentile(own[in_small], 2.0),
    }
    assert balanced.group_thresholds_ == pytest.approx(per_group)
    assert balanced.similarity_threshold_ == min(per_group.values()) == per_group["small"]
    assert pooled.group_thresholds_ is None
    assert pooled.similarity_threshold_ == pytest.approx(np.percentile(own, 2.0))
    assert (own[in_small] < pooled.similarity_threshold_).mean() >= 0.1  # 5 of 50
    for members in (in_small, ~in_small):
        assert (own[members] < balanced.similarity_threshold_).mean() <= 0.02


def test_group_thresholds_are_saved_and_checked(tmp_path):
    vectors, speech_s, speakers = population()
    groups = ["a"] * 100 + ["b"] * 100
    description = ConditionsDescription().fit(vectors, speech_s, speakers, groups=groups)
    path = tmp_path / "conditions.json"
    description.save(path)
    record = json.loads(path.read_text())["conditions"]
    assert record["group_thresholds"] == description.group_thresholds_
    assert ConditionsDescription.load(path).group_thresholds_ == description.group_thresholds_
    record["similarity_threshold"] = 0.0  # no longer the lowest of them
    path.write_text(json.dumps({"conditions": record}))
    with pytest.raises(ModelError, match="'group_thresholds' must have similarity_threshold"):
        ConditionsDescription.load(path)
    fitted().save(path)  # one pooled threshold: the record keeps its earlier fields
    assert "group_thresholds" not in json.loads(path.read_text())["conditions"]


def test_small_populations_average_the_neighbours_there_are():
    """3 speakers x 2 recordings: each has 4 recordings of other speakers, not 10."""
    vectors, speech_s, speakers = population(n_speakers=3, per_speaker=2)
    description = ConditionsDescription().fit(vectors, speech_s, speakers)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosines = unit @ unit.T
    others = speakers[:, None] != speakers[None, :]
    own = np.array([cosines[i, others[i]].mean() for i in range(len(vectors))])
    assert description.similarity_threshold_ == pytest.approx(np.percentile(own, 2.0), abs=2e-3)


def test_cells_of_several_recordings_name_the_recording():
    recordings = RecordingConditions(
        np.array([True, False, True]), [[], ["recording unlike the calibration population"], []]
    )
    sides = np.array([[3.0, 4.0], [0.2, 4.0]])
    trials = trial_conditions(recordings, [[0, 1], [0]], [[2], [2]], sides, [1.0, 9.0], "abc")
    assert trials.in_conditions.tolist() == [False, False]
    assert trials.reasons == [
        "enrollment b: recording unlike the calibration population",
        "enrollment speech 0.2 s below the calibrated 1.0-9.0 s",
    ]


def test_unchecked_trials_are_out_of_conditions():
    trials = TrialConditions.unchecked(3, NO_DESCRIPTION)
    assert trials.in_conditions.tolist() == [False] * 3
    assert trials.reasons == [NO_DESCRIPTION] * 3
    noted = trials.with_notes(["", "x", ""])
    assert noted.reasons_and_notes() == [NO_DESCRIPTION, f"{NO_DESCRIPTION}; x", NO_DESCRIPTION]


def test_save_alone_writes_a_record_and_a_float16_sidecar(tmp_path):
    description = fitted()
    path = tmp_path / "conditions.json"
    assert description.save(path) == path
    record = json.loads(path.read_text())
    assert list(record) == ["conditions"]
    assert record["conditions"]["reference_vectors"] == "conditions.conditions.safetensors"
    assert sidecar_path(path).is_file()
    loaded = ConditionsDescription.load(path)
    assert loaded.reference_vectors_.dtype == np.float16
    assert loaded.speech_range_s_ == description.speech_range_s_
    assert loaded.similarity_threshold_ == description.similarity_threshold_
    probe, _, _ = population(n_speakers=2, seed=2)
    np.testing.assert_array_equal(loaded.similarity(probe), description.similarity(probe))


def test_save_alone_never_overwrites_a_calibrator(tmp_path):
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"calibrator": {"method": "logistic"}}))
    with pytest.raises(ModelError, match="holds a calibrator; .*CalibrationBundle"):
        fitted().save(path)
    assert json.loads(path.read_text()) == {"calibrator": {"method": "logistic"}}
    assert not sidecar_path(path).exists()


def test_a_file_without_conditions_has_no_description(tmp_path):
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"calibrator": {"method": "logistic"}}))
    assert ConditionsDescription.load(path) is None


def test_bad_inputs_are_refused_with_the_reason():
    vectors, speech_s, speakers = population()
    with pytest.raises(DataError, match="no calibration recording has a known speech"):
        ConditionsDescription().fit(vectors, np.full(len(vectors), np.nan))
    with pytest.raises(DataError, match="need two speakers or more"):
        ConditionsDescription().fit(vectors[:5], speech_s[:5], speakers[:5])
    with pytest.raises(DataError, match="16-dimensional ba vectors"):
        fitted().similarity(np.ones((1, 8)))
