"""Conditions description: duration range, population similarity, reasons, files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from balr.conditions import (
    NO_DESCRIPTION,
    UNKNOWN_SPEECH,
    ConditionsDescription,
    RecordingConditions,
    TrialConditions,
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
    np.testing.assert_allclose(description.speech_range_s_, np.percentile(speech_s, [0.5, 99.5]))
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


def test_check_flags_out_of_range_speech_and_unlike_recordings_with_reasons():
    description = fitted()
    low, high = description.speech_range_s_
    vectors, speech_s, _ = population(n_speakers=3, per_speaker=2, seed=1)
    unlike = np.zeros(16)
    unlike[1] = 1.0  # orthogonal to the calibration population's direction
    trials = description.check(
        vectors[:4],
        np.array([5.0, 0.4, 5.0, np.nan]),
        np.stack([vectors[4], vectors[5], unlike, vectors[4]]),
        np.array([5.0, 5.0, 5.0, 30.0]),
    )
    assert trials.in_conditions.tolist() == [True, False, False, False]
    assert trials.reasons[0] == ""
    assert (
        trials.reasons[1] == f"enrollment speech 0.4 s below the calibrated {low:.1f}-{high:.1f} s"
    )
    similarity = description.similarity(unlike[None])[0]
    assert similarity < 0.3 < description.similarity_threshold_
    assert trials.reasons[2] == (
        f"test recording unlike the calibration population (similarity {similarity:.2f} < "
        f"{description.similarity_threshold_:.2f})"
    )
    assert trials.reasons[3] == (
        f"enrollment {UNKNOWN_SPEECH}; test speech 30.0 s above the calibrated "
        f"{low:.1f}-{high:.1f} s"
    )
    assert trials.counts() == {"in_conditions": 1, "out_of_conditions": 3}


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
        np.array([True, False, True]), [[], ["speech 0.2 s below the calibrated 1.0-9.0 s"], []]
    )
    trials = trial_conditions(recordings, [[0, 1], [0]], [[2], [2]], ["a", "b", "c"])
    assert trials.in_conditions.tolist() == [False, True]
    assert trials.reasons == ["enrollment b: speech 0.2 s below the calibrated 1.0-9.0 s", ""]


def test_unchecked_trials_are_out_of_conditions():
    trials = TrialConditions.unchecked(3, NO_DESCRIPTION)
    assert trials.in_conditions.tolist() == [False] * 3
    assert trials.reasons == [NO_DESCRIPTION] * 3


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
