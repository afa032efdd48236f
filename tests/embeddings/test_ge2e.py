"""Default GE2E model: offline, safe weights, same as resemblyzer, separates real speakers."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from balr.audio import load_audio
from balr.embeddings import build_embedding_model
from balr.embeddings.ge2e import GE2EConfig, GE2EEncoder, load_ge2e_state
from balr.errors import ModelError
from tests.conftest import EXAMPLES, VOXCELEB1


def batch_of(waves: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(w) for w in waves])
    padded = torch.zeros(len(waves), int(lengths.max()))
    for row, wave in enumerate(waves):
        padded[row, : len(wave)] = torch.from_numpy(wave)
    return padded, lengths


def example_clips(seconds: float = 5.0) -> tuple[list[np.ndarray], list[str]]:
    """The 8 bundled VoxCeleb2 clips of 4 speakers (their first `seconds`), speakers."""
    paths = sorted((EXAMPLES / "audio").glob("*/*.flac"))
    waves = [load_audio(p, 16000, duration_s=seconds) for p in paths]
    return waves, [p.parent.name for p in paths]


def voxceleb_clips(root: Path, seconds: float = 5.0) -> tuple[list[np.ndarray], list[str]]:
    """Every VoxCeleb2 clip (its first `seconds`: keeps the tests fast on 2 cores), speakers."""
    paths = sorted(root.glob("*/*.wav"))
    waves = [load_audio(p, 16000, duration_s=seconds) for p in paths]
    return waves, [p.parent.name for p in paths]


def voxceleb1_clips(seconds: float = 5.0) -> tuple[list[np.ndarray], list[str]]:
    """The VoxCeleb1 clips (`SPEAKER+VIDEO+UTT.wav`), if present."""
    paths = sorted(VOXCELEB1.glob("*.wav")) if VOXCELEB1.is_dir() else []
    waves = [load_audio(p, 16000, duration_s=seconds) for p in paths]
    return waves, [p.name.split("+")[0] for p in paths]


def assert_speakers_separate(emb: np.ndarray, speakers: list[str]) -> None:
    """Same-speaker cosines beat different-speaker ones, on average and for every speaker."""
    scores = emb @ emb.T
    same = np.equal.outer(speakers, speakers)
    off_diagonal = ~np.eye(len(speakers), dtype=bool)
    target, non_target = scores[same & off_diagonal], scores[~same]
    assert target.mean() > non_target.mean() + 0.1
    # per speaker too: its own clips score higher on average than other speakers' clips
    for spk in set(speakers):
        rows = np.array(speakers) == spk
        assert (
            scores[np.ix_(rows, rows)][off_diagonal[np.ix_(rows, rows)]].mean()
            > scores[np.ix_(rows, ~rows)].mean()
        )


def test_default_model_embeds_real_speech_offline(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    model = build_embedding_model(GE2EConfig())
    waves, speakers = example_clips()
    emb = model.embed(*batch_of(waves)).numpy()
    assert emb.shape == (8, 256)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert_speakers_separate(emb, speakers)


@pytest.mark.slow
def test_separates_the_speakers_of_the_shared_corpus(ge2e, voxceleb2):
    """The larger check: every VoxCeleb2 clip of ../shared/data, and the VoxCeleb1 ones."""
    waves, speakers = voxceleb_clips(voxceleb2)
    more_waves, more_speakers = voxceleb1_clips()
    waves, speakers = waves + more_waves, speakers + more_speakers
    emb = ge2e.embed(*batch_of(waves)).numpy()
    assert emb.shape == (len(waves), 256)
    assert_speakers_separate(emb, speakers)


#: resemblyzer 0.1.4's own `VoiceEncoder.embed_utterance(normalize_volume(wave, -30,
#: increase_only=True))` with its original float32 weights, on the first 5 s of examples
#: 0, 3 and 6 (`example_clips()[0][::3]`), saved once so the test needs no resemblyzer
RESEMBLYZER_REFERENCE = Path(__file__).parent / "data" / "resemblyzer_embed_utterance.npy"


def test_shipped_weights_match_resemblyzer_embed_utterance(ge2e):
    waves, _ = example_clips()
    ours = ge2e.embed(*batch_of(waves[::3])).numpy()
    theirs = np.load(RESEMBLYZER_REFERENCE, allow_pickle=False)
    cosines = np.sum(ours * theirs, axis=1)
    assert cosines.shape == (3,)
    assert cosines.min() > 0.999


def test_default_weights_ship_inside_balr_as_safetensors():
    from safetensors import safe_open

    from balr import defaults

    with safe_open(str(defaults.GE2E_WEIGHTS), "pt") as weights:
        names = set(weights.keys())
        assert weights.metadata()["model"] == "ge2e"
    assert {"lstm.weight_ih_l0", "lstm.weight_hh_l2", "linear.weight", "linear.bias"} <= names
    assert (defaults.GE2E_WEIGHTS.parent / "LICENSE").is_file()
    assert "Apache" in (defaults.GE2E_WEIGHTS.parent / "NOTICE").read_text()


def test_a_resemblyzer_checkpoint_loads_as_well(tmp_path, ge2e):
    """`embeddings.model.weights=pretrained.pt`: resemblyzer's own file format."""
    state = {k: v.clone() for k, v in ge2e.state_dict().items()}
    checkpoint = tmp_path / "pretrained.pt"
    model_state = {**state, "similarity_weight": torch.ones(1)}
    torch.save({"step": 1, "model_state": model_state}, checkpoint)
    loaded = load_ge2e_state(checkpoint)
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_padding_does_not_change_an_embedding(ge2e):
    waves, _ = example_clips()
    short, long = waves[0][: 2 * 16000], waves[1]
    together = ge2e.embed(*batch_of([long, short]))
    alone = ge2e.embed(*batch_of([short]))
    assert torch.allclose(together[1], alone[0], atol=1e-5)


