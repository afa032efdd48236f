"""Wespeaker ResNet speaker encoders (ResNet34 by default) loaded from a Wespeaker model dir.

A model directory is Wespeaker's layout: `config.yaml` (keys `model: ResNet34`, `model_args:
{feat_dim, embed_dim, m_channels, pooling_func, two_emb_layer}`, optional
`dataset_args.fbank_args`) and `avg_model.pt` (a state dict of tensors, loaded with
`weights_only=True`; the training head `projection.*` is ignored, every other key must match).

Front-end: Kaldi fbank on 16-bit-scaled samples (`int16_input=false`: floats in [-1, 1], as
the reference library), then per-utterance mean normalisation. The
embedding is the last embedding layer's output, as Wespeaker's own extraction uses.
"""

from __future__ import annotations

import shutil
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from balr.audio import INT16_SCALE
from balr.config import load_config
from balr.embeddings.base import EmbeddingModel, register_embedding_model
from balr.errors import ModelError, load_failure_reason
from balr.features.fbank import FbankOptions, kaldi_fbank, mean_normalize, num_frames
from balr.fileio import atomic_path
from balr.hub_keys import HUB_MESSAGE
from balr.records import check_finite_tensors

REFERENCE_MODEL_REPO = "Wespeaker/wespeaker-voxceleb-resnet34-LM"  # a Hugging Face hub id
DEFAULT_HUB_URL = (
    "https://huggingface.co/Wespeaker/wespeaker-voxceleb-resnet34-LM/resolve/main/"
    "voxceleb_resnet34_LM.zip"
)


@dataclass
class WespeakerFeatures:
    """The reference's `embeddings.model.features` keys; None: the model dir's `config.yaml`
    `fbank_args` (80 / 25 / 10 for the reference's ResNet34, the reference's defaults)."""

    frontend: str = "fbank"  # the only front-end of Wespeaker's ResNets
    num_mel_bins: int | None = None
    frame_length: float | None = None  # ms
    frame_shift: float | None = None  # ms
    dither: float = 0.0  # extraction is deterministic: only 0 is accepted


@dataclass
class WespeakerConfig:
    """`embeddings.model=wespeaker` settings."""

    name: str = "wespeaker"
    model_dir: str = ""  # a folder with config.yaml + avg_model.pt (wins over model_repo)
    # the reference's keys: a hub id (never fetched: offline) or a local model folder, the
    # weights file in it (`avg_model` or `avg_model.pt`) and its config file
    model_repo: str = REFERENCE_MODEL_REPO
    model_name: str = "avg_model"
    config_name: str = "config.yaml"
    features: WespeakerFeatures = field(default_factory=WespeakerFeatures)
    download: bool = False  # fetch hub_url into cache_dir when model_dir is empty
    hub_url: str = DEFAULT_HUB_URL
    cache_dir: str = "~/.cache/balr/wespeaker"
    variance_norm: bool = False
    min_duration_s: float = 0.2
    # samples scaled to 16-bit integers before the fbank, as Wespeaker's recipe; false feeds
    # floats in [-1, 1], as the reference library does (mostly cancelled by mean removal)
    int16_input: bool = True


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet18/34)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 convolutions with a residual connection (ResNet50 and deeper)."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        return torch.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


def _shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Sequential:
    if stride == 1 and in_planes == out_planes:
        return nn.Sequential()
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, 1, stride, bias=False), nn.BatchNorm2d(out_planes)
    )


ARCHITECTURES: dict[str, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    "ResNet18": (BasicBlock, (2, 2, 2, 2)),
    "ResNet34": (BasicBlock, (3, 4, 6, 3)),
    "ResNet50": (Bottleneck, (3, 4, 6, 3)),
    "ResNet101": (Bottleneck, (3, 4, 23, 3)),
    "ResNet152": (Bottleneck, (3, 8, 36, 3)),
    "ResNet221": (Bottleneck, (6, 16, 48, 3)),
    "ResNet293": (Bottleneck, (10, 20, 64, 3)),
}
POOLING_FACTOR = {"TSTP": 2, "TAP": 1, "TSDP": 1}


def statistics_pooling(x: torch.Tensor, kind: str) -> torch.Tensor:
    """(B, C, F, T) -> temporal mean and/or std over T of every (channel, bin): (B, k C F)."""
    x = x.reshape(x.shape[0], -1, x.shape[-1])
    mean = x.mean(dim=-1)
    if kind == "TAP":
        return mean
    std = torch.sqrt(torch.var(x, dim=-1) + 1e-7)
    return std if kind == "TSDP" else torch.cat([mean, std], dim=1)


