"""List formats, feature files, random windows, generated pairs and the validation EER."""

import random
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from balr.doublemha import data, features
from balr.doublemha.config import TrainConfig
from balr.doublemha.trainer import DoubleMHATrainer
from balr.errors import DataError
from balr.evaluation.metrics import eer
from tests.conftest import EXAMPLES


def test_train_labels_and_pairs_are_parsed(tmp_path):
    labels = tmp_path / "train.ndx"
    labels.write_text("spk1/a 0 -1\nspk1/b 0 -1\n\nspk2/a 1 -1\n")
    assert data.read_train_labels(labels) == [("spk1/a", 0), ("spk1/b", 0), ("spk2/a", 1)]
    clients = tmp_path / "clients.ndx"
    clients.write_text("spk1/a spk1/b\nspk2/a spk2/b\n")
    assert data.read_pairs(clients) == [("spk1/a", "spk1/b"), ("spk2/a", "spk2/b")]
    files = tmp_path / "files.lst"
    files.write_text("audios/a1\naudios/a2\n")
    assert data.read_file_list(files) == ["audios/a1", "audios/a2"]


def test_malformed_lists_name_file_and_line(tmp_path):
    labels = tmp_path / "train.ndx"
    labels.write_text("a 0 -1\nb zero -1\n")
    with pytest.raises(DataError, match=r"train.ndx:2: label 'zero'"):
        data.read_train_labels(labels)
    pairs = tmp_path / "clients.ndx"
    pairs.write_text("a b c\n")
    with pytest.raises(DataError, match=r"clients.ndx:1: expected 'pathA pathB'"):
        data.read_pairs(pairs)
    with pytest.raises(DataError, match="not found"):
        data.read_pairs(tmp_path / "missing.ndx")


def test_list_item_finds_flac_when_no_wav(tmp_path):
    (tmp_path / "spk").mkdir()
    sf.write(tmp_path / "spk" / "utt.flac", np.zeros(1600, np.float32), 16000)
    item = data.list_item(tmp_path, "spk/utt", 3)
    assert item.audio_path == tmp_path / "spk" / "utt.flac"
    assert item.features_path == tmp_path / "spk" / "utt.npy"
    assert item.label == 3
    assert data.list_item(tmp_path, "spk/none").audio_path is None


@pytest.mark.slow
def test_precompute_writes_npy_and_skips_bad_audio(tmp_path, caplog):
    clips = EXAMPLES / "audio"
    good = data.audio_item(
        "good", clips / "id00906" / "00014.flac", features_dir=tmp_path, root=clips
    )
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio at all")
    bad = data.audio_item("bad", broken)
    counts = features.precompute_features([good, bad])
    assert counts == {"written": 1, "existing": 0, "failed": 1}
    assert "broken.wav" in caplog.text
    saved = np.load(tmp_path / "id00906" / "00014.npy", allow_pickle=False)
    assert saved.dtype == np.float32 and saved.shape == (1 + (47488 - 512) // 160, 80)  # 2.968 s
    assert features.precompute_features([good])["existing"] == 1
    loaded = features.FeatureLoader("cmn")(good)
    np.testing.assert_allclose(loaded, saved - saved.mean(0), atol=1e-4)


def test_random_window_repeats_short_recordings():
    feats = np.arange(10, dtype=np.float32)[:, None].repeat(80, 1)
    window = data.random_window(feats, 25, random.Random(0))
    assert window.shape == (25, 80)
    assert set(np.unique(window[:, 0])) == set(range(10))
    long = data.random_window(np.arange(50, dtype=np.float32)[:, None], 20, random.Random(1))
    assert np.all(np.diff(long[:, 0]) == 1)  # one contiguous piece


def test_generated_pairs_have_correct_labels():
    speakers = ["a", "a", "b", "b", "b", "c"]
    first, second, labels = data.generate_pairs(speakers, max_pairs=100)
    spk = np.array(speakers)
    np.testing.assert_array_equal(labels, (spk[first] == spk[second]).astype(np.int8))
    assert labels.sum() == 4  # a: 1 pair, b: 3 pairs
    assert (labels == 0).sum() == 4


def test_validation_eer_is_the_evaluation_eer():
    """Validation scores pairs with `balr.evaluation.metrics.eer`: the crossing of FAR and FRR."""
    assert eer([0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0])[0] == 0.0
    # accepting {0.9, 0.6}: FRR 1/2 (0.4 rejected), FAR 1/2 (0.6 accepted) -> EER 0.5
    assert eer([0.9, 0.4, 0.6, 0.1], [1, 1, 0, 0])[0] == 0.5
    # all scores tied: the only thresholds give (FAR, FRR) = (0, 1) or (1, 0) -> 0.5
    assert eer([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0])[0] == 0.5
    # (FAR, FRR) = (1/2, 1/3) at 0.5 and (1/2, 2/3) at 0.6: the staircases cross at 1/2
    # (the former rule averaged the nearest operating point instead: 5/12)
    assert eer([0.9, 0.5, 0.4, 0.6, 0.1], [1, 1, 1, 0, 0])[0] == pytest.approx(0.5)


def test_dataloader_workers_draw_different_windows(tmp_path):
    # One recording whose frame t holds the value t: a window's first value is its offset.
    np.save(tmp_path / "ramp.npy", np.arange(1000, dtype=np.float32)[:, None].repeat(80, 1))
    items = [data.list_item(tmp_path, "ramp", label=0)] * 8
    dataset = data.WindowDataset(items, features.FeatureLoader("none"), window_size=0.1, seed=3)
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=2)
    offsets = [int(window[0, 0, 0]) for window, _ in loader]
    assert len(offsets) == 8 and all(0 <= o <= 990 for o in offsets)
    # Workers 0 and 1 take batches 0, 2, 4, 6 and 1, 3, 5, 7. Copies of one generator gave
    # both the same offsets (offsets[0] == offsets[1], ...); their own generators differ.
    assert offsets[0::2] != offsets[1::2]


