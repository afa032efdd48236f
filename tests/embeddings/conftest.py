"""Shared fixtures: the default GE2E model (built once) and few torch threads."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _few_threads():
    torch.set_num_threads(1)  # 2 shared cores: one thread avoids OpenMP barrier stalls


@pytest.fixture(scope="session")
def ge2e():
    from balr.embeddings import build_embedding_model
    from balr.embeddings.resemblyzer_ge2e import GE2EConfig

    return build_embedding_model(GE2EConfig())