class ResNet(nn.Module):
    """Wespeaker's ResNet: 2-D conv trunk over (freq, time), statistics pooling, embedding."""

    def __init__(
        self,
        block: type[nn.Module],
        num_blocks: tuple[int, int, int, int],
        m_channels: int = 32,
        feat_dim: int = 80,
        embed_dim: int = 256,
        pooling_func: str = "TSTP",
        two_emb_layer: bool = False,
    ):
        super().__init__()
        if pooling_func not in POOLING_FACTOR:
            raise ModelError(f"wespeaker: pooling '{pooling_func}' is not supported")
        self.pooling_func, self.two_emb_layer = pooling_func, two_emb_layer
        self.in_planes = m_channels
        self.conv1 = nn.Conv2d(1, m_channels, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(m_channels)
        self.layer1 = self._layer(block, m_channels, num_blocks[0], 1)
        self.layer2 = self._layer(block, m_channels * 2, num_blocks[1], 2)
        self.layer3 = self._layer(block, m_channels * 4, num_blocks[2], 2)
        self.layer4 = self._layer(block, m_channels * 8, num_blocks[3], 2)
        self.feat_dim = feat_dim
        stats_dim = (feat_dim // 8) * m_channels * 8 * block.expansion
        self.seg_1 = nn.Linear(stats_dim * POOLING_FACTOR[pooling_func], embed_dim)
        if two_emb_layer:
            self.seg_bn_1 = nn.BatchNorm1d(embed_dim, affine=False)
            self.seg_2 = nn.Linear(embed_dim, embed_dim)

    def _layer(self, block: type[nn.Module], planes: int, count: int, stride: int):
        layers = []
        for s in [stride] + [1] * (count - 1):
            layers.append(block(self.in_planes, planes, s))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, frames, feat_dim) -> (B, embed_dim) (the last embedding layer)."""
        x = feats.transpose(1, 2).unsqueeze(1)
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        embedding = self.seg_1(statistics_pooling(x, self.pooling_func))
        if self.two_emb_layer:
            embedding = self.seg_2(self.seg_bn_1(torch.relu(embedding)))
        return embedding


class WespeakerEncoder(EmbeddingModel):
    """A Wespeaker ResNet with its Kaldi fbank + mean-normalisation front-end."""

    name = "wespeaker"
    sample_rate = 16000

    def __init__(
        self,
        network: ResNet,
        fbank: FbankOptions,
        variance_norm: bool = False,
        input_scale: float = INT16_SCALE,
    ):
        super().__init__()
        self.network, self.fbank, self.variance_norm = network, fbank, variance_norm
        self.input_scale = input_scale
        self.sample_rate = fbank.sample_rate
        self.embedding_dim = network.seg_1.out_features

    @torch.no_grad()
    def embed(self, waves: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Items with equal frame counts run together, so padding never changes a result."""
        waves = waves.to(self.device, torch.float32) * self.input_scale
        frames = num_frames(lengths.to(self.device).long(), self.fbank)
        out = torch.zeros(len(waves), self.embedding_dim, device=self.device)
        for count in torch.unique(frames).tolist():
            rows = torch.nonzero(frames == count).flatten()
            usable = (count - 1) * self.fbank.frame_shift + self.fbank.frame_length
            feats = kaldi_fbank(waves[rows, :usable], self.fbank)
            out[rows] = self.network(mean_normalize(feats, variance=self.variance_norm))
        return out

    @torch.no_grad()
    def embed_features(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, frames, bins) mean-normalised fbank features of equal length -> (B, embed_dim)."""
        return self.network(feats.to(self.device))


def read_model_dir(
    model_dir: str | Path, model_name: str = "avg_model", config_name: str = "config.yaml"
) -> tuple[ResNet, FbankOptions, dict]:
    """Build the network described by `config_name` and the state dict from `model_name`
    (that file, else `model_name.pt`: `avg_model.pt`)."""
    model_dir = Path(model_dir).expanduser()
    config_path, weights_path = model_dir / config_name, model_dir / model_name
    if not weights_path.is_file():
        weights_path = weights_path.with_name(f"{model_name}.pt")
    for path in (config_path, weights_path):
        if not path.is_file():
            raise ModelError(f"{model_dir}: not a Wespeaker model dir ({path.name} is missing)")
    cfg = load_config(config_path)
    arch = str(cfg.get("model", "ResNet34"))
    if arch not in ARCHITECTURES:
        raise ModelError(f"{config_path}: model '{arch}' is not supported ({list(ARCHITECTURES)})")
    block, num_blocks = ARCHITECTURES[arch]
    args = dict(cfg.get("model_args") or {})
    known = {"m_channels", "feat_dim", "embed_dim", "pooling_func", "two_emb_layer"}
    network = ResNet(block, num_blocks, **{k: v for k, v in args.items() if k in known})
    fbank_args = dict(((cfg.get("dataset_args") or {}).get("fbank_args")) or {})
    fbank = FbankOptions(
        num_mel_bins=int(fbank_args.get("num_mel_bins", args.get("feat_dim", 80))),
        frame_length_ms=float(fbank_args.get("frame_length", 25)),
        frame_shift_ms=float(fbank_args.get("frame_shift", 10)),
    )
    return network, fbank, _load_state(weights_path)


def with_features(fbank: FbankOptions, features: WespeakerFeatures) -> FbankOptions:
    """The model dir's fbank settings with the `embeddings.model.features.*` keys set."""
    if features.frontend != "fbank":
        raise ModelError(
            f"embeddings.model.features.frontend={features.frontend}: Wespeaker's ResNets "
            "take fbank features only"
        )
    if features.dither:
        raise ModelError(
            f"embeddings.model.features.dither={features.dither}: balr extracts "
            "deterministically; only 0.0 (the reference's default) is accepted"
        )
    given = {
        "num_mel_bins": features.num_mel_bins,
        "frame_length_ms": features.frame_length,
        "frame_shift_ms": features.frame_shift,
    }
    return replace(fbank, **{key: value for key, value in given.items() if value is not None})


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = load_failure_reason(exc)
        raise ModelError(f"{path}: cannot load weights safely ({reason})") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path}: expected a state dict of tensors")
    state = {k.removeprefix("module."): v for k, v in state.items() if "projection." not in k}
    check_finite_tensors(path, state)
    return state


