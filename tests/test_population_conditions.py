"""The conditions of a relevant population that tested the calibration
(`balr.conditions.population`): when they apply, the channel distance with a recording's own
speaker and recording left out, the speech floor, and the trials' reasons, by value."""

from __future__ import annotations

import numpy as np
import pytest

from balr.conditions import TrialConditions
from balr.conditions.channel import PROFILE_SIZE, ChannelReference
from balr.conditions.population import (
    NEIGHBOURS,
    PopulationConditions,
    population_tested,
    untested_reason,
)
from balr.lr_bound import BoundTest
from balr.population import Population
from balr.population_decision import AdaptationDecision

HELD = BoundTest(240, 6, (1.0, 10.0), (0, 0))
BROKEN = BoundTest(240, 6, (1.0, 10.0), (240, 240))


def test_only_a_population_that_tested_the_calibration_and_found_it_holding_applies():
    assert population_tested(AdaptationDecision(False, "held", HELD))
    assert population_tested(AdaptationDecision(True, "broken", BROKEN, recheck=HELD))
    untested = AdaptationDecision(True, "too few labelled speakers or pairs")
    assert not population_tested(untested) and not population_tested(None)
    assert untested_reason(untested) == (
        "the population did not test the calibration (too few labelled speakers or pairs)"
    )
    no_retest = AdaptationDecision(True, "broken", BROKEN)
    assert not population_tested(no_retest)
    assert untested_reason(no_retest).startswith("too few of the population's own comparisons")
    still_broken = AdaptationDecision(True, "broken", BROKEN, recheck=BROKEN)
    assert not population_tested(still_broken)
    assert "still break the bound" in untested_reason(still_broken)


def unit_scale() -> ChannelReference:
    """A scale that leaves profile values as they are (shift 0, scale 1)."""
    scale = ChannelReference()
    scale.shift_ = np.zeros(PROFILE_SIZE, np.float32)
    scale.scale_ = np.ones(PROFILE_SIZE, np.float32)
    return scale


def population_of(n_speakers: int = 6, per_speaker: int = 4, seed: int = 0):
    """Profiles of one channel: value 0 of speaker s's recording r is `s + r / 8`, the
    rest 0, so that every distance is known by hand."""
    ids = tuple(f"p{s}_{r}" for s in range(n_speakers) for r in range(per_speaker))
    speakers = tuple(f"s{s}" for s in range(n_speakers) for _ in range(per_speaker))
    profiles = {}
    for s in range(n_speakers):
        for r in range(per_speaker):
            profile = np.zeros(PROFILE_SIZE)
            profile[0] = s + r / 8  # exact in the float16 the reference keeps
            profiles[f"p{s}_{r}"] = profile
    population = Population("pop.csv", ids, speakers, np.zeros((len(ids), 3)))
    return population, profiles


def test_the_channel_distance_leaves_out_the_recordings_own_speaker_and_itself():
    population, profiles = population_of()
    speech = np.linspace(2.0, 6.0, len(population.ids))
    conditions = PopulationConditions.fit(population, profiles, speech, 1.5, unit_scale())
    assert conditions.speech_floor_s == 1.5  # the calibration's is lower than 2.0
    # a new recording at value 2.0 (a new speaker): its 10 nearest population profiles
    query = np.zeros((1, PROFILE_SIZE))
    query[0, 0] = 2.0
    expected = np.sort(np.abs(np.array([profiles[i][0] for i in population.ids]) - 2.0))
    assert conditions.distances(np.array(["new"]), np.array(["x"], object), query)[0] == (
        pytest.approx(expected[:NEIGHBOURS].mean())
    )
    # the same recording as speaker 2's population recording: its speaker is left out
    others = [
        profiles[i][0]
        for i, s in zip(population.ids, population.speakers, strict=True)
        if s != "s2"
    ]
    alone = np.sort(np.abs(np.array(others) - 2.0))[:NEIGHBOURS].mean()
    distance = conditions.distances(np.array(["p2_0"]), np.array(["s2"], object), query)[0]
    assert distance == pytest.approx(alone)
    # unlabelled: only the recording itself is left out
    distance = conditions.distances(np.array(["p2_0"]), np.array([None], object), query)[0]
    assert distance == pytest.approx(np.sort(expected)[1 : NEIGHBOURS + 1].mean())