def _colliding_clips(folder):
    """Two different bundled recordings saved as spk1/00001.flac and spk2/00001.flac."""
    clips = EXAMPLES / "audio"
    sources = [clips / "id00906" / "00014.flac", clips / "id07531" / "00023.flac"]
    for speaker, source in zip(("spk1", "spk2"), sources, strict=True):
        (folder / speaker).mkdir(parents=True)
        shutil.copy(source, folder / speaker / "00001.flac")
    return sources


def test_features_of_recordings_sharing_a_basename_keep_their_own_files(tmp_path):
    sources = _colliding_clips(tmp_path / "audio")
    counts = data.write_features(tmp_path / "audio", out_dir=tmp_path / "feats")
    assert counts == {"written": 2, "existing": 0, "failed": 0}
    for speaker, source in zip(("spk1", "spk2"), sources, strict=True):
        saved = np.load(tmp_path / "feats" / speaker / "00001.npy", allow_pickle=False)
        np.testing.assert_array_equal(saved, features.file_features(source))
    assert sorted(p.name for p in (tmp_path / "feats").rglob("*.npy")) == ["00001.npy"] * 2


def test_csv_audio_outside_its_folder_is_mirrored_below_a_common_folder(tmp_path):
    _colliding_clips(tmp_path / "audio")
    (tmp_path / "lists").mkdir()
    csv = tmp_path / "lists" / "train.csv"
    spk2 = tmp_path / "audio" / "spk2" / "00001.flac"
    csv.write_text(f"audio,speaker\n../audio/spk1/00001.flac,a\n{spk2},b\n")
    paths = [item.features_path for item in data.feature_items(csv, out_dir=tmp_path / "f")]
    # the deepest folder holding the CSV's folder and both recordings is tmp_path
    assert paths == [tmp_path / "f" / "audio" / s / "00001.npy" for s in ("spk1", "spk2")]
    cfg = TrainConfig(train_csv=str(csv), features_dir=str(tmp_path / "f"))
    assert [item.features_path for item in data.training_set(cfg).items] == paths


def test_two_recordings_sharing_a_feature_file_are_refused_naming_both(tmp_path):
    clips = EXAMPLES / "audio" / "id00906"
    shutil.copy(clips / "00014.flac", tmp_path / "utt.flac")
    sf.write(tmp_path / "utt.wav", sf.read(clips / "00028.flac")[0], 16000)
    for out_dir in (None, tmp_path / "feats"):
        with pytest.raises(DataError, match=r"'utt\.flac' .*'utt\.wav' .*utt\.npy"):
            data.feature_items(tmp_path, out_dir=out_dir)
    listed = tmp_path / "files.lst"
    listed.write_text("utt.flac\nutt.wav\n")
    with pytest.raises(DataError, match=r"files\.lst: items 'utt\.flac' .*'utt\.wav'"):
        data.feature_items(listed, tmp_path)
    assert not list(tmp_path.rglob("*.npy"))


def test_training_and_validation_recordings_sharing_a_feature_file_are_refused(tmp_path):
    _colliding_clips(tmp_path / "train")
    _colliding_clips(tmp_path / "valid")
    (tmp_path / "valid" / "spk3").mkdir()
    shutil.copy(EXAMPLES / "audio/id01184/00133.flac", tmp_path / "valid/spk3/00001.flac")
    for split, speakers in (("train", "ab"), ("valid", "aab")):
        rows = [f"spk{n}/00001.flac,{s}" for n, s in enumerate(speakers, 1)]
        (tmp_path / split / "list.csv").write_text("\n".join(["audio,speaker", *rows]) + "\n")
    cfg = TrainConfig(
        train_csv=str(tmp_path / "train" / "list.csv"),
        valid_csv=str(tmp_path / "valid" / "list.csv"),
        features_dir=str(tmp_path / "feats"),
    )
    train, valid = data.training_set(cfg), data.validation_pairs(cfg)  # each one is fine
    # train/spk1/00001.flac and valid/spk1/00001.flac both map to feats/spk1/00001.npy
    with pytest.raises(DataError, match=r"'spk1/00001\.flac' .*train.*'spk1/00001\.flac' .*valid"):
        DoubleMHATrainer(cfg, tmp_path / "run", "cpu").fit(train, valid)


@pytest.mark.difference("DMHA-random-slicing")
def test_random_slice_draws_lengths_as_the_reference_randrange():
    """The reference cuts to `randrange(200, window_size * 100)`: 200..349 frames for 3.5 s."""
    batch = torch.zeros(2, 350, 80)
    lengths = {data.random_slice(batch, random.Random(seed)).shape[1] for seed in range(3000)}
    assert min(lengths) == 200
    assert max(lengths) == 349
    expected = {random.Random(seed).randrange(200, 350) for seed in range(3000)}
    assert lengths == expected
