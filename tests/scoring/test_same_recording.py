"""`score test` flags trials that compare a recording with itself (the same id, the same
decoded audio or a near-duplicate) and leaves them out of EER and Cllr unless asked."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from balr.audio import load_audio
from balr.data import AudioDataset, load_trials
from balr.evaluation.metrics import compute_metrics
from balr.scoring.config import ScoreSettings
from balr.scoring.jobs import TrialScoring, score_trials_file
from balr.scoring.same_recording import find_same_recording_trials
from tests.conftest import EXAMPLES

CLIP = EXAMPLES / "audio" / "id00906" / "00014.flac"
OTHER = EXAMPLES / "audio" / "id00906" / "00028.flac"


def test_near_duplicates_under_other_ids_are_flagged(tmp_path):
    wave = load_audio(CLIP)
    sf.write(tmp_path / "rewrapped.wav", wave, 16000, subtype="PCM_16")
    sf.write(tmp_path / "trimmed.wav", wave[160:], 16000, subtype="PCM_16")
    audio_of = {
        "a": CLIP,
        "b": tmp_path / "rewrapped.wav",
        "c": tmp_path / "trimmed.wav",
        "d": OTHER,
        "e": tmp_path / "missing.wav",  # no file: compared by id only
    }
    enrollment = [["a"], ["a"], ["a"], ["d", "a"], ["e"], ["e"], ["b"]]
    test = [["b"], ["c"], ["d"], ["c"], ["e"], ["a"], ["c"]]
    same = find_same_recording_trials(enrollment, test, audio_of)
    assert same.flags.tolist() == [True, True, False, True, True, False, True]
    assert same.reasons[0] == "a and b: identical decoded audio at 16 kHz"
    assert same.reasons[1].startswith("a and c: near-duplicate: fingerprint correlation 1.00")
    assert same.reasons[4] == "the same recording id e"
    assert (same.count, same.audio_checked, same.n_recordings) == (5, 4, 5)
    assert same.left_out().tolist() == same.flags.tolist()
    kept = find_same_recording_trials(enrollment, test, audio_of, keep=True)
    assert not kept.left_out().any() and kept.metrics()["same_recording_in_metrics"] is True


@pytest.fixture
def voxceleb_trials(voxceleb2, tmp_path):
    """The bundled VoxCeleb2 trials.csv (9 recordings against themselves, 9 different-
    speaker pairs) plus 9 genuine same-speaker trials (another clip of each test speaker),
    with generated speaker-dependent embeddings; returns (dataset CSV, trials, vectors)."""
    root = tmp_path / "voxceleb_trials"
    data = voxceleb2 / "metadata.csv"
    dataset = AudioDataset.from_path(data, output_dir=root / "vectors")
    rng = np.random.default_rng(0)
    speakers = sorted(set(dataset.speakers))
    centres = {s: rng.standard_normal(32) for s in speakers}
    with dataset.vector_writer("emb") as writer:
        for index, item in enumerate(dataset.items):
            vector = centres[item.speaker] + 0.8 * rng.standard_normal(32)
            writer.put(index, vector.astype(np.float32))
    trials = pd.read_csv(voxceleb2 / "trials.csv", sep="\t")
    assert (trials.enrollment == trials.test).sum() == 9
    genuine = []
    for test_id in trials.test[:9]:
        other = next(i for i in dataset.ids if i != test_id and i.split("/")[0] in test_id)
        genuine.append((other, test_id))
    trials = pd.concat([trials, pd.DataFrame(genuine, columns=["enrollment", "test"])])
    trials.to_csv(root / "trials.tsv", sep="\t", index=False)
    return data, root / "trials.tsv", root / "vectors"


@pytest.mark.slow
def test_self_trials_of_the_voxceleb_trials_are_left_out(voxceleb_trials, tmp_path):
    data, trials_path, vectors = voxceleb_trials
    run = {}
    for keep in (False, True):
        run[keep] = score_trials_file(
            data,
            trials_path,
            TrialScoring(
                save_dir=tmp_path / f"keep{keep}",
                vectors_dir=vectors,
                no_calibration=True,
                settings=ScoreSettings.from_overrides(["scorer=cosine", "scorer.vectors=emb"]),
                keep_same_recording=keep,
            ),
        )
    scores = pd.read_csv(tmp_path / "keepFalse" / "scores.csv", sep="\t")
    assert scores.same_recording.tolist() == [True] * 9 + [False] * 18
    labels = load_trials(trials_path).labels(AudioDataset.from_path(data))
    assert labels.tolist() == [1] * 9 + [0] * 9 + [1] * 9
    values = scores.scores.to_numpy()
    np.testing.assert_allclose(values[:9], 1.0, atol=1e-6)  # cosine of a vector with itself
    left_out = json.loads((tmp_path / "keepFalse" / "metrics.json").read_text())
    kept = json.loads((tmp_path / "keepTrue" / "metrics.json").read_text())
    assert (left_out["n_target"], left_out["n_nontarget"], left_out["n_same_recording"]) == (
        9,
        9,
        9,
    )
    assert (kept["n_target"], kept["n_same_recording"], kept["same_recording_in_metrics"]) == (
        18,
        9,
        True,
    )
    assert left_out["same_recording_in_metrics"] is False
    expected = compute_metrics(values[9:], labels[9:])
    assert left_out["eer"] == pytest.approx(expected["eer"])
    assert left_out["cllr"] == pytest.approx(expected["cllr"])
    assert kept["cllr"] == pytest.approx(compute_metrics(values, labels)["cllr"])
    assert kept["eer"] <= left_out["eer"] and kept["cllr"] != left_out["cllr"]
    assert "; 9 same-recording trials left out of EER and Cllr: --keep-same-recording keeps" in (
        run[False].summary()
    )
    assert "9 same-recording trials kept in EER and Cllr" in run[True].summary()


def test_the_bundled_example_trials_have_no_same_recording_trial():
    dataset = AudioDataset.from_path(EXAMPLES / "audio" / "metadata.csv")
    trials = load_trials(EXAMPLES / "audio" / "trials.tsv")
    same = find_same_recording_trials(
        trials.enrollment, trials.test, {item.id: item.audio for item in dataset.items}
    )
    assert (len(trials), same.count, same.audio_checked, same.n_recordings) == (28, 0, 8, 8)
    assert same.summary() == ""



@pytest.mark.slow
def test_by_id_only_flags_the_same_ids_without_decoding(voxceleb_trials, tmp_path):
    data, trials_path, vectors = voxceleb_trials
    options = TrialScoring(
        save_dir=tmp_path / "by_id",
        vectors_dir=vectors,
        no_calibration=True,
        settings=ScoreSettings.from_overrides(["scorer=cosine", "scorer.vectors=emb"]),
        same_recording_by_id=True,
    )
    score_trials_file(data, trials_path, options)
    metrics = json.loads((tmp_path / "by_id" / "metrics.json").read_text())
    assert (metrics["n_same_recording"], metrics["same_recording_audio_checked"]) == (9, 0)
