"""`balr compare --population`: case recordings left out, the scorer adapted, the case LR
checked against the population, all of it in the terminal, the report and the audit."""

from __future__ import annotations

import html
import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from typer.testing import CliRunner

from balr import defaults
from balr.audio import load_audio, resample
from balr.audit import record_summary
from balr.calibration import CalibrationBundle
from balr.cli.main import app
from balr.compare import ComparisonPipeline, compare_config, compare_files
from balr.conditions.channel import channel_profile
from balr.data import AudioDataset
from balr.data.channel_profiles import CHANNEL_FILE, ChannelProfileLog
from balr.embeddings import build_embedding_model
from balr.population import read_population
from balr.population_check import PopulationCheck
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.slow  # extracts the bundled clips with the shipped models

CLIPS = EXAMPLES / "audio"
ENROLL, TEST = CLIPS / "id00906" / "00014.flac", CLIPS / "id00906" / "00028.flac"
N_SPEAKERS, PER_SPEAKER = 6, 4


@pytest.fixture(scope="module")
def test_bits():
    """The shipped encoder's bits of the test clip."""
    pipeline = ComparisonPipeline.from_files(
        build_embedding_model(compare_config().embeddings.model)
    )
    bits = np.asarray(pipeline.encoder.binarize(pipeline.embed([TEST]))[0], dtype=float)
    return bits[:, 0] if bits.ndim == 2 else bits  # (attributes, 2) counts: the active one


def write_population(root, bits_of) -> tuple:
    """A population CSV of N_SPEAKERS x PER_SPEAKER short generated recordings with BA
    vectors `bits_of(speaker, recording)`, plus the enrollment clip itself and a WAV copy of
    the test clip (both to be left out as case recordings)."""
    rng = np.random.default_rng(0)
    rows = []
    for s in range(N_SPEAKERS):
        for r in range(PER_SPEAKER):
            path = root / f"p{s}_{r}.wav"
            sf.write(path, 0.1 * rng.standard_normal(16000).astype(np.float32), 16000)
            rows.append((f"p{s}/{r}", str(path), f"p{s}"))
    sf.write(root / "copy.wav", load_audio(TEST), 16000, subtype="FLOAT")
    rows += [("case_enroll", str(ENROLL), "x"), ("case_copy", str(root / "copy.wav"), "y")]
    pd.DataFrame(rows, columns=["id", "audio", "speaker"]).to_csv(root / "pop.csv", index=False)
    dataset = AudioDataset.from_path(root / "pop.csv", output_dir=root / "vectors")
    with dataset.vector_writer("ba") as writer:
        for index, item in enumerate(dataset.items):
            s, r = (int(v) for v in item.id[1:].split("/")) if item.id[0] == "p" else (0, 0)
            bits = bits_of(s, r).astype(bool)
            writer.put(index, np.stack([bits, ~bits], axis=1).astype(np.float32))
    return root / "pop.csv", root / "vectors"


def test_a_population_like_the_test_recording_makes_the_case_unexceptional(test_bits, tmp_path):
    """Every population speaker carries the test clip's attributes (a few flipped): each of
    them matches the test recording as well as the suspect does, so the check warns."""
    rng = np.random.default_rng(1)

    def like_test(s, r):
        flip = rng.random(len(test_bits)) < 0.02
        return np.where(flip, 1 - test_bits, test_bits)

    population, vectors = write_population(tmp_path, like_test)
    comparison = compare_files([ENROLL], [TEST], population=population, population_vectors=vectors)
    result = comparison.result
    assert result.population.excluded == ("case_copy", "case_enroll")
    assert (len(result.population.ids), result.population.n_speakers) == (24, 6)
    adaptation = result.population_adaptation  # 6 look-alike speakers: far over the bound
    assert adaptation.adapt and adaptation.bound.broken and adaptation.bound.n_pairs == 240
    # its LRs are bounded by what the population's own 36 + 240 comparisons support
    bounds = adaptation.bounds
    assert bounds.applied and (bounds.n_target, bounds.n_nontarget) == (36, 240)
    shipped = CalibrationBundle.load(defaults.CALIBRATION).calibrator
    assert shipped.lower_bound_ <= bounds.lower <= result.llr <= bounds.upper
    assert bounds.upper < shipped.upper_bound_
    assert "; LRs within log10 LR [" in adaptation.describe()
    check = result.population_check
    assert isinstance(check, PopulationCheck) and check.case_llr == result.llr
    assert len(check.test_llrs) == len(check.enrollment_llrs) == N_SPEAKERS
    assert check.test_llrs.min() >= result.llr and not check.exceptional
    assert result.warnings[-1] == check.warning()
    assert check.n_reaching >= N_SPEAKERS