@pytest.mark.parametrize(
    "seconds, starts",
    [
        # n = 48000: frames ceil(48001/160) = 301, steps 301 - 160 + 77 + 1 = 219 -> 0, 77, 154;
        # last partial starts at 154 * 160 = 24640, coverage (48000 - 24640) / 25600 = 0.91
        (3.0, [0, 77, 154]),
        # n = 32000: 201 frames, steps 119 -> 0, 77; coverage (32000 - 12320) / 25600 = 0.77
        (2.0, [0, 77]),
        # n = 30400: 191 frames, steps 109 -> 0, 77; coverage 18080 / 25600 = 0.71 < 0.75: drop
        (1.9, [0]),
        # shorter than one partial: always one (zero-padded)
        (0.5, [0]),
    ],
)
def test_partial_windows_follow_the_ge2e_recipe(seconds, starts):
    model = GE2EEncoder(GE2EConfig())
    item, start = model._partial_starts(torch.tensor([int(seconds * 16000)]))
    assert start.tolist() == starts
    assert item.tolist() == [0] * len(starts)


def test_embed_features_runs_one_partial_per_item(ge2e):
    waves, _ = example_clips(seconds=1.6)
    # 25599 samples: 1 + 25599 // 160 = 160 centred frames, exactly one partial window
    wave = torch.from_numpy(waves[0][: 160 * 160 - 1])[None]
    length = torch.tensor([wave.shape[1]])
    mels = ge2e.mel_spectrogram(ge2e._prepare(wave, length)[0])
    assert mels.shape == (1, 160, 40)
    assert torch.allclose(ge2e.embed_features(mels), ge2e.embed(wave, length), atol=1e-5)


def test_weights_load_without_pickle_code(tmp_path):
    bad = tmp_path / "evil.pt"
    torch.save({"model_state": {"lstm.x": torch.zeros(1)}, "obj": GE2EConfig()}, bad)
    with pytest.raises(ModelError, match="safely"):
        load_ge2e_state(bad)
    with pytest.raises(ModelError, match="not found"):
        load_ge2e_state(tmp_path / "missing.pt")


def test_quiet_recording_is_raised_to_minus_30_dbfs(ge2e):
    waves, _ = example_clips()
    wave = waves[0] / np.sqrt(np.mean(waves[0] ** 2))  # RMS 1 (0 dBFS)
    # copies at -50 and -40 dBFS are both raised to -30 dBFS: identical inputs to the LSTM;
    # one at -20 dBFS is louder than the target and is left as is (never lowered)
    at_50, at_40, at_20 = ge2e.embed(*batch_of([wave * 10**-2.5, wave * 10**-2, wave * 0.1]))
    assert float(at_50 @ at_40) > 0.99999
    assert float(at_50 @ at_20) < 0.9999


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        ("nan", "field 'linear.bias' holds 1 non-finite value(s) (NaN or inf)"),
        ("shape", "field 'linear.bias' has shape (255,), expected (256,)"),
        ("missing", "missing tensor(s) linear.bias"),
        ("not a tensor", "field 'linear.bias' must be a tensor, got float"),
    ],
)
def test_damaged_weights_are_one_line(tmp_path, ge2e, damage, words):
    """`embeddings.model.weights=FILE` with a NaN, a wrong shape, a missing tensor."""
    state = {k: v.clone() for k, v in ge2e.state_dict().items()}
    if damage == "nan":
        state["linear.bias"][7] = float("nan")
    elif damage == "shape":
        state["linear.bias"] = state["linear.bias"][1:]
    elif damage == "missing":
        del state["linear.bias"]
    else:
        state["linear.bias"] = 0.5
    checkpoint = tmp_path / "pretrained.pt"
    torch.save({"step": 1, "model_state": state}, checkpoint)
    with pytest.raises(ModelError) as caught:
        build_embedding_model(GE2EConfig(weights=str(checkpoint)))
    assert str(caught.value) == f"{checkpoint}: {words}"
