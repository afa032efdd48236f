"""Wespeaker ResNet34 from a model dir in Wespeaker's layout (config.yaml + avg_model.pt)."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch

from balr.audio import load_audio
from balr.embeddings import build_embedding_model
from balr.embeddings.extract import extract_config
from balr.embeddings.wespeaker_resnet import ARCHITECTURES, ResNet, WespeakerConfig
from balr.errors import ModelError
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.slow  # end-to-end runs (models, CLI processes): not in `make test-fast`

CONFIG_YAML = """\
model: ResNet34
model_args:
  feat_dim: 80
  embed_dim: {embed_dim}
  pooling_func: TSTP
  two_emb_layer: false
dataset_args:
  fbank_args:
    num_mel_bins: 80
    frame_shift: 10
    frame_length: 25
    dither: 1.0
projection_args:
  project_type: arc_margin
"""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A randomly initialised ResNet34 saved as Wespeaker saves it (+ its training head)."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("resnet34")
    network = ResNet(*ARCHITECTURES["ResNet34"], feat_dim=80, embed_dim=256)
    for module in network.modules():  # non-trivial batch-norm statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    state = network.state_dict()
    state["projection.weight"] = torch.randn(100, 256)
    torch.save(state, folder / "avg_model.pt")
    (folder / "config.yaml").write_text(CONFIG_YAML.format(embed_dim=256))
    return folder


def reference_features(wave: np.ndarray) -> torch.Tensor:
    """Wespeaker's front-end computed with kaldi-native-fbank, then mean normalisation."""
    knf = pytest.importorskip("kaldi_native_fbank")
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.window_type = "hamming"
    opts.mel_opts.num_bins = 80
    fbank = knf.OnlineFbank(opts)
    fbank.accept_waveform(16000, (wave * 32768).tolist())
    fbank.input_finished()
    feats = np.stack([fbank.get_frame(i) for i in range(fbank.num_frames_ready)])
    return torch.from_numpy(feats - feats.mean(axis=0))[None]


def test_resnet34_loads_from_model_dir_and_runs(model_dir):
    cfg = extract_config(["embeddings.model=wespeaker", f"embeddings.model.model_dir={model_dir}"])
    model = build_embedding_model(cfg.embeddings.model)
    assert (model.name, model.embedding_dim, model.sample_rate) == ("wespeaker", 256, 16000)
    clips = sorted((EXAMPLES / "audio").glob("*/*.flac"))[:2]
    waves = [load_audio(p, 16000, duration_s=1.5) for p in clips]
    waves[1] = waves[1][:16000]
    padded = torch.zeros(2, len(waves[0]))
    padded[0], padded[1, :16000] = torch.from_numpy(waves[0]), torch.from_numpy(waves[1])
    out = model.embed(padded, torch.tensor([len(waves[0]), 16000]))
    assert out.shape == (2, 256) and torch.isfinite(out).all()
    for row, wave in enumerate(waves):
        expected = model.embed_features(reference_features(wave).float())[0]
        assert torch.allclose(out[row], expected, atol=1e-3 * expected.abs().max().item())


def test_state_dict_is_loaded_strictly(model_dir, tmp_path):
    (tmp_path / "config.yaml").write_text(CONFIG_YAML.format(embed_dim=128))
    (tmp_path / "avg_model.pt").write_bytes((model_dir / "avg_model.pt").read_bytes())
    with pytest.raises(ModelError, match="do not fit config.yaml"):
        build_embedding_model(WespeakerConfig(model_dir=str(tmp_path)))


def test_non_finite_weights_are_one_line(model_dir, tmp_path):
    (tmp_path / "config.yaml").write_text(CONFIG_YAML.format(embed_dim=256))
    state = torch.load(model_dir / "avg_model.pt", weights_only=True)
    state["seg_1.weight"].view(-1)[5] = float("nan")
    torch.save(state, tmp_path / "avg_model.pt")
    with pytest.raises(ModelError) as caught:
        build_embedding_model(WespeakerConfig(model_dir=str(tmp_path)))
    weights = tmp_path / "avg_model.pt"
    assert str(caught.value) == (
        f"{weights}: field 'seg_1.weight' holds 1 non-finite value(s) (NaN or inf)"
    )


def test_missing_files_and_unsafe_weights_are_model_errors(tmp_path):
    with pytest.raises(ModelError, match="avg_model.pt is missing|config.yaml is missing"):
        build_embedding_model(WespeakerConfig(model_dir=str(tmp_path)))
    (tmp_path / "config.yaml").write_text(CONFIG_YAML.format(embed_dim=256))
    unsafe = {"seg_1.weight": torch.zeros(1), "extra": WespeakerConfig()}  # a pickled object
    torch.save(unsafe, tmp_path / "avg_model.pt")
    with pytest.raises(ModelError, match="safely"):
        build_embedding_model(WespeakerConfig(model_dir=str(tmp_path)))