def test_cli_prints_and_reports_the_population(test_bits, tmp_path):
    """Population speakers with their own attributes: the case is exceptional (no warning);
    their 240 different-speaker comparisons respect the bound of calibrated LRs, so the
    scorer is not adapted; terminal, HTML report and audit record name the population and
    the decision."""
    rates = np.random.default_rng(2).uniform(0.05, 0.6, (N_SPEAKERS, len(test_bits)))
    rng = np.random.default_rng(3)
    population, vectors = write_population(
        tmp_path, lambda s, r: rng.random(len(test_bits)) < rates[s]
    )
    report = tmp_path / "case.html"
    args = [ENROLL, "--test", TEST, "--population", population, "--population-vectors", vectors,
            "--report", report]  # fmt: skip
    result = CliRunner().invoke(app, ["compare", *map(str, args)])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert f"population {population} (24 recordings, 6 speakers; 2 left out" in output
    assert (
        "not adapted to the population: its 240 different-speaker comparisons respect the "
        "bound of calibrated LRs (LR >= 1: " in output
    )
    assert (
        "population check: 0 of 12 comparisons with 6 population speakers (0.0 %) reach" in output
    )
    assert "not exceptional" not in output
    page = report.read_text()
    assert "<h2>Population check</h2>" in page and "The case LR is exceptional" in page
    assert "(24 recordings, 6 speakers; 2 left out as case recordings/speakers)" in page
    assert "the scorer was not adapted to the population: its 240 different-speaker" in page
    assert (
        "The case&#x27;s recordings were checked against the calibration&#x27;s conditions: "
        "0 of its 24 recordings have a channel profile" in page
    )
    audit = json.loads(report.with_suffix(".audit.json").read_text())
    assert audit["population_adaptation"]["adapted"] is False
    assert audit["population_adaptation"]["bound"]["n_pairs"] == 240
    elub = audit["population_adaptation"]["elub"]  # not adapted, still bounded by its own pairs
    assert (elub["applied"], elub["n_target_pairs"], elub["n_nontarget_pairs"]) == (True, 36, 240)
    assert "; LRs within log10 LR [" in output
    roles = {entry["role"] for entry in audit["population"]}
    assert roles == {"population", "population ba vectors"}
    # without channel profiles of its own, the population cannot vouch for the case's
    # channel: the channel check runs as without it (the bundled clips pass it)
    assert "channel reference" in {entry["role"] for entry in audit["models"]}
    assert not any("channel" in warning for warning in audit["warnings"])
    assert audit["population_conditions"] == {
        "applied": False,
        "reason": "0 of its 24 recordings have a channel profile, more than 10 are needed "
        "(balr extract writes them)",
    }


def write_profiles(population, vectors, profile_of) -> None:
    """channel_profiles.tsv in `vectors` for the population's recordings: `profile_of(k)`
    for the k-th, written for its audio file, as `balr extract` writes them."""
    items = pd.read_csv(population, dtype=str)
    lines = []
    for k, item in enumerate(items.itertuples()):
        values = "\t".join(f"{v:.3f}" for v in profile_of(k))
        lines.append(f"{item.id}\t{item.audio}\t{values}")
    header = "\t".join(["id", "audio", *ChannelProfileLog.value_columns])
    (vectors / CHANNEL_FILE).write_text("\n".join([header, *lines]) + "\n")


