"""Shared fixtures: the default GE2E model (built once) and few torch threads."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ge2e():
    from balr.embeddings import build_embedding_model
    from balr.embeddings.ge2e import GE2EConfig

    return build_embedding_model(GE2EConfig())
