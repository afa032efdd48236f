"""Speaker-embedding models behind one interface (see base.py and registry.py).

`batch` runs a model over a dataset (`extract_embeddings`); `extract` is the `balr extract`
job (`extract_dataset_embeddings`: config, model, dataset, shard, batch extraction).
The names below are imported on first use (PEP 562): `balr.embeddings.ge2e_numpy` and
`balr.embeddings.registry` are usable without importing torch.
"""

from balr.lazy import lazy_names

#: public name -> the module of this package that defines it
_MODULE_OF = {
    "EmbeddingModel": "base",
    "build_embedding_model": "registry",
    "register_embedding_model": "registry",
    "registered_models": "registry",
    "select_model_overrides": "registry",
}

__all__ = sorted(_MODULE_OF)
__getattr__, __dir__ = lazy_names(__name__, _MODULE_OF, globals())