def download_model(url: str, cache_dir: str | Path) -> Path:
    """Fetch and unpack a Wespeaker archive (zip or tar) once; returns the model dir."""
    cache = Path(cache_dir).expanduser() / Path(url).name.split(".")[0]
    found = _find_model_dir(cache)
    if found is not None:
        return found
    archive = cache.with_name(Path(url).name)
    try:
        with atomic_path(archive) as tmp, urllib.request.urlopen(url, timeout=30) as response:
            with open(tmp, "wb") as handle:
                shutil.copyfileobj(response, handle)
    except OSError as exc:
        raise ModelError(
            f"wespeaker: cannot download {url} ({exc}); offline, pass "
            "embeddings.model.model_dir=DIR (config.yaml + avg_model.pt)"
        ) from None
    _unpack(archive, cache)
    found = _find_model_dir(cache)
    if found is None:
        raise ModelError(f"{url}: archive holds no config.yaml + avg_model.pt")
    return found


def _unpack(archive: Path, target: Path) -> None:
    """Extract an archive, refusing members that would land outside `target`."""
    target.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            _check_members(zf.namelist(), target)
            zf.extractall(target)
    else:
        with tarfile.open(archive) as tf:
            tf.extractall(target, filter="data")


def _check_members(names: list[str], target: Path) -> None:
    root = target.resolve()
    for name in names:
        if not (target / name).resolve().is_relative_to(root):
            raise ModelError(f"archive member '{name}' escapes {target}")


def _find_model_dir(root: Path) -> Path | None:
    if not root.is_dir():
        return None
    for config in sorted(root.rglob("config.yaml")):
        if (config.parent / "avg_model.pt").is_file():
            return config.parent
    return None


@register_embedding_model("wespeaker", WespeakerConfig)
def build(cfg: WespeakerConfig) -> WespeakerEncoder:
    """Load a local Wespeaker model dir: `model_dir`, else `model_repo` when it is a local
    folder, else the `hub_url` archive when `download=true`."""
    if cfg.model_dir:
        model_dir = Path(cfg.model_dir)
    elif cfg.model_repo and Path(cfg.model_repo).expanduser().is_dir():
        model_dir = Path(cfg.model_repo)
    elif cfg.download:
        model_dir = download_model(cfg.hub_url, cfg.cache_dir)
    elif cfg.model_repo != REFERENCE_MODEL_REPO:
        raise ModelError(
            f"embeddings.model.model_repo={cfg.model_repo}: not a local folder; {HUB_MESSAGE} "
            "(embeddings.model.model_dir=DIR; a local folder as model_repo works too)"
        )
    else:
        raise ModelError(
            "wespeaker: set embeddings.model.model_dir=DIR (config.yaml + avg_model.pt), or "
            "embeddings.model.download=true to fetch it from the hub when online"
        )
    network, fbank, state = read_model_dir(model_dir, cfg.model_name, cfg.config_name)
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        reason = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise ModelError(f"{model_dir}: weights do not fit config.yaml ({reason})") from None
    fbank = with_features(fbank, cfg.features)
    if fbank.num_mel_bins != network.feat_dim:
        raise ModelError(
            f"embeddings.model.features.num_mel_bins={fbank.num_mel_bins}: the network of "
            f"{model_dir} takes {network.feat_dim} bins"
        )
    scale = INT16_SCALE if cfg.int16_input else 1.0
    model = WespeakerEncoder(network, fbank, bool(cfg.variance_norm), scale)
    model.min_duration_s = float(cfg.min_duration_s)
    return model.eval()
