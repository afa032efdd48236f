"""The reference's Hydra `_target_` class paths: each one read as the balr option it means,
any other refused with the accepted list, and no class named in a config ever imported."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from balr.binary_attributes.config import binarize_config, train_config
from balr.binary_attributes.samplers import (
    ExhaustiveNxMSampler,
    RandomNxMSampler,
    sampler_class,
)
from balr.config import config_file_overrides
from balr.config_targets import TARGETS, resolve_target_overrides
from balr.embeddings.extract import extract_config
from balr.errors import ConfigError
from balr.scoring.config import ScoreSettings, score_config
from balr.scoring.selection import select_scorer
from tests.conftest import REFERENCE_BALR_MIRROR

REFERENCE_MIRROR = REFERENCE_BALR_MIRROR

#: every `_target_` of the reference's balr/config/configs.py, by node, and balr's meaning
REFERENCE_TARGETS = {
    ("scorer", "balr.scoring.cosine.CosineSimilarityScorer"): "cosine",
    ("scorer", "balr.scoring.llr.DNALLRScorer"): "dna",
    ("scorer", "balr.scoring.llr.SpeechLLRScorer"): "speech",
    ("scorer", "balr.scoring.llr.MaxLLRScorer"): "maxllr",
    ("scorer", "balr.scoring.beta.DirichletMultinomialScorer"): "beta",
    ("embeddings.model", "balr.embeddings.wespeaker.WespeakerModel"): "wespeaker",
    ("encoder.model", "balr.binary_attributes.autoencoder.BinaryAttributeAutoEncoder"): "",
    ("trainer", "balr.binary_attributes.trainer.BinaryAttributeEncoderTrainer"): "",
    ("trainer.losses.mse", "balr.losses.mse_loss.MSELoss"): "",
    ("trainer.losses.triplet", "balr.losses.triplet_margin_loss.TripletMarginLoss"): "",
    ("trainer.losses.arcface", "balr.losses.arcface_loss.ArcFaceLoss"): "",
    ("trainer.losses.sparsity", "balr.losses.sparsity_loss.SparsityLoss"): "",
}


def test_the_table_holds_every_target_of_the_reference_configs():
    if not (REFERENCE_MIRROR / "HEAD").is_file():
        pytest.skip(f"the reference mirror {REFERENCE_MIRROR} is not on this machine")
    show = ["git", "-C", str(REFERENCE_MIRROR), "show", "HEAD:balr/config/configs.py"]
    text = subprocess.run(show, capture_output=True, text=True, check=True).stdout
    paths = set(re.findall(r'_target_: str = "([\w.]+)"', text))
    assert paths == {path for _, path in REFERENCE_TARGETS}
    for node, path in REFERENCE_TARGETS:
        assert path in TARGETS[node]


@pytest.mark.parametrize("path", [p for (node, p) in REFERENCE_TARGETS if node == "scorer"])
def test_scorer_target_selects_the_balr_scorer(path):
    expected = REFERENCE_TARGETS[("scorer", path)]
    assert score_config([f"scorer._target_={path}"]).scorer.name == expected
    # with the reference's own keys of that scorer (here: the default value of one)
    assert resolve_target_overrides([f"scorer._target_={path}"]) == [f"scorer={expected}"]


def test_scorer_target_with_a_parameter_of_that_scorer():
    cfg = score_config(["scorer._target_=balr.scoring.llr.MaxLLRScorer", "scorer.f=0.25"])
    assert (cfg.scorer.name, cfg.scorer.f) == ("maxllr", 0.25)


def test_embedding_model_target_selects_wespeaker():
    path = "balr.embeddings.wespeaker.WespeakerModel"
    cfg = extract_config([f"embeddings.model._target_={path}"])
    assert cfg.embeddings.model.name == "wespeaker"


@pytest.mark.parametrize(
    ("node", "path"),
    [key for key, option in REFERENCE_TARGETS.items() if not option and key[0] != "encoder.model"],
)
def test_trainer_and_loss_targets_are_accepted_and_change_nothing(node, path):
    assert train_config([f"{node}._target_={path}"]) == train_config([])


def test_encoder_target_is_accepted_by_binarize():
    path = "balr.binary_attributes.autoencoder.BinaryAttributeAutoEncoder"
    assert binarize_config([f"encoder.model._target_={path}"]) == binarize_config([])


@pytest.mark.difference("BA-data-sampler")
def test_reference_and_balr_sampler_paths():
    assert sampler_class("balr.samplers.nxm_samplers.RandomNxMSampler") is RandomNxMSampler
    assert sampler_class("balr.samplers.nxm_samplers.ExhaustiveNxMSampler") is ExhaustiveNxMSampler
    cfg = train_config(["data.sampler=balr.samplers.nxm_samplers.ExhaustiveNxMSampler"])
    assert sampler_class(cfg.data.sampler) is ExhaustiveNxMSampler


def test_unknown_target_is_refused_listing_the_accepted_ones():
    with pytest.raises(ConfigError, match=r"scorer\._target_=my\.Scorer: not a class balr "
                       r"knows .*accepted: balr\.scoring\.cosine\.CosineSimilarityScorer, "
                       r"balr\.scoring\.llr\.DNALLRScorer"):  # fmt: skip
        score_config(["scorer._target_=my.Scorer"])
    with pytest.raises(ConfigError, match=r"accepted: balr\.losses\.mse_loss\.MSELoss"):
        train_config(["trainer.losses.mse._target_=balr.losses.arcface_loss.ArcFaceLoss"])
    with pytest.raises(ConfigError, match=r"data\._target_: balr accepts _target_ only on "):
        train_config(["data._target_=balr.data.Whatever"])


def test_a_target_disagreeing_with_the_chosen_scorer_is_refused():
    with pytest.raises(ConfigError, match="selects scorer 'maxllr' but 'scorer=beta' another"):
        score_config(["scorer=beta", "scorer._target_=balr.scoring.llr.MaxLLRScorer"])
    # and against a fitted checkpoint (the shipped beta scorer)
    settings = ScoreSettings.from_overrides(["scorer._target_=balr.scoring.llr.MaxLLRScorer"])
    assert settings.chosen_scorer == "maxllr"
    with pytest.raises(ConfigError, match="holds a 'beta' scorer, not 'maxllr'"):
        select_scorer("beta", chosen=settings.chosen_scorer)


def test_no_class_named_in_a_config_is_imported(tmp_path, monkeypatch):
    """A module on the path that would run code on import is never imported."""
    (tmp_path / "planted_module.py").write_text("raise SystemExit('imported!')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for override in (
        "scorer._target_=planted_module.Scorer",
        "embeddings.model._target_=planted_module.Model",
    ):
        with pytest.raises(ConfigError, match="not a class balr knows"):
            resolve_target_overrides([override])
    with pytest.raises(ConfigError, match="data.sampler 'planted_module.Sampler'"):
        sampler_class("planted_module.Sampler")
    assert "planted_module" not in sys.modules


def test_yaml_config_file_reads_targets_as_data(tmp_path):
    """The reference's `--config-path DIR --config-name NAME`: a YAML read as overrides."""
    (tmp_path / "mine.yaml").write_text(
        "defaults:\n  - config\n  - _self_\n"
        "trainer:\n  _target_: balr.binary_attributes.trainer.BinaryAttributeEncoderTrainer\n"
        "  epochs: 3\n  learning_rate: 0.002\n"
        "  losses:\n    mse:\n      _target_: balr.losses.mse_loss.MSELoss\n      weight: 0.5\n"
        "data:\n  sampler: balr.samplers.nxm_samplers.ExhaustiveNxMSampler\n"
    )
    overrides = config_file_overrides(tmp_path, "mine")
    assert overrides == [
        "trainer._target_='balr.binary_attributes.trainer.BinaryAttributeEncoderTrainer'",
        "trainer.epochs=3",
        "trainer.learning_rate=0.002",
        "trainer.losses.mse._target_='balr.losses.mse_loss.MSELoss'",
        "trainer.losses.mse.weight=0.5",
        "data.sampler='balr.samplers.nxm_samplers.ExhaustiveNxMSampler'",
    ]
    cfg = train_config(overrides)
    assert (cfg.trainer.epochs, cfg.trainer.learning_rate) == (3, 0.002)
    assert cfg.trainer.losses.mse.weight == 0.5
    assert sampler_class(cfg.data.sampler) is ExhaustiveNxMSampler


def test_yaml_config_group_choice_and_unknown_target(tmp_path):
    (tmp_path / "config.yaml").write_text("defaults:\n  - scorer: maxllr\nscorer:\n  f: 0.25\n")
    cfg = score_config(config_file_overrides(tmp_path))
    assert (cfg.scorer.name, cfg.scorer.f) == ("maxllr", 0.25)
    (tmp_path / "bad.yaml").write_text("scorer:\n  _target_: my.module.Scorer\n")
    with pytest.raises(ConfigError, match=r"scorer\._target_=my\.module\.Scorer: not a class"):
        score_config(config_file_overrides(tmp_path, "bad"))
    with pytest.raises(ConfigError, match=r"missing\.yaml: config file not found"):
        config_file_overrides(tmp_path, "missing")