def test_the_case_is_checked_against_the_channel_of_a_population_that_tested_it(
    test_bits, tmp_path
):
    """A population of speakers with their own attributes (the calibration holds there):
    with the channel profiles of the bundled clips' recordings the case's recordings are in
    its conditions (the enrollment clip, out of the calibration's without a population,
    too); with those of its own generated noise, the recording out of the calibration's
    conditions is out of both, and the warning says why."""
    rates = np.random.default_rng(2).uniform(0.05, 0.6, (N_SPEAKERS, len(test_bits)))
    rng = np.random.default_rng(3)
    population, vectors = write_population(
        tmp_path, lambda s, r: rng.random(len(test_bits)) < rates[s]
    )
    clips = sorted(CLIPS.glob("*/*.flac"))
    speech = [channel_profile(load_audio(path, 16000)) for path in clips]
    write_profiles(population, vectors, lambda k: speech[k % len(speech)])
    options = {"population": population, "population_vectors": vectors}
    comparison = compare_files([ENROLL], [TEST], **options)
    record = comparison.result.population_conditions
    assert (
        record["applied"] is True and record["n_profiles"] == 24
    )  # the 2 case recordings left out
    assert comparison.result.in_conditions is True
    assert "channel reference" in comparison.pipeline.model_files
    report = comparison.write_report(tmp_path / "case.html", 5)
    assert (
        "As it tested the calibration, the case&#x27;s recordings were checked against its "
        "conditions (the channel of 24 of its recordings) and the calibration&#x27;s"
    ) in report.read_text()

    items = pd.read_csv(population, dtype=str)
    noise = [channel_profile(load_audio(path, 16000)) for path in items.audio]
    write_profiles(population, vectors, lambda k: noise[k])
    comparison = compare_files([ENROLL], [TEST], **options)
    assert comparison.result.in_conditions is False
    warning = comparison.result.conditions_warning
    # out of both: unlike the population's channel, and unlike the calibration population
    # (the README's example says so of this enrollment clip without a population)
    assert "(enrollment recording's channel unlike the population's (profile distance " in warning
    assert "), and recording unlike the calibration population (similarity 0.50 < 0.51))" in (
        warning
    )
    assert "test recording" not in warning  # in the calibration's conditions: not out


def _calibration_of(population, vectors, path, sha256=None):
    """The shipped calibration, recorded as fitted on scores adapted to `population` (its
    vectors as given, case recordings included; `sha256`: another fingerprint)."""
    given = read_population(AudioDataset.from_path(population, output_dir=vectors), "pop")
    record = {"source": str(population), "n_recordings": 26, "n_speakers": 8,
              "sha256": sha256 or given.fingerprint()}  # fmt: skip
    shipped = CalibrationBundle.load(defaults.CALIBRATION)
    CalibrationBundle(shipped.calibrator, shipped.conditions, record).save(path)
    return path, given.fingerprint()


def _mismatch(warnings: list[str]) -> list[str]:
    return [w for w in warnings if w.startswith("the calibration was fitted on scores adapted")]


def test_without_the_calibrations_population_compare_warns_in_report_and_audit(test_bits, tmp_path):
    population, vectors = write_population(tmp_path, lambda s, r: test_bits)
    calibration, sha = _calibration_of(population, vectors, tmp_path / "cal" / "calibration.json")
    report = tmp_path / "case.html"
    args = [ENROLL, "--test", TEST, "--calibration", calibration, "--report", report]
    result = CliRunner().invoke(app, ["compare", *map(str, args)])
    assert result.exit_code == 0, result.output
    expected = (
        f"the calibration was fitted on scores adapted to the population {population} (26 "
        f"recordings, 8 speakers, sha256 {sha[:12]}), these scores to none: the LRs may "
        "mislead; give --population"
    )
    assert f"WARNING: {expected}" in " ".join(result.output.split())
    assert f"<b>Warning:</b> {html.escape(expected)}</p>" in report.read_text()
    audit = json.loads(report.with_suffix(".audit.json").read_text())
    assert _mismatch(audit["warnings"]) == [expected]
    assert report.read_text().count(html.escape(expected)) == 1  # at the top, not repeated
    assert ("warning", expected) in [(k, " ".join(v.split())) for k, v in record_summary(audit)]


