"""`balr extract` writes each recording's channel profile (`channel_profiles.tsv`) and
`balr score test` checks the trials' recordings by it against the shipped calibration's
channel reference, on the bundled clips (4 speakers x 2 recordings, 28 trials) and on the
same clips through a telephone channel (`benchmarks/channel_variants.py`)."""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from balr import defaults
from balr.audio import audio_info, load_audio
from balr.cli.main import main
from balr.conditions.channel import channel_profile
from balr.data.channel_profiles import CHANNEL_FILE, read_channel_profiles
from balr.embeddings.extract import extract_dataset_embeddings
from tests.conftest import EXAMPLES, REPO_ROOT, extraction_run

AUDIO = EXAMPLES / "audio"
TRIALS = AUDIO / "trials.tsv"
N_TRIALS = 28
CHANNEL = "channel unlike the calibration recordings' (profile distance "
FAST = ("embeddings.num_workers=0",)

pytestmark = pytest.mark.slow


def balr(*args) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return exit_info.value.code or 0


def apply_channel(wave: np.ndarray, name: str, item_id: str) -> np.ndarray:
    """`benchmarks/channel_variants.py`'s `apply_channel` (a script, not a package)."""
    path = REPO_ROOT / "benchmarks" / "channel_variants.py"
    spec = importlib.util.spec_from_file_location("channel_variants", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.apply_channel(wave, name, item_id)


def examples_csv(folder, rows: slice = slice(None), audio_of=None):
    """The bundled clips' metadata with absolute audio paths (or `audio_of(id, path)`)."""
    items = pd.read_csv(AUDIO / "metadata.csv", dtype=str).iloc[rows]
    items["audio"] = [str(AUDIO / a) for a in items.audio]
    if audio_of is not None:
        items["audio"] = [audio_of(i, a) for i, a in zip(items.id, items.audio, strict=True)]
    path = folder / f"items{len(list(folder.glob('items*.csv')))}.csv"
    items.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """The clips' vectors, extracted in two runs (4 recordings, then all 8: resumed), and the
    telephone copies' vectors, each folder with its channel_profiles.tsv."""
    folder = tmp_path_factory.mktemp("channel")
    vectors, full = folder / "vectors", examples_csv(folder)
    assert balr("extract", examples_csv(folder, slice(0, 4)), "--save-dir", vectors, *FAST) == 0
    assert balr("extract", full, "--save-dir", vectors, *FAST) == 0
    assert balr("binarize", full, "--save-dir", vectors) == 0
    (folder / "phone").mkdir()

    def telephone(item_id: str, audio: str) -> str:
        out = folder / "phone" / f"{item_id.replace('/', '_')}.wav"
        sf.write(out, apply_channel(load_audio(audio, 16000), "telephone", item_id), 16000)
        return str(out)

    phone, phone_vectors = examples_csv(folder, audio_of=telephone), folder / "phone_vectors"
    assert balr("extract", phone, "--save-dir", phone_vectors, *FAST) == 0
    assert balr("binarize", phone, "--save-dir", phone_vectors) == 0
    return {"clean": (full, vectors), "telephone": (phone, phone_vectors), "folder": folder}


def score_test(csv, vectors, out, *args) -> tuple[pd.DataFrame, dict]:
    assert (
        balr("score", "test", csv, TRIALS, "--vectors-dir", vectors, "--save-dir", out, *args) == 0
    )
    scores = pd.read_csv(out / "scores.csv", sep="\t", keep_default_na=False)
    return scores, json.loads((out / "metrics.json").read_text())


def test_extract_writes_each_recordings_profile_once_to_the_written_precision(clips):
    csv, vectors = clips["clean"]
    items = pd.read_csv(csv, dtype=str)
    lines = (vectors / CHANNEL_FILE).read_text().splitlines()
    assert [line.split("\t")[0] for line in lines[1:]] == sorted(items.id)  # resumed: once each
    rows = read_channel_profiles(vectors)
    for item_id, audio in zip(items.id, items.audio, strict=True):
        path, profile = rows[item_id]
        assert path == audio
        expected = channel_profile(load_audio(audio, 16000))
        np.testing.assert_allclose(profile, expected, rtol=0, atol=0.0005 + 1e-5)


def test_a_windowed_recording_gets_its_windows_profiles_averaged_by_samples(tmp_path):
    clip = AUDIO / "id00906" / "00028.flac"
    shutil.copy(clip, tmp_path / clip.name)
    run = extraction_run(tmp_path / "out", "embeddings.max_duration_s=2", "embeddings.window_s=2")
    assert extract_dataset_embeddings(tmp_path / clip.name, run).succeeded == 1
    frames, rate = audio_info(clip)
    parts = math.ceil(frames / rate / 2)
    step = frames / rate / parts
    windows = [load_audio(clip, 16000, offset_s=p * step, duration_s=step) for p in range(parts)]
    weights = np.array([len(w) for w in windows], float)
    expected = np.average([channel_profile(w) for w in windows], axis=0, weights=weights)
    ((_, profile),) = read_channel_profiles(tmp_path / "out").values()
    assert parts == 3
    np.testing.assert_allclose(profile, expected, rtol=0, atol=0.0005 + 1e-5)
    whole = channel_profile(load_audio(clip, 16000))
    assert np.abs(profile - whole).max() > 0.1  # an approximation of the whole file's


def test_the_clips_channel_is_covered_and_the_telephone_copies_are_all_flagged(clips, tmp_path):
    scores, metrics = score_test(*clips["clean"], tmp_path / "clean")
    check = metrics["channel_check"]
    assert check == {
        "recordings_checked": 8, "recordings_flagged": 0, "recordings_without_profile": 0,
        "stale_profiles": 0, "trials_flagged": 0, "threshold": check["threshold"],
    }  # fmt: skip
    assert not scores.conditions_reason.str.contains("channel").any()
    scores, metrics = score_test(*clips["telephone"], tmp_path / "phone")
    check = metrics["channel_check"]
    assert (check["recordings_flagged"], check["trials_flagged"]) == (8, N_TRIALS)
    assert not scores.in_conditions.any()
    for reason in scores.conditions_reason:
        assert f"enrollment recording's {CHANNEL}" in reason
        assert f"test recording's {CHANNEL}" in reason


def test_a_stale_or_missing_profile_is_not_used_and_counted(clips, tmp_path):
    csv, vectors = clips["telephone"]
    copied = shutil.copytree(vectors, tmp_path / "vectors")
    lines = (copied / CHANNEL_FILE).read_text().splitlines()
    stale, missing = lines[1].split("\t")[0], lines[2].split("\t")[0]
    lines[1] = lines[1].replace("\t/", "\t/moved/", 1)  # the audio path of another file
    del lines[2]
    (copied / CHANNEL_FILE).write_text("\n".join(lines) + "\n")
    scores, metrics = score_test(csv, copied, tmp_path / "out")
    check = metrics["channel_check"]
    assert (check["recordings_checked"], check["stale_profiles"]) == (6, 1)
    assert check["recordings_without_profile"] == 1
    pair = (scores.enrollment == stale) & (scores.test == missing)
    assert (
        pair.sum() == 1
        and not scores.conditions_reason[pair].str.contains(CHANNEL, regex=False).any()
    )
    other = (scores.enrollment == stale) & (scores.test != missing)
    for reason in scores.conditions_reason[other]:
        assert f"test recording's {CHANNEL}" in reason
        assert f"enrollment recording's {CHANNEL}" not in reason


def test_a_user_calibration_runs_no_channel_check(clips, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="balr.conditions.jobs")
    for name in ("calibration.json", "calibration.conditions.safetensors"):
        shutil.copy(defaults.RESOURCE_DIR / name, tmp_path / name)
    scores, metrics = score_test(
        *clips["telephone"], tmp_path / "out", "--calibration", tmp_path / "calibration.json"
    )
    assert metrics["channel_check"] is None
    assert not scores.conditions_reason.str.contains(CHANNEL, regex=False).any()
    assert "no channel check: the channel reference describes the shipped calibration" in (
        caplog.text
    )


def test_the_run_record_hashes_what_the_channel_check_read(clips, tmp_path):
    csv, vectors = clips["telephone"]
    score_test(csv, vectors, tmp_path / "out")
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    profiles = [e for e in record["inputs"] if e["role"] == "channel profiles"]
    reference = [e for e in record["models"] if e["role"] == "channel reference"]
    assert [e["path"] for e in profiles] == [str((vectors / CHANNEL_FILE).resolve())]
    assert [e["path"] for e in reference] == [str(defaults.CHANNEL_REFERENCE.resolve())]
    assert all(len(e["sha256"]) == 64 for e in profiles + reference)


def test_a_population_that_cannot_vouch_for_the_channel_keeps_the_channel_check(
    clips, tmp_path, caplog
):
    """A population of the case's (telephone) conditions without channel profiles of its
    own: the telephone copies' BA vectors again 3 times under other ids and speaker names
    (24 recordings of 12 speakers). It cannot vouch for the trials' channel, so the channel
    check runs as without a population, says why, and is in the audit record."""
    caplog.set_level(logging.INFO, logger="balr.conditions.jobs")
    csv, vectors = clips["telephone"]
    items = pd.read_csv(csv, dtype=str)
    # no audio column: the copies' vectors are named after their ids
    copies = [
        pd.DataFrame({"id": items.id + f"_copy{k}", "speaker": items.speaker + f"_c{k}"})
        for k in range(3)
    ]
    dataset_vectors = shutil.copytree(vectors, tmp_path / "vectors")
    from balr.data import AudioDataset

    source = AudioDataset.from_path(csv, output_dir=vectors)
    rows, ba = source.stack_vectors("ba")
    pop_csv = tmp_path / "pop.csv"
    pd.concat(copies).to_csv(pop_csv, index=False)
    population = AudioDataset.from_path(pop_csv, output_dir=dataset_vectors)
    with population.vector_writer("ba") as writer:
        for index in range(len(population.items)):
            writer.put(index, ba[index % len(ba)].astype(np.float32))
    scores, metrics = score_test(csv, dataset_vectors, tmp_path / "out", "--population", pop_csv)
    assert metrics["population_conditions"]["applied"] is False
    check = metrics["channel_check"]
    assert (check["recordings_flagged"], check["trials_flagged"]) == (8, N_TRIALS)
    assert scores.conditions_reason.str.contains(CHANNEL, regex=False).all()
    assert "cannot vouch for the trials' channel" in caplog.text
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert "channel reference" in [e["role"] for e in record["models"]]


def test_extract_profiles_recordings_whose_vectors_it_keeps(clips, tmp_path, caplog):
    """Vectors extracted before balr wrote channel profiles: a later `balr extract` keeps
    every vector (nothing embedded again) and writes the missing profiles, equal to those an
    extraction writes; a third run has nothing left to do."""
    csv, vectors = clips["clean"]
    copied = shutil.copytree(vectors, tmp_path / "vectors")
    written = read_channel_profiles(copied)
    (copied / CHANNEL_FILE).unlink()
    before = {p.name: p.read_bytes() for p in copied.rglob("*_emb.txt")}
    assert len(before) == 8
    caplog.set_level(logging.INFO, logger="balr.embeddings.batch")
    assert balr("extract", csv, "--save-dir", copied, *FAST) == 0
    assert {p.name: p.read_bytes() for p in copied.rglob("*_emb.txt")} == before
    assert "channel profiles of 8 recordings whose vectors are kept" in caplog.text
    again = read_channel_profiles(copied)
    assert sorted(again) == sorted(written)
    for item_id, (path, profile) in again.items():
        assert path == written[item_id][0]
        np.testing.assert_allclose(profile, written[item_id][1], rtol=0, atol=1e-3)
    caplog.clear()
    assert balr("extract", csv, "--save-dir", copied, *FAST) == 0
    assert "whose vectors are kept" not in caplog.text


def population_beside(clips, folder, channel: str):
    """The telephone clips' vectors copied to `folder/vectors` with a population of 24
    recordings of 12 speakers through `channel` (`telephone` or `clean`): those clips' audio
    (copied beside the telephone clips, where their vectors' folder keeps its recordings)
    and channel profiles under new ids, and BA vectors of their own (seeded bits at the
    clips' activation rate, each speaker's two recordings 10 bits apart), so that its
    speakers are as different as speakers are and it tests the calibration."""
    csv, phone_vectors = clips["telephone"]
    copied = shutil.copytree(phone_vectors, folder / "vectors")
    source_csv, source_vectors = clips[channel]
    source = pd.read_csv(source_csv, dtype=str)
    audio_dir = pd.read_csv(csv, dtype=str).audio.map(lambda a: Path(a).parent)[0]
    audio_dir = audio_dir / f"population_{folder.parent.name}_{folder.name}"
    audio_dir.mkdir()
    audio = [shutil.copy(source.audio[k % 8], audio_dir / f"pop{k}.wav") for k in range(24)]
    rows = [(f"pop{k}", f"ps{k // 2}", str(audio[k]), source.id[k % 8]) for k in range(24)]
    pop = pd.DataFrame(rows, columns=["id", "speaker", "audio", "source"])
    pop_csv = folder / "pop.csv"
    pop[["id", "audio", "speaker"]].to_csv(pop_csv, index=False)
    from balr.data import AudioDataset

    _, ba = AudioDataset.from_path(source_csv, output_dir=source_vectors).stack_vectors("ba")
    rng = np.random.default_rng(0)
    rate = ba[..., 0].mean()
    population = AudioDataset.from_path(pop_csv, output_dir=copied)
    with population.vector_writer("ba") as writer:
        for k in range(0, 24, 2):
            bits = (rng.random(ba.shape[1]) < rate).astype(np.float32)
            other = bits.copy()
            flip = rng.choice(len(bits), 10, replace=False)
            other[flip] = 1 - other[flip]
            writer.put(k, np.stack([bits, 1 - bits], axis=-1))
            writer.put(k + 1, np.stack([other, 1 - other], axis=-1))
    profiles = read_channel_profiles(source_vectors)
    durations = dict(
        line.split("\t")[:2]
        for line in (source_vectors / "speech_durations.tsv").read_text().splitlines()[1:]
    )
    with open(copied / CHANNEL_FILE, "a") as out:
        for row in pop.itertuples():
            values = "\t".join(f"{v:.3f}" for v in profiles[row.source][1])
            out.write(f"{row.id}\t{row.audio}\t{values}\n")
    with open(copied / "speech_durations.tsv", "a") as out:
        out.writelines(f"{row.id}\t{durations[row.source]}\n" for row in pop.itertuples())
    return csv, copied, pop_csv


POPULATION_CHANNEL = "channel unlike the population's (profile distance "


def test_a_population_that_tested_the_calibration_checks_the_trials_against_its_channel(
    clips, tmp_path, capsys
):
    """Telephone trials against a telephone population: its channel, none flagged by it
    (though the calibration's channel check flags every one); against a population of the
    clips as recorded: every recording unlike it and unlike the calibration's. The record
    says which check ran, and run.json hashes both sets of profiles and the channel
    reference whose scale it uses."""
    csv, vectors, pop_csv = population_beside(clips, tmp_path / "phone", "telephone")
    scores, metrics = score_test(csv, vectors, tmp_path / "out_phone", "--population", pop_csv)
    assert metrics["population"]["adaptation"]["bound"] is not None
    record = metrics["population_conditions"]
    assert record["applied"] is True and record["n_profiles"] == 24
    assert (record["recordings_checked"], record["recordings_flagged"]) == (8, 0)
    assert record["trials_checked"] == N_TRIALS
    assert not scores.conditions_reason.str.contains("channel unlike").any()
    assert not scores.conditions_reason.str.contains("calibration population").any()
    run = json.loads((tmp_path / "out_phone" / "run.json").read_text())
    roles = {e["role"]: e for e in run["inputs"] + run["models"]}
    assert roles["population channel profiles"]["path"] == str((vectors / CHANNEL_FILE).resolve())
    assert len(roles["channel reference"]["sha256"]) == 64

    csv, vectors, pop_csv = population_beside(clips, tmp_path / "clean", "clean")
    capsys.readouterr()
    scores, metrics = score_test(csv, vectors, tmp_path / "out_clean", "--population", pop_csv)
    printed = " ".join(capsys.readouterr().out.split())
    assert f"{N_TRIALS} of {N_TRIALS} trials out of the population's and the calibration's" in (
        printed
    )
    record = metrics["population_conditions"]
    assert (record["recordings_flagged"], record["trials_flagged"]) == (8, N_TRIALS)
    assert not scores.in_conditions.any()
    for reason in scores.conditions_reason:  # out of both: the calibration's channel too
        assert f"enrollment recording's {POPULATION_CHANNEL}" in reason
        assert f"test recording's {POPULATION_CHANNEL}" in reason
        assert "), and " in reason and CHANNEL in reason


def test_a_population_without_channel_profiles_keeps_the_calibrations_check(clips, tmp_path):
    csv, vectors, pop_csv = population_beside(clips, tmp_path / "phone", "telephone")
    lines = (vectors / CHANNEL_FILE).read_text().splitlines()
    kept = [line for line in lines if not line.startswith("pop")]
    (vectors / CHANNEL_FILE).write_text("\n".join(kept) + "\n")
    scores, metrics = score_test(csv, vectors, tmp_path / "out", "--population", pop_csv)
    assert metrics["population_conditions"] == {
        "applied": False,
        "reason": "0 of its 24 recordings have a channel profile, more than 10 are needed "
        "(balr extract writes them)",
    }
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert "population channel profiles" not in [e["role"] for e in run["inputs"]]
