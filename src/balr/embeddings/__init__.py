"""Speaker-embedding models behind one interface (see base.py); importing registers them."""

from balr.embeddings import resemblyzer_ge2e, wespeaker_resnet  # noqa: F401  (register models)
from balr.embeddings import doublemha  # noqa: F401  (registers "doublemha")
from balr.embeddings.base import (
    EmbeddingModel,
    build_embedding_model,
    register_embedding_model,
    registered_models,
    select_model_overrides,
)

__all__ = [
    "EmbeddingModel",
    "build_embedding_model",
    "register_embedding_model",
    "registered_models",
    "select_model_overrides",
]