def test_compare_with_the_calibrations_population_does_not_warn_with_another_does(
    test_bits, tmp_path
):
    population, vectors = write_population(tmp_path, lambda s, r: test_bits)
    same, sha = _calibration_of(population, vectors, tmp_path / "same" / "calibration.json")
    other, _ = _calibration_of(population, vectors, tmp_path / "other" / "c.json", "0" * 64)
    options = {"population": population, "population_vectors": vectors}
    result = compare_files([ENROLL], [TEST], calibration=same, **options).result
    assert result.population.excluded == ("case_copy", "case_enroll")  # sha256: as given
    assert _mismatch(result.warnings) == []
    result = compare_files([ENROLL], [TEST], calibration=other, **options).result
    assert _mismatch(result.warnings) == [
        f"the calibration was fitted on scores adapted to the population {population} (26 "
        f"recordings, 8 speakers, sha256 000000000000), these scores to another population "
        f"({population}, sha256 {sha[:12]}): the LRs may mislead"
    ]


def write_audio_population(root) -> pd.DataFrame:
    """A population of audio only: the halves of the bundled clips of the 3 speakers that
    are not the case's (12 recordings), and the same sped up by 15 % as 3 more speakers."""
    rows = []
    for path in sorted(CLIPS.glob("*/*.flac")):
        if path.parent.name == ENROLL.parent.name:
            continue
        wave = load_audio(path, 16000)
        for voice, audio in (("", wave), ("fast", resample(wave, 16000, round(16000 / 1.15)))):
            for half, part in enumerate(np.array_split(audio, 2)):
                item = f"{voice}{path.parent.name}_{path.stem}_{half}"
                sf.write(root / f"{item}.wav", part, 16000)
                rows.append((item, str(root / f"{item}.wav"), f"{voice}{path.parent.name}"))
    items = pd.DataFrame(rows, columns=["id", "audio", "speaker"])
    items.to_csv(root / "pop.csv", index=False)
    return items


def test_a_population_of_audio_is_extracted_in_batches_with_its_channel_profiles(
    tmp_path, monkeypatch
):
    """Without vectors, `compare` extracts the population's recordings a batch at a time,
    each one's channel profile measured on the audio it decoded: the same bits, speech and
    profiles whatever the batch size."""
    import balr.compare.population as module

    items = write_audio_population(tmp_path)
    pipeline = ComparisonPipeline.from_files(
        build_embedding_model(compare_config().embeddings.model)
    )
    whole = module.read_comparison_population(pipeline, tmp_path / "pop.csv", None, [ENROLL, TEST])
    monkeypatch.setattr(module, "EXTRACTION_BATCH", 5)
    batched = module.read_comparison_population(
        pipeline, tmp_path / "pop.csv", None, [ENROLL, TEST]
    )
    assert (len(items), batched.population.n_speakers) == (24, 6)
    np.testing.assert_array_equal(whole.population.bits, batched.population.bits)
    np.testing.assert_array_equal(whole.speech_s, batched.speech_s)
    assert sorted(batched.profiles) == sorted(items.id)
    for item in items.itertuples():
        expected = channel_profile(load_audio(item.audio, 16000))
        np.testing.assert_allclose(batched.profiles[item.id], expected, rtol=0, atol=1e-4)
        np.testing.assert_array_equal(whole.profiles[item.id], batched.profiles[item.id])
