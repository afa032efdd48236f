"""Registry and Hydra composition: `embeddings.model=NAME embeddings.model.KEY=V`."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from balr.embeddings import (
    EmbeddingModel,
    build_embedding_model,
    register_embedding_model,
    registered_models,
    select_model_overrides,
)
from balr.embeddings.extract import extract_config
from balr.errors import ConfigError


@dataclass
class ConstantConfig:
    name: str = "constant_test"
    value: float = 1.0


class ConstantModel(EmbeddingModel):
    name = "constant_test"
    embedding_dim = 3

    def __init__(self, value: float):
        super().__init__()
        self.value = value

    def embed(self, waves: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return torch.full((len(waves), 3), self.value)


@register_embedding_model("constant_test", ConstantConfig)
def build_constant(cfg) -> ConstantModel:
    return ConstantModel(cfg.value)


def test_builtin_models_are_registered():
    assert {"ge2e", "wespeaker"} <= set(registered_models())


def test_default_model_is_ge2e():
    cfg = extract_config([])
    assert cfg.embeddings.model.name == "ge2e"


def test_model_choice_and_key_override_compose():
    cfg = extract_config(["embeddings.model=constant_test", "embeddings.model.value=2.5"])
    model = build_embedding_model(cfg.embeddings.model)
    out = model.embed(torch.zeros(2, 10), torch.tensor([10, 5]))
    assert out.tolist() == [[2.5] * 3, [2.5] * 3]
    assert cfg.embeddings.batch_size == 32


def test_wespeaker_model_dir_override_reaches_config(tmp_path):
    cfg = extract_config(["embeddings.model=wespeaker", f"embeddings.model.model_dir={tmp_path}"])
    assert cfg.embeddings.model.name == "wespeaker"
    assert cfg.embeddings.model.model_dir == str(tmp_path)


def test_unknown_model_and_unknown_key_are_config_errors():
    with pytest.raises(ConfigError, match="unknown embedding model 'nope'"):
        select_model_overrides(["embeddings.model=nope"])
    with pytest.raises(ConfigError, match="bogus"):
        extract_config(["embeddings.model.bogus=1"])


def test_config_without_matching_name_field_is_rejected():
    @dataclass
    class Nameless:
        value: int = 0

    with pytest.raises(ConfigError, match="name"):
        register_embedding_model("nameless", Nameless)


def test_min_samples_follows_min_duration():
    model = ConstantModel(0.0)
    model.min_duration_s = 0.25
    assert model.min_samples == 4000  # 0.25 s x 16000 Hz