def test_the_threshold_is_the_98th_percentile_of_the_populations_own_distances():
    population, profiles = population_of()
    conditions = PopulationConditions.fit(
        population, profiles, np.full(24, 3.0), None, unit_scale()
    )
    values = np.array([profiles[i][0] for i in population.ids])
    speakers = np.array(population.speakers)
    own = [
        np.sort(np.abs(values[speakers != speakers[k]] - values[k]))[:NEIGHBOURS].mean()
        for k in range(len(values))
    ]
    assert conditions.threshold == pytest.approx(np.percentile(own, 98.0))
    assert conditions.speech_floor_s == 3.0  # no calibration range: the population's own
    far = conditions.threshold + 0.25
    assert conditions.channel_problem(conditions.threshold) == ""
    assert conditions.channel_problem(far) == (
        f"channel unlike the population's (profile distance {far:.2f} > {conditions.threshold:.2f})"
    )


def test_without_the_populations_speech_the_floor_is_the_calibrations():
    population, profiles = population_of()
    unknown = np.full(24, np.nan)
    assert (
        PopulationConditions.fit(population, profiles, unknown, 1.5, unit_scale()).speech_floor_s
        == 1.5
    )
    assert np.isnan(
        PopulationConditions.fit(population, profiles, unknown, None, unit_scale()).speech_floor_s
    )


def test_too_few_profiles_keep_the_calibrations_check_and_say_why():
    population, profiles = population_of(n_speakers=2, per_speaker=5)  # 10 profiles
    reason = PopulationConditions.fit(population, profiles, np.ones(10), None, unit_scale())
    assert reason == (
        "10 of its 10 recordings have a channel profile, more than 10 are needed "
        "(balr extract writes them)"
    )


def test_trials_are_out_by_their_recordings_channel_and_their_sides_speech():
    population, profiles = population_of()
    conditions = PopulationConditions.fit(population, profiles, np.full(24, 2.0), 1.5, unit_scale())
    problem = "channel unlike the population's (profile distance 9.00 > 1.00)"
    problem_of = {"a": "", "b": problem, "c": ""}
    checked = conditions.check_trials(
        [["a"], ["a"], ["a", "c"]], [["c"], ["b"], ["a"]],
        np.array([[3.0, 3.0], [3.0, 3.0], [1.46, 1.5]]), problem_of,
    )  # fmt: skip
    assert checked.in_conditions.tolist() == [True, False, False]
    unknown = conditions.check_trials([["a"]], [["c"]], np.array([[np.nan, 3.0]]), problem_of)
    assert unknown.reasons == ["enrollment speech duration unknown (no speech_durations.tsv)"]
    assert checked.reasons == [
        "",
        f"test recording's {problem}",
        "enrollment speech 1.46 s below the population's and the calibration's shortest (1.50 s)",
    ]
    assert isinstance(checked, TrialConditions) and checked.notes == ["", "", ""]


def test_a_recording_is_out_only_when_out_of_the_populations_and_the_calibrations():
    unlike = "channel unlike the population's (profile distance 9.00 > 1.00)"
    calibration = ["recording unlike the calibration population (similarity 0.41 < 0.52)"]
    assert PopulationConditions.combined_problem("", calibration) == ""  # like the population
    assert PopulationConditions.combined_problem(unlike, []) == ""  # in the calibration's
    both = PopulationConditions.combined_problem(unlike, [*calibration, "channel unlike X"])
    assert both == f"{unlike}, and {calibration[0]}; channel unlike X"


def test_a_large_population_keeps_a_seeded_sample_of_its_profiles(monkeypatch):
    import balr.conditions.population as module

    monkeypatch.setattr(module, "MAX_PROFILES", 15)
    population, profiles = population_of()  # 24 recordings
    first = PopulationConditions.fit(population, profiles, np.ones(24), None, unit_scale())
    again = PopulationConditions.fit(population, profiles, np.ones(24), None, unit_scale())
    assert len(first.ids) == 15 and set(first.ids) <= set(population.ids)
    assert first.ids.tolist() == again.ids.tolist()  # seeded: the same sample each run
    assert first.record()["n_profiles"] == 15