def test_no_model_dir_and_no_download_is_a_clear_error():
    with pytest.raises(ModelError, match="model_dir=DIR"):
        build_embedding_model(WespeakerConfig())


def test_download_offline_fails_with_a_clear_message(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    cfg = WespeakerConfig(download=True, cache_dir=str(tmp_path))
    with pytest.raises(ModelError, match="cannot download .*model_dir=DIR"):
        build_embedding_model(cfg)
    assert not any(tmp_path.rglob("*.zip"))  # no half-downloaded archive is left


@pytest.mark.difference(
    "BA-model-repo", "BA-model-name", "BA-config-name", "BA-embeddings-model-dir"
)
def test_reference_model_keys_model_repo_name_config_and_appended_model_dir(model_dir, tmp_path):
    """The reference's `model_repo` (a local folder here), `model_name` (`avg_model`, the
    file as the hub stores it), `config_name`, and `+embeddings.model.model_dir=DIR` load
    the same network; a hub id is a one-line error saying to download it."""
    folder = tmp_path / "hub_layout"
    folder.mkdir()
    (folder / "avg_model").write_bytes((model_dir / "avg_model.pt").read_bytes())
    (folder / "wespeaker.yaml").write_text((model_dir / "config.yaml").read_text())
    wave = torch.from_numpy(load_audio(sorted((EXAMPLES / "audio").glob("*/*.flac"))[0], 16000))
    wave = wave[None, :16000]

    def embedding(*overrides: str) -> torch.Tensor:
        cfg = extract_config(["embeddings.model=wespeaker", *overrides])
        return build_embedding_model(cfg.embeddings.model).embed(wave, torch.tensor([16000]))

    expected = embedding(f"embeddings.model.model_dir={model_dir}")
    assert torch.equal(embedding(f"+embeddings.model.model_dir={model_dir}"), expected)
    named = ["embeddings.model.model_name=avg_model", "embeddings.model.config_name=wespeaker.yaml"]
    assert torch.equal(embedding(f"embeddings.model.model_repo={folder}", *named), expected)
    with pytest.raises(ModelError, match="config.yaml is missing"):
        embedding(f"embeddings.model.model_repo={folder}")
    with pytest.raises(ModelError, match="other-model: not a local folder; balr does not fetch"):
        embedding("embeddings.model.model_repo=Someone/other-model")


@pytest.mark.difference("BA-wespeaker-features")
def test_reference_feature_keys_set_the_fbank(model_dir):
    """`embeddings.model.features.*`: unset, the model dir's fbank (80 / 25 / 10 ms); set,
    they change it (a 20 ms shift gives half the frames); a front-end, dither or bin count
    the network cannot take is a one-line error."""
    base = ["embeddings.model=wespeaker", f"embeddings.model.model_dir={model_dir}"]

    def fbank(*overrides: str):
        return build_embedding_model(extract_config([*base, *overrides]).embeddings.model).fbank

    key = "embeddings.model.features"
    default = fbank(f"{key}.frontend=fbank", f"{key}.dither=0.0")
    assert (default.num_mel_bins, default.frame_length_ms, default.frame_shift_ms) == (80, 25, 10)
    changed = fbank(f"{key}.frame_shift=20", f"{key}.frame_length=30")
    assert (changed.frame_shift, changed.frame_length) == (320, 480)  # samples at 16 kHz
    for key, message in [
        ("features.num_mel_bins=64", "takes 80 bins"),
        ("features.dither=1.0", "only 0.0"),
        ("features.frontend=mfcc", "fbank features only"),
    ]:
        with pytest.raises(ModelError, match=message):
            fbank(f"embeddings.model.{key}")


def test_reference_input_scale_is_an_option(model_dir):
    """`int16_input=false` feeds samples in [-1, 1] to the fbank, as the reference library;
    mean normalisation cancels the scale up to the log floor, so both embeddings agree."""
    from balr.features.fbank import kaldi_fbank, mean_normalize

    wave = torch.from_numpy(load_audio(sorted((EXAMPLES / "audio").glob("*/*.flac"))[0], 16000))
    wave = wave[None, :24000]
    base = ["embeddings.model=wespeaker", f"embeddings.model.model_dir={model_dir}"]
    cfg = extract_config([*base, "embeddings.model.int16_input=false"])
    reference = build_embedding_model(cfg.embeddings.model)
    out = reference.embed(wave, torch.tensor([24000]))[0]
    expected = reference.embed_features(mean_normalize(kaldi_fbank(wave, reference.fbank)))[0]
    assert torch.allclose(out, expected, atol=1e-5 * expected.abs().max().item())
    scaled = build_embedding_model(extract_config(base).embeddings.model).embed(
        wave, torch.tensor([24000])
    )[0]
    assert not torch.equal(scaled, out)
    assert torch.nn.functional.cosine_similarity(scaled, out, dim=0) > 0.99
