"""Shapes, attention weights, AM-softmax values and head masking of the DoubleMHA model."""

import math

import pytest
import torch

from balr.doublemha.config import ModelSettings
from balr.doublemha.frontends import build_front_end
from balr.doublemha.heads import AMSoftmax, annealed_factor
from balr.doublemha.model import SpeakerClassifier
from balr.doublemha.pooling import DoubleMHAPooling


def small_settings(front_end: str, pooling: str, **kw) -> ModelSettings:
    values = dict(
        front_end=front_end,
        pooling_method=pooling,
        kernel_size=16,
        embedding_size=12,
        heads_number=4,
        num_spkrs=5,
    )
    values.update(kw)
    return ModelSettings(**values)


@pytest.mark.parametrize("front_end,layers", [("VGG3L", 3), ("VGG4L", 4)])
@pytest.mark.parametrize("pooling", ["Attention", "MHA", "DoubleMHA"])
@pytest.mark.parametrize("frames", [37, 64])
@pytest.mark.difference("DMHA-front-end", "DMHA-pooling")
def test_shapes_of_every_front_end_and_pooling(front_end, layers, pooling, frames):
    torch.manual_seed(0)
    model = SpeakerClassifier(small_settings(front_end, pooling)).eval()
    feats = torch.randn(3, frames, 80)
    reduced = math.ceil(frames / 2**layers)  # 37 -> 5 (3L) / 3 (4L); 64 -> 8 / 4
    frame_dim = math.ceil(80 / 2**layers) * 16  # 3L: 10 * 16 = 160, 4L: 5 * 16 = 80
    out, _ = model.front_end(feats)
    assert out.shape == (3, reduced, frame_dim)
    assert model(feats, torch.tensor([0, 1, 4])).shape == (3, 5)
    assert model.embed(feats).shape == (3, 12)
    time_weights, head_weights = model.alignment(feats)
    heads = 1 if pooling == "Attention" else 4
    assert time_weights.shape == (3, reduced, heads)
    assert head_weights.shape == (3, heads)
    torch.testing.assert_close(time_weights.sum(1), torch.ones(3, heads))
    torch.testing.assert_close(head_weights.sum(1), torch.ones(3))
    pooled_dim = frame_dim // 4 if pooling == "DoubleMHA" else frame_dim
    assert model.pooling.output_dim == pooled_dim


def test_vgg4l_channels_grow_to_kernel_size():
    front = build_front_end("VGG4L", 64)
    assert [b.conv2.out_channels for b in front.blocks] == [8, 16, 32, 64]


@pytest.mark.parametrize("front_end", ["VGG3L", "VGG4L"])
def test_padding_does_not_change_an_embedding(front_end):
    torch.manual_seed(1)
    model = SpeakerClassifier(small_settings(front_end, "DoubleMHA")).eval()
    long, short = torch.randn(61, 80), torch.randn(23, 80)
    padded = torch.zeros(2, 61, 80)
    padded[0], padded[1, :23] = long, short
    batch = model.embed(padded, torch.tensor([61, 23]))
    alone = model.embed(short.unsqueeze(0))
    torch.testing.assert_close(batch[1], alone[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batch[0], model.embed(long.unsqueeze(0))[0], atol=1e-5, rtol=1e-5)


def am_layer(annealing: bool) -> AMSoftmax:
    layer = AMSoftmax(2, 2, s=30.0, m=0.4, annealing=annealing)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(2))  # class 0 along x, class 1 along y
    return layer


@pytest.mark.difference("DMHA-am-softmax")
def test_am_softmax_margin_on_target_only():
    x = torch.tensor([[3.0, 4.0]])  # unit vector (0.6, 0.8): cos = 0.6 (class 0), 0.8 (class 1)
    logits = am_layer(False)(x, torch.tensor([0]))
    # target: 30 * (0.6 - 0.4) = 6; other: 30 * 0.8 = 24
    torch.testing.assert_close(logits, torch.tensor([[6.0, 24.0]]))
    torch.testing.assert_close(am_layer(False)(x), torch.tensor([[18.0, 24.0]]))


@pytest.mark.difference("DMHA-am-softmax")
def test_annealing_factor_and_annealed_logits():
    assert annealed_factor(0) == 1000.0
    assert annealed_factor(10000) == pytest.approx(250.0)  # 1000 / (1 + 1)^2
    assert annealed_factor(90000) == pytest.approx(10.0)  # 1000 / (1 + 9)^2
    x = torch.tensor([[3.0, 4.0]])
    logits = am_layer(True)(x, torch.tensor([0]), step=10000)
    # target: 30 * (0.6 - 0.4 + 250 * 0.6) / 251 = 30 * 150.2 / 251
    expected = torch.tensor([[30 * 150.2 / 251, 24.0]])
    torch.testing.assert_close(logits, expected)


def test_heads_are_masked_only_in_training_mode():
    torch.manual_seed(2)
    pooling = DoubleMHAPooling(input_dim=64, heads=8, mask_prob=0.5)
    frames = torch.randn(400, 6, 64)
    pooling.train()
    weights = pooling(frames).head_weights
    dropped = (weights == 0).float().mean().item()
    assert 0.45 < dropped < 0.55  # each head dropped with p = 0.5 (400 x 8 draws)
    assert bool((weights > 0).any(dim=1).all())  # no row loses every head
    torch.testing.assert_close(weights.sum(1), torch.ones(400))
    pooling.eval()
    first, second = pooling(frames).head_weights, pooling(frames).head_weights
    assert bool((first > 0).all())
    torch.testing.assert_close(first, second)
