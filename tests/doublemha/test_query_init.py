"""`query_init=reference`: the attention queries start as the reference's (xavier-normal,
the multi-head query divided by sqrt(H) into balr's unscaled scores); balr's own init stays
the default (docs/differences.md, row "attention query initialisation")."""

import math

import pytest
import torch

from balr.doublemha.config import train_config
from balr.doublemha.pooling import (
    AttentionPooling,
    DoubleMHAPooling,
    MultiHeadAttentionPooling,
    reference_query_init,
)
from balr.doublemha.trainer import DoubleMHATrainer
from balr.errors import ConfigError
from tests.doublemha.test_training import tiny_config, write_lists


def test_reference_init_has_the_reference_spread():
    torch.manual_seed(0)
    double = DoubleMHAPooling(5120, 32)  # the reference's encoder size (VGG4L, 1024) and H
    assert double.mha.queries.std().item() == pytest.approx(1 / math.sqrt(160), rel=0.05)
    reference_query_init(double)
    # xavier-normal std sqrt(2 / (fan_in + fan_out)); the MHA query then divided by sqrt(H)
    mha_std = math.sqrt(2 / (160 + 32)) / math.sqrt(32)  # about 0.018
    assert double.mha.queries.std().item() == pytest.approx(mha_std, rel=0.05)
    assert double.head_query.std().item() == pytest.approx(math.sqrt(2 / 161), rel=0.15)
    for pooling, std in (
        (AttentionPooling(4000), math.sqrt(2 / 4001)),
        (MultiHeadAttentionPooling(5120, 32), mha_std),
    ):
        reference_query_init(pooling)
        values = pooling.query if isinstance(pooling, AttentionPooling) else pooling.queries
        assert values.std().item() == pytest.approx(std, rel=0.05)


def test_trainer_applies_the_chosen_init(tmp_path):
    write_lists(tmp_path)
    models = {}
    for init in ("balr", "reference"):
        trainer = DoubleMHATrainer(tiny_config(tmp_path, query_init=init), tmp_path / init)
        trainer.build(4)
        models[init] = trainer.model.pooling.mha.queries.detach().clone()
    assert not torch.equal(models["balr"], models["reference"])
    assert train_config([]).query_init == "balr"
    with pytest.raises(ConfigError, match="query_init 'xavier': expected one of"):
        train_config(["query_init=xavier"])
