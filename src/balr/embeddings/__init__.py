"""Speaker-embedding models behind one interface (see base.py); importing registers them.

`batch` runs a model over a dataset (`extract_embeddings`); `extract` is the `balr extract`
job (`extract_dataset_embeddings`: config, model, dataset, shard, batch extraction).
"""

from balr.embeddings import (  # noqa: F401  (each module registers its model)
    doublemha,
    ge2e,
    wespeaker_resnet,
)
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
