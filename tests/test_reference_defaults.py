"""Defaults that docs/differences.md lists as the reference's ("same" rows), read from the
composed configs and compared with the values in the reference sources it cites
(`balr/config/configs.py` of the BA-LR library, `scripts/train.py` of DoubleMHA)."""

from __future__ import annotations

import pytest

from balr.binary_attributes.config import train_config as bae_train_config
from balr.doublemha.config import train_config as dmha_train_config
from balr.errors import BalrError, ConfigError
from balr.scoring import make_scorer
from balr.scoring.config import score_config, scorer_params


@pytest.mark.difference(
    "BA-n-x-m",
    "BA-learning-rate",
    "BA-epochs",
    "BA-seed",
    "BA-val-period",
    "BA-data-shuffle",
)
def test_bae_trainer_and_data_defaults():
    cfg = bae_train_config([])
    assert (cfg.data.N_classes_per_batch, cfg.data.M_samples_per_class) == (8, 8)
    assert cfg.data.shuffle is True
    trainer = cfg.trainer
    assert (trainer.learning_rate, trainer.epochs, trainer.seed) == (0.001, 64, 1234)
    assert (trainer.val_period, trainer.log_period, trainer.save_period) == (10, 2, 0)


@pytest.mark.difference(
    "BA-mse-loss",
    "BA-triplet-margin",
    "BA-triplet-weight",
    "BA-arcface-margin",
    "BA-arcface-type-weight",
    "BA-sparsity-weight",
)
def test_bae_loss_defaults():
    losses = bae_train_config(["trainer.losses=[mse, triplet, arcface, sparsity]"]).trainer.losses
    assert losses.mse.weight == 1.0
    assert (losses.triplet.margin, losses.triplet.loss_margin) == (0.3, 0.05)  # miner, hinge
    assert (losses.triplet.type_of_triplets, losses.triplet.weight) == ("all", 1.0)
    assert (losses.arcface.margin, losses.arcface.type_of_triplets) == (0.3, "all")
    assert (losses.arcface.weight, losses.arcface.angular_margin) == (0.001, 28.6)
    assert losses.sparsity.weight == 1e-4


@pytest.mark.difference("BA-maxllr-keys")
def test_maxllr_start_values_and_their_order():
    params = scorer_params(score_config(["scorer=maxllr"]))
    assert (params["f"], params["p"], params["q"]) == (0.5, 0.9, 0.1)
    stats = [[[1.0, 1.0]]]
    with pytest.raises(BalrError, match="maxllr needs p > q to start, got p=0.1, q=0.9"):
        make_scorer("maxllr", p=0.1, q=0.9).fit(stats)  # the reference refuses p < q too


@pytest.mark.difference(
    "DMHA-data-mode",
    "DMHA-front-end",
    "DMHA-sizes",
    "DMHA-pooling",
    "DMHA-optimizer",
    "DMHA-lr-wd",
    "DMHA-batch-accumulation",
    "DMHA-max-epochs",
    "DMHA-print-validate-every",
    "DMHA-num-workers",
    "DMHA-am-softmax",
)
def test_doublemha_training_defaults():
    cfg = dmha_train_config([])
    assert (cfg.front_end, cfg.pooling_method, cfg.data_mode) == ("VGG4L", "DoubleMHA", "normal")
    assert (cfg.kernel_size, cfg.embedding_size, cfg.heads_number) == (1024, 400, 32)
    assert (cfg.optimizer, cfg.learning_rate, cfg.weight_decay) == ("Adam", 1e-4, 1e-3)
    assert (cfg.batch_size, cfg.gradientAccumulation, cfg.max_epochs) == (64, 2, 1000000)
    assert (cfg.print_every, cfg.validate_every, cfg.num_workers) == (1000, 10000, 2)
    assert (cfg.scalingFactor, cfg.marginFactor, cfg.annealing) == (30.0, 0.4, False)
    assert dmha_train_config(["data_mode=window"]).data_mode == "window"
    with pytest.raises(ConfigError, match="data_mode 'other': expected one of"):
        dmha_train_config(["data_mode=other"])
